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
"""

from __future__ import annotations

import json
import logging
import math
import os
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tqdm.auto import tqdm

from evostim import optimizers
from evostim.clients.sweeps.engine import RunResult, RunSpec, evolve, make_optimizer
from evostim.clients.sweeps.panels import (
    CNN_UNITS,
    NOISE_LEVELS,
    FloatArray,
    Precision,
    calibrate,
    make_panel,
    native_bf16,
    panel_space,
)
from evostim.extras import require
from evostim.generators.metric_lookup import metric_location

__all__ = ["OptimizerEntry", "SweepConfig", "SweepSummary", "read_results", "run_sweep", "summarize"]

_NO_PARAMS: dict[str, Any] = {}


class OptimizerEntry(BaseModel):
    """An optimizer of the grid: a registered name (or ``ngopt``), its parameters, and its label in the tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str = ""

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name != "ngopt" and name not in optimizers.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; known: ngopt, {', '.join(sorted(optimizers.OPTIMIZERS))}")
        return name

    @field_validator("params")
    @classmethod
    def _basis_found(cls, params: dict[str, Any]) -> dict[str, Any]:
        """A basis named as a session names one: a file (relative to here), WEIGHTS_DIR/<name>.npz (the folder
        EVOSTIM_WEIGHTS_DIR, default ./weights), or a shipped metric's name (``dcgan-faces.metric``)."""
        if not isinstance(params.get("basis"), str):
            return params
        try:
            found = metric_location(params["basis"], Path(os.environ.get("EVOSTIM_WEIGHTS_DIR", "weights")))
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        return {**params, "basis": found}

    @property
    def title(self) -> str:
        return self.label or self.name


class SweepConfig(BaseModel):
    """The grid. Every field has a default: an empty file sweeps the 24-unit panel with the default optimizer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    panel: Literal["cnn", "synthetic"] = "cnn"
    units: list[str] = Field(default_factory=lambda: list(CNN_UNITS), min_length=1)
    optimizers: list[OptimizerEntry] = Field(
        default_factory=lambda: [OptimizerEntry(name=optimizers.DEFAULT_OPTIMIZER)], min_length=1
    )
    seeds: list[int] = Field(default_factory=lambda: list(range(5)), min_length=1)
    noise: list[str] = Field(default_factory=lambda: list(NOISE_LEVELS), min_length=1)
    generations: list[int] = Field(default_factory=lambda: [75], min_length=1, description="budgets, in generations")
    population: int = Field(default=40, ge=2, le=1000)
    code_norm_constraint: bool = False
    precision: Precision = "fp32"
    random_codes: int = Field(default=10_000, ge=10, description="random images per unit for calibration")
    runs_per_task: int = Field(default=16, ge=1, description="runs stepped together in one batch")

    @field_validator("optimizers", mode="before")
    @classmethod
    def _names_are_entries(cls, value: Any) -> Any:
        return [{"name": item} if isinstance(item, str) else item for item in value]

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_is_a_range(cls, value: Any) -> Any:
        return list(range(value)) if isinstance(value, int) else value

    @field_validator("noise", mode="before")
    @classmethod
    def _noise_levels(cls, value: Any) -> Any:
        levels = [str(level) for level in value]
        unknown = [level for level in levels if level not in NOISE_LEVELS]
        if unknown:
            raise ValueError(f"unknown noise levels {unknown}; known: {', '.join(NOISE_LEVELS)}")
        return levels

    @field_validator("generations", mode="before")
    @classmethod
    def _one_budget(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @model_validator(mode="after")
    def _optimizers_take_their_parameters(self) -> SweepConfig:
        """Each optimizer is built once here, so a parameter it refuses stops the sweep before any run starts."""
        dim, code_norm = panel_space(self.panel)
        for entry in self.optimizers:
            try:
                make_optimizer(
                    RunSpec(entry.name, "", "0", 0, 1, entry.params, population=self.population), dim, code_norm
                )
            except optimizers.OptimizerError as error:  # its message names the optimizer
                raise ValueError(str(error)) from None
            except OSError as error:  # a basis file that cannot be read
                raise ValueError(f"{entry.title}: {error}") from None
        return self

    @classmethod
    def from_file(cls, path: Path) -> SweepConfig:
        """A ``.yaml``/``.yml`` or ``.toml`` file holding the fields above."""
        text = path.read_text()
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            yaml = require("yaml", extra="sweep", feature="a YAML sweep file")
            data = yaml.safe_load(text) or {}
        return _validated(data, f"{path}: ")

    def specs(self) -> list[RunSpec]:
        """Every run of the grid, ordered so that a task's runs share a network (units in their given order)."""
        return [
            RunSpec(
                optimizer=entry.name,
                params=entry.params,
                label=entry.title,
                unit=unit,
                noise=noise,
                seed=seed,
                generations=budget,
                population=self.population,
                code_norm_constraint=self.code_norm_constraint,
            )
            for unit in self.units
            for entry in self.optimizers
            for noise in self.noise
            for budget in self.generations
            for seed in self.seeds
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


# -- Parquet out ----------------------------------------------------------------------------------------------
def _spec_columns(spec: RunSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "optimizer": spec.name,
        "optimizer_name": spec.optimizer,
        "params": json.dumps(dict(spec.params), sort_keys=True),
        "unit": spec.unit,
        "noise": spec.noise,
        "seed": spec.seed,
        "generations": spec.generations,
        "population": spec.population,
        "code_norm_constraint": spec.code_norm_constraint,
    }


def _run_row(result: RunResult) -> dict[str, Any]:
    return {
        **_spec_columns(result.spec),
        "evaluations": result.spec.generations * result.spec.population,
        "best_clean": result.best_clean[-1],
        "best_observed": result.best_observed[-1],
        "best_clean_seen": result.best_clean_seen[-1],
        "best_code": result.best_code,
        "optimizer_seconds": result.optimizer_seconds,
    }


def _generation_rows(result: RunResult) -> Iterator[dict[str, Any]]:
    population = result.spec.population
    for generation, values in enumerate(
        zip(result.best_clean, result.best_observed, result.best_clean_seen, result.mean_observed, strict=True)
    ):
        clean, observed, seen, mean = values
        yield {
            "key": result.spec.key,
            "generation": generation,
            "evaluations": (generation + 1) * population,
            "best_clean": clean,
            "best_observed": observed,
            "best_clean_seen": seen,
            "mean_observed": mean,
        }


def _write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """One Parquet file, whole or not at all (written beside, then renamed into place)."""
    pa = require("pyarrow", extra="sweep", feature="evostim sweep")
    parquet = require("pyarrow.parquet", extra="sweep", feature="evostim sweep")
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    parquet.write_table(pa.Table.from_pylist(rows), partial)
    os.replace(partial, folder / f"{name}.parquet")


def _write_task(out: Path, results: Sequence[RunResult]) -> None:
    # The generations file first: a run counts as done once its row is in runs/, and then its curve is there too.
    name = uuid.uuid4().hex[:12]
    _write_rows(out / "generations", name, [row for result in results for row in _generation_rows(result)])
    _write_rows(out / "runs", name, [_run_row(result) for result in results])


def _read_rows(folder: Path, tasks: set[str] | None = None) -> list[dict[str, Any]]:
    """The rows of the folder's Parquet files (of the named tasks only, when given)."""
    if not folder.is_dir():
        return []
    parquet = require("pyarrow.parquet", extra="sweep", feature="evostim sweep")
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.parquet")):
        if tasks is None or path.stem in tasks:
            rows.extend(parquet.read_table(path).to_pylist())
    return rows


def read_results(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(runs, generations) rows of the finished runs in ``out``: a task whose runs file was never written (the
    sweep stopped between its two files) has its generations left out, as its runs will run again."""
    finished = {path.stem for path in (out / "runs").glob("*.parquet")}
    return _read_rows(out / "runs"), _read_rows(out / "generations", finished)


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
    done = {row["key"] for row in _read_rows(out / "runs")}
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
            _write_task(out, results)
            advance(len(results))
    finally:
        if close is not None:
            close()


def _gains(calibration: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {unit: gain for unit, (_, gain) in calibration.items()}


# -- the summary ----------------------------------------------------------------------------------------------
def bootstrap_ci(values: FloatArray, rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    """95% bootstrap CI of the mean."""
    if len(values) < 2:
        return math.nan, math.nan
    means = rng.choice(values, size=(draws, len(values))).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ratio_ci(mine: FloatArray, theirs: FloatArray, rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    """95% bootstrap CI of mean(mine) / mean(theirs), resampling paired runs."""
    if len(mine) != len(theirs):
        raise ValueError(f"ratio_ci needs paired runs: {len(mine)} against {len(theirs)}")
    picks = rng.integers(0, len(mine), size=(draws, len(mine)))
    ratios = mine[picks].mean(axis=1) / theirs[picks].mean(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


@dataclass(frozen=True)
class Row:
    """One line of the summary: an optimizer at a noise level and budget, over units x seeds."""

    optimizer: str
    noise: str
    generations: int
    evaluations: int
    runs: int
    best_any_run: tuple[float, float, float]  # (a) mean and 95% CI: / best clean activation of any run on the unit
    random_max: tuple[float, float, float]  # (b) mean and 95% CI: / the unit's max over random images
    wins: float | None  # fraction of paired (unit, seed) runs above the baseline optimizer
    optimizer_seconds: float


@dataclass(frozen=True)
class SweepSummary:
    rows: list[Row]
    normalized: dict[tuple[str, str, int], FloatArray]  # (a) per run, by (optimizer, noise, budget), paired order


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["unit"], r["seed"]))


def _row(name: str, noise: str, budget: int, group: list[dict[str, Any]], context: _Context) -> Row:
    a = np.array([r["best_clean"] / context.ceiling[r["unit"]] for r in group])
    b = np.array([r["best_clean"] / context.random_max[r["unit"]] for r in group])
    baseline = _ordered(context.groups.get((context.baseline, noise, budget), []))
    wins = None
    if baseline and name != context.baseline and len(baseline) == len(group):
        wins = float(np.mean([r["best_clean"] > g["best_clean"] for r, g in zip(group, baseline, strict=True)]))
    return Row(
        name,
        noise,
        budget,
        budget * group[0]["population"],
        len(group),
        (float(a.mean()), *bootstrap_ci(a, context.rng)),
        (float(b.mean()), *bootstrap_ci(b, context.rng)),
        wins,
        float(np.mean([r["optimizer_seconds"] for r in group])),
    )


@dataclass
class _Context:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]]
    ceiling: dict[str, float]
    random_max: dict[str, float]
    baseline: str
    rng: np.random.Generator


def summarize(out: Path, *, baseline: str = "ga", echo: Callable[[str], None] = print) -> SweepSummary:
    """Print the table of a sweep's results in ``out``; write ``summary.csv`` and ``curves_<budget>.png``."""
    runs, generations = read_results(out)
    calibration = json.loads((out / "calibration.json").read_text())["units"]
    ceiling: dict[str, float] = defaultdict(lambda: -math.inf)
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
        groups[(run["optimizer"], run["noise"], run["generations"])].append(run)
    context = _Context(groups, ceiling, {u: v[0] for u, v in calibration.items()}, baseline, np.random.default_rng(0))
    order = sorted(groups, key=lambda k: (k[2], NOISE_LEVELS.index(k[1]), k[0]))
    rows = [_row(*key, _ordered(groups[key]), context) for key in order]
    normalized = {key: np.array([r["best_clean"] / ceiling[r["unit"]] for r in _ordered(groups[key])]) for key in order}
    _print_table(rows, baseline, len({r["unit"] for r in runs}), echo)
    _write_csv(out / "summary.csv", rows)
    _plot_curves(out, runs, generations, ceiling)
    return SweepSummary(rows, normalized)


def _interval(values: tuple[float, float, float]) -> str:
    mean, lo, hi = values
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def _print_table(rows: list[Row], baseline: str, units: int, echo: Callable[[str], None]) -> None:
    echo(f"{units} units; value = clean activation of each run's best image; 95% bootstrap CIs over units x seeds")
    echo(f"{'optimizer':<16}{'noise':>8}{'evals':>7}{'runs':>6}{'(a) / best any run':>26}"
         f"{'(b) / max of random':>26}{f'wins vs {baseline}':>14}{'optimizer s/run':>17}")  # fmt: skip
    for row in rows:
        wins = "-" if row.wins is None else f"{row.wins:.0%}"
        echo(f"{row.optimizer:<16}{row.noise:>8}{row.evaluations:>7}{row.runs:>6}{_interval(row.best_any_run):>26}"
             f"{_interval(row.random_max):>26}{wins:>14}{row.optimizer_seconds:>17.2f}")  # fmt: skip


def _write_csv(path: Path, rows: list[Row]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["optimizer", "noise", "generations", "evaluations", "runs", "a_mean", "a_lo", "a_hi",
                         "b_mean", "b_lo", "b_hi", "wins_vs_baseline", "optimizer_seconds"])  # fmt: skip
        for r in rows:
            writer.writerow([r.optimizer, r.noise, r.generations, r.evaluations, r.runs, *r.best_any_run, *r.random_max,
                             "" if r.wins is None else r.wins, r.optimizer_seconds])  # fmt: skip


def _curves(
    runs: list[dict[str, Any]], generations: list[dict[str, Any]], ceiling: dict[str, float]
) -> dict[tuple[int, str, str], list[FloatArray]]:
    """Each run's normalized (a) curve, grouped by (budget, noise, optimizer)."""
    by_key = {run["key"]: run for run in runs}
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in generations:
        if row["key"] in by_key:
            series[row["key"]].append((row["evaluations"], row["best_clean"]))
    curves: dict[tuple[int, str, str], list[FloatArray]] = defaultdict(list)
    for key, points in series.items():
        run = by_key[key]
        values = np.array([value for _, value in sorted(points)]) / ceiling[run["unit"]]
        curves[(run["generations"], run["noise"], run["optimizer"])].append(values)
    return curves


def _plot_curves(
    out: Path, runs: list[dict[str, Any]], generations: list[dict[str, Any]], ceiling: dict[str, float]
) -> None:
    """Per budget: mean normalized (a) curve per optimizer, one panel per noise level, with a 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = _curves(runs, generations, ceiling)
    population = {run["generations"]: run["population"] for run in runs}
    for budget in sorted({key[0] for key in curves}):
        of_budget = {(noise, name): group for (b, noise, name), group in curves.items() if b == budget}
        figure = _figure(plt, of_budget, population[budget])
        figure.savefig(out / f"curves_{budget}.png", dpi=110)
        plt.close(figure)


def _figure(plt: Any, curves: dict[tuple[str, str], list[FloatArray]], population: int) -> Any:
    """One budget's curves: a panel per noise level, a line per optimizer."""
    noises = [n for n in NOISE_LEVELS if n in {noise for noise, _ in curves}]
    figure, axes = plt.subplots(1, len(noises), figsize=(4.2 * len(noises), 3.6), sharey=True, squeeze=False)
    for axis, noise in zip(axes[0], noises, strict=True):
        for (level, name), group in sorted(curves.items()):
            if level == noise:
                _band(axis, np.array(group), population, name)
        axis.set(title=f"noise {noise}", xlabel="evaluations")
    axes[0][0].set_ylabel("clean score of best image / best of any run")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle("mean over units and seeds, 95% band")
    figure.tight_layout()
    return figure


def _band(axis: Any, curves: FloatArray, population: int, name: str) -> None:
    mean = curves.mean(axis=0)
    sem = curves.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
    evaluations = np.arange(1, len(mean) + 1) * population
    width = 2 if name == optimizers.DEFAULT_OPTIMIZER else 1
    axis.plot(evaluations, mean, label=name, linewidth=width)
    axis.fill_between(evaluations, mean - 1.96 * sem, mean + 1.96 * sem, alpha=0.15)


def _validated(data: Any, where: str = "") -> SweepConfig:
    """A SweepConfig, or a ValueError whose message names each bad field in one line."""
    try:
        return SweepConfig.model_validate(data)
    except pydantic.ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        ]
        raise ValueError(where + "; ".join(problems)) from None


def config_with(config: SweepConfig, **changes: Any) -> SweepConfig:
    """``config`` with the given (non-empty) fields replaced, validated again (for command-line overrides)."""
    return _validated({**config.model_dump(), **{key: value for key, value in changes.items() if value}})
