"""``evostim sweep``: a grid of in-silico runs on Ray, streamed to Parquet, resumable, summarized with bootstrap CIs.

A sweep is units x optimizers (with parameters) x seeds x noise models x budgets (``SweepConfig``, from a small
YAML or TOML file; a unit the panel lacks is refused there, before anything starts). Its runs are cut into tasks of
``runs_per_task`` runs, fewer where that keeps every worker busy (16 runs on 2 workers: 2 tasks of 8); a task is
stepped together by the batched engine (``evostim.clients.sweeps.engine``): its runs share one decode and one CNN
pass per generation. Tasks go to a pool of Ray actors (one CPU each, each holding its panel's generator and CNNs):
``ray.init()`` on this machine by default (all its cores), or a cluster at ``address``. The calibration (every unit
on ``random_codes`` random images) runs in blocks on every worker, with a progress bar. Each finished task is
written at once, atomically, as two Parquet files in the output folder:

- ``runs/<task>.parquet``: one row per run (its spec, its final values, its best image's code, optimizer seconds);
- ``generations/<task>.parquet``: one row per run and generation (evaluations so far and the run's values then).

Running the same sweep again into the same folder skips every run already written (resume after an interruption,
or grow a sweep by adding seeds); Ctrl-C raises ``SweepInterrupted`` (a KeyboardInterrupt) saying how many runs are
saved, and a worker's exception is ``SweepFailed``, one line. ``summarize`` prints the normalized-score table with
bootstrap CIs and writes ``summary.csv`` and one plot of the curves per budget.

Here: running and resuming. The grid is :mod:`~evostim.clients.sweeps.grid`, the Parquet files
:mod:`~evostim.clients.sweeps.results`, the table and curves :mod:`~evostim.clients.sweeps.summary`; their public
names are importable from here too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from evostim.clients.simulation.neurons import calibrated_gains
from evostim.clients.sweeps.engine import RunResult, RunSpec, evolve
from evostim.clients.sweeps.grid import OptimizerEntry, SweepConfig, config_with
from evostim.clients.sweeps.panels import FloatArray, Precision, make_panel, native_bf16
from evostim.clients.sweeps.results import read_results, read_rows, write_task
from evostim.clients.sweeps.summary import SweepSummary, bootstrap_ci, ratio_ci, summarize
from evostim.extras import MissingExtra, is_installed, require

__all__ = [
    "OptimizerEntry",
    "SweepConfig",
    "SweepFailed",
    "SweepInterrupted",
    "SweepSummary",
    "SweepWorker",
    "bootstrap_ci",
    "config_with",
    "ratio_ci",
    "read_results",
    "run_sweep",
    "summarize",
]


# -- the workers ----------------------------------------------------------------------------------------------
class SweepWorker:
    """One CPU's worth of a sweep: a panel loaded once, then tasks of runs stepped together."""

    def __init__(self, panel: str, units: Sequence[str], precision: Precision, threads: int | None = 1) -> None:
        if threads is not None:  # one core per Ray worker (Ray schedules one per CPU); None: leave the process's
            import torch

            torch.set_num_threads(threads)
        self._panel = make_panel(panel, units, precision)

        self._codes: tuple[int, FloatArray] | None = None  # the calibration's random codes, made once

    def names(self) -> list[str]:
        return list(self._panel.names)

    def calibration_block(self, count: int, start: int) -> FloatArray:
        """Activations (rows, units) of every unit on the random codes ``start:start + CALIBRATION_BLOCK`` of the
        ``count`` a calibration draws (the same codes, and the same batches, as one whole pass)."""
        if self._codes is None or self._codes[0] != count:
            self._codes = (count, self._panel.random_codes(count, seed=CALIBRATION_SEED))
        return self._panel.activation_matrix(self._codes[1][start : start + CALIBRATION_BLOCK])

    def calibration_blocks(self, count: int) -> Iterator[FloatArray]:
        """Every block of the calibration, in order."""
        return (self.calibration_block(count, start) for start in range(0, count, CALIBRATION_BLOCK))

    def run(self, specs: Sequence[RunSpec], gains: dict[str, float]) -> list[RunResult]:
        self._codes = None
        return evolve(self._panel, specs, gains)


CALIBRATION_SEED = 12345
CALIBRATION_BLOCK = 1000  # random images per block: the panels' own batch (activation_matrix's chunk)


def _tasks(specs: Sequence[RunSpec], size: int, workers: int) -> list[list[RunSpec]]:
    """Tasks of at most ``size`` runs, and no larger than keeps every worker busy (16 runs on 2 workers: 2 x 8)."""
    size = max(1, min(size, math.ceil(len(specs) / max(workers, 1))))
    return [list(specs[start : start + size]) for start in range(0, len(specs), size)]


class SweepFailed(RuntimeError):
    """A worker's task raised: the cause in one line (Ray's traceback, with its colour codes, left out)."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C: what was saved (``saved`` of ``total`` runs in ``out``) and how to go on (run it again)."""

    def __init__(self, out: Path, saved: int, total: int) -> None:
        super().__init__(f"interrupted: {saved} of {total} runs are saved in {out}; run the same sweep again to resume")
        self.out, self.saved, self.total = out, saved, total


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failure(error: Exception) -> SweepFailed:
    """A Ray error as one line: the worker's own exception, type and message, without Ray's coloured traceback."""
    cause = getattr(error, "cause", None) or error
    message = _ANSI.sub("", str(cause)).strip().splitlines() or [""]
    return SweepFailed(f"a sweep worker failed: {type(cause).__name__}: {message[-1]}")


class _RayPool:
    """Ray actors, one CPU each; tasks answered in the order they finish."""

    def __init__(self, config: SweepConfig, address: str | None, workers: int | None) -> None:
        self._ray = require("ray", extra="sweep", feature="a sweep")
        if not self._ray.is_initialized():
            # quiet: Ray's start-up notices would interleave with the progress bar
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
            }
            if address is None and workers is not None:
                options["num_cpus"] = workers
            self._ray.init(address=address, **options)
        count = workers or max(1, int(self._ray.available_resources().get("CPU", 1)))
        # Ray hides the GPUs from actors that ask for none, so the workers share the cluster's GPUs explicitly
        gpus = float(self._ray.cluster_resources().get("GPU", 0))
        actor = self._ray.remote(num_cpus=1, num_gpus=gpus / count)(SweepWorker)
        self.actors = [actor.remote(config.panel, config.units, config.precision) for _ in range(count)]

    def names(self) -> list[str]:
        """The panel's units, in the order of the calibration's columns."""
        try:
            names: list[str] = self._ray.get(self.actors[0].names.remote())
        except self._ray.exceptions.RayError as error:  # a worker that could not start (its panel did not load)
            raise _failure(error) from None
        return names

    def calibration_blocks(self, count: int) -> Iterator[FloatArray]:
        """The calibration's blocks in order, computed on every worker at once."""
        starts: list[Any] = list(range(0, count, CALIBRATION_BLOCK))
        yield from self._answers(lambda actor, start: actor.calibration_block.remote(count, start), starts, True)

    def map(self, tasks: Sequence[list[RunSpec]], gains: dict[str, float]) -> Iterator[list[RunResult]]:
        yield from self._answers(lambda actor, task: actor.run.remote(task, gains), list(tasks), False)

    def _answers(self, call: Callable[[Any, Any], Any], work: list[Any], ordered: bool) -> Iterator[Any]:
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        answers = pool.map(call, work) if ordered else pool.map_unordered(call, work)
        try:
            yield from answers
        except self._ray.exceptions.RayError as error:  # a worker's exception, or a worker that died
            raise _failure(error) from None

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)


Blocks = Callable[[int], Iterator[FloatArray]]  # count -> the calibration's activation blocks, in order


def _calibrate(names: list[str], blocks: Blocks, count: int, progress: bool) -> tuple[FloatArray, FloatArray]:
    """Per unit: the max over ``count`` random codes, and the gain of its spike counts (p99 -> 20 spikes)."""
    parts = []
    with tqdm(total=count, unit="image", desc="calibrating", disable=not progress) as bar:
        for block in blocks(count):
            parts.append(np.asarray(block))
            bar.update(len(block))
    activations = np.concatenate(parts)
    maxima: FloatArray = activations.max(axis=0)
    return maxima, calibrated_gains(activations, names)


def _calibration(
    out: Path, config: SweepConfig, names: list[str], blocks: Blocks, progress: bool
) -> dict[str, tuple[float, float]]:
    """Per unit (random max, Poisson gain), computed once per output folder and kept in calibration.json."""
    path = out / "calibration.json"
    known: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if known.get("random_codes") == config.random_codes and set(config.units) <= set(known.get("units", {})):
        return {unit: (known["units"][unit][0], known["units"][unit][1]) for unit in config.units}
    maxima, gains = _calibrate(names, blocks, config.random_codes, progress)
    fresh = {n: (float(m), float(g)) for n, m, g in zip(names, maxima, gains, strict=True)}
    units = {**known.get("units", {}), **fresh}
    partial = out / ".calibration.json.partial"
    partial.write_text(json.dumps({"random_codes": config.random_codes, "units": units}, indent=1))
    os.replace(partial, path)
    return {unit: (units[unit][0], units[unit][1]) for unit in config.units}


def check_extras(workers: int | None) -> None:
    """Refuse (MissingExtra, naming it) a sweep whose extras are missing: pyarrow for its results, and Ray unless it
    runs in this process (``workers=0``); before anything is calibrated or written."""
    for module in ("pyarrow",) if workers == 0 else ("pyarrow", "ray"):
        if not is_installed(module):
            raise MissingExtra(extra="sweep", module=module, feature="a sweep")


def run_sweep(
    config: SweepConfig,
    out: Path | str,
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> int:
    """Run every run of ``config`` not yet in ``out``; returns how many ran. ``workers=0`` runs in this process
    (no Ray); otherwise ``workers`` Ray actors (default: every CPU of the local Ray or of the cluster)."""
    out = Path(out)
    check_extras(workers)
    _check_problem(config, out, local=address is None)  # before the folder exists: a refused sweep leaves nothing
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(config.model_dump_json(indent=1))
    done = {row["key"] for row in read_rows(out / "runs")}
    specs = config.specs()
    pending = [spec for spec in specs if spec.key not in done]
    if not pending:
        return 0
    try:
        _run_tasks(config, out, pending, _Where(address, workers, progress), len(specs) - len(pending))
    except KeyboardInterrupt:
        saved = len({row["key"] for row in read_rows(out / "runs")} & {spec.key for spec in specs})
        raise SweepInterrupted(out, saved, len(specs)) from None
    return len(pending)


class _Where:
    """Where a sweep runs (``address``, ``workers``) and whether it shows progress bars."""

    def __init__(self, address: str | None, workers: int | None, progress: bool) -> None:
        self.address, self.workers, self.progress = address, workers, progress


# What defines the problem a folder's runs solved but is not in their keys: resuming with another would mix them.
_PROBLEM_FIELDS = ("panel", "precision", "random_codes")


def _check_problem(config: SweepConfig, out: Path, *, local: bool) -> None:
    """Refuse, before any run starts, a sweep whose runs would be silently wrong or would crawl."""
    stored = out / "sweep.json"
    if stored.exists() and any((out / "runs").glob("*.parquet")):
        before = json.loads(stored.read_text())
        changed = [
            f"{name}: {before.get(name)!r} in the folder, {getattr(config, name)!r} now"
            for name in _PROBLEM_FIELDS
            if before.get(name, SweepConfig.model_fields[name].default) != getattr(config, name)
        ]
        if changed:
            raise ValueError(
                f"{out} holds runs of another problem ({'; '.join(changed)}); resuming would mix them with these "
                "runs: use another --out, or the folder's settings"
            )
    if local and config.panel == "cnn" and config.precision == "bf16" and not native_bf16():
        raise ValueError(
            "precision bf16: this machine computes bfloat16 only by emulation (no CUDA, no AVX512-BF16 or AMX), "
            "about 80x slower than fp32 here; use fp32"
        )


def _run_tasks(config: SweepConfig, out: Path, pending: list[RunSpec], where: _Where, done: int) -> None:
    """Calibrate (once per folder), then run the pending runs here (``workers=0``) or on Ray, in tasks that keep
    every worker busy, writing each task as it ends."""
    finished: Iterator[list[RunResult]]
    if where.workers == 0:
        worker = SweepWorker(config.panel, config.units, config.precision, threads=None)
        gains = _gains(_calibration(out, config, worker.names(), worker.calibration_blocks, where.progress))
        tasks = _tasks(pending, config.runs_per_task, 1)
        finished, close = (worker.run(task, gains) for task in tasks), None
    else:
        pool = _RayPool(config, where.address, where.workers)
        try:
            gains = _gains(_calibration(out, config, pool.names(), pool.calibration_blocks, where.progress))
        except BaseException:
            pool.close()
            raise
        tasks = _tasks(pending, config.runs_per_task, len(pool.actors))
        finished, close = pool.map(tasks, gains), pool.close
    total = done + len(pending)
    try:
        with tqdm(total=total, initial=done, unit="run", desc="sweep", disable=not where.progress) as bar:
            for results in finished:
                write_task(out, results)
                bar.update(len(results))
    finally:
        if close is not None:
            close()


def _gains(calibration: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {unit: gain for unit, (_, gain) in calibration.items()}
