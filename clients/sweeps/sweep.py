"""``evostim sweep``: a grid of in-silico runs on Ray, streamed to Parquet, resumable, summarized with bootstrap CIs.

A sweep is units x optimizers (with parameters) x seeds x noise models x budgets (``SweepConfig``, from a small
YAML or TOML file). Its runs are cut into tasks of ``runs_per_task`` runs; a task is stepped together by the batched
engine (``evostim.clients.sweeps.engine``): its runs share one decode and one CNN pass per generation. Tasks go to
a pool of Ray actors (one CPU each, each holding its panel's generator and CNNs): ``ray.init()`` on this machine by
default (all its cores), or a cluster at ``address``. Each finished task is written at once, atomically, as two
Parquet files in the output folder:

- ``runs/<task>.parquet``: one row per run (its spec, its final values, its best image's code, optimizer seconds);
- ``generations/<task>.parquet``: one row per run and generation (evaluations so far and the run's values then).

Running the same sweep again into the same folder skips every run already written (resume after an interruption,
or grow a sweep by adding seeds). ``summarize`` prints the normalized-score table with bootstrap CIs and writes
``summary.csv`` and one plot of the curves per budget.

Here: running and resuming. The grid is :mod:`~evostim.clients.sweeps.grid`, the Parquet files
:mod:`~evostim.clients.sweeps.results`, the table and curves :mod:`~evostim.clients.sweeps.summary`; their public
names are importable from here too.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from evostim.clients.sweeps.engine import RunResult, RunSpec, evolve
from evostim.clients.sweeps.grid import OptimizerEntry, SweepConfig, config_with
from evostim.clients.sweeps.panels import Precision, calibrate, make_panel, native_bf16
from evostim.clients.sweeps.results import read_results, read_rows, write_task
from evostim.clients.sweeps.summary import SweepSummary, bootstrap_ci, ratio_ci, summarize
from evostim.extras import require

__all__ = [
    "OptimizerEntry",
    "SweepConfig",
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

    def calibrate(self, count: int) -> tuple[list[str], list[float], list[float]]:
        maxima, gains = calibrate(self._panel, count)
        return list(self._panel.names), maxima.tolist(), gains.tolist()

    def run(self, specs: Sequence[RunSpec], gains: dict[str, float]) -> list[RunResult]:
        return evolve(self._panel, specs, gains)


def _tasks(specs: Sequence[RunSpec], size: int) -> list[list[RunSpec]]:
    return [list(specs[start : start + size]) for start in range(0, len(specs), size)]


class _RayPool:
    """Ray actors, one CPU each; tasks answered in the order they finish."""

    def __init__(self, config: SweepConfig, address: str | None, workers: int | None) -> None:
        self._ray = require("ray", extra="sweep", feature="evostim sweep")
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

    def calibrate(self, count: int) -> tuple[list[str], list[float], list[float]]:
        answer: tuple[list[str], list[float], list[float]] = self._ray.get(self.actors[0].calibrate.remote(count))
        return answer

    def map(self, tasks: Sequence[list[RunSpec]], gains: dict[str, float]) -> Iterator[list[RunResult]]:
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        work: list[Any] = list(tasks)
        yield from pool.map_unordered(lambda actor, task: actor.run.remote(task, gains), work)

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)


def _calibration(out: Path, config: SweepConfig, compute: Callable[[int], Any]) -> dict[str, tuple[float, float]]:
    """Per unit (random max, Poisson gain), computed once per output folder and kept in calibration.json."""
    path = out / "calibration.json"
    known: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if known.get("random_codes") == config.random_codes and set(config.units) <= set(known.get("units", {})):
        return {unit: (known["units"][unit][0], known["units"][unit][1]) for unit in config.units}
    names, maxima, gains = compute(config.random_codes)
    units = {**known.get("units", {}), **{n: (m, g) for n, m, g in zip(names, maxima, gains, strict=True)}}
    partial = out / ".calibration.json.partial"
    partial.write_text(json.dumps({"random_codes": config.random_codes, "units": units}, indent=1))
    os.replace(partial, path)
    return {unit: (units[unit][0], units[unit][1]) for unit in config.units}


def run_sweep(
    config: SweepConfig,
    out: Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> int:
    """Run every run of ``config`` not yet in ``out``; returns how many ran. ``workers=0`` runs in this process
    (no Ray); otherwise ``workers`` Ray actors (default: every CPU of the local Ray or of the cluster)."""
    _check_problem(config, out, local=address is None)  # before the folder exists: a refused sweep leaves nothing
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(config.model_dump_json(indent=1))
    done = {row["key"] for row in read_rows(out / "runs")}
    specs = config.specs()
    pending = [spec for spec in specs if spec.key not in done]
    with tqdm(
        total=len(specs), initial=len(specs) - len(pending), unit="run", desc="sweep", disable=not progress
    ) as bar:
        if pending:
            _run_tasks(config, out, _tasks(pending, config.runs_per_task), address, workers, bar.update)
    return len(pending)


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


def _run_tasks(
    config: SweepConfig,
    out: Path,
    tasks: list[list[RunSpec]],
    address: str | None,
    workers: int | None,
    advance: Callable[[int], object],
) -> None:
    """Calibrate (once per folder), then run the tasks here (``workers=0``) or on Ray, writing each as it ends."""
    finished: Iterator[list[RunResult]]
    if workers == 0:
        worker = SweepWorker(config.panel, config.units, config.precision, threads=None)
        gains = _gains(_calibration(out, config, worker.calibrate))
        finished, close = (worker.run(task, gains) for task in tasks), None
    else:
        pool = _RayPool(config, address, workers)
        gains = _gains(_calibration(out, config, pool.calibrate))
        finished, close = pool.map(tasks, gains), pool.close
    try:
        for results in finished:
            write_task(out, results)
            advance(len(results))
    finally:
        if close is not None:
            close()


def _gains(calibration: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {unit: gain for unit, (_, gain) in calibration.items()}
