"""A sweep's summary: the normalized-score table with bootstrap CIs over units x seeds (printed, and written as
``summary.csv``), and one plot of the mean curves per budget (``curves_<budget>.png``)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evostim import optimizers
from evostim.clients.simulation.neurons import noise_order
from evostim.clients.sweeps.panels import FloatArray
from evostim.clients.sweeps.results import read_results

__all__ = ["Row", "SweepSummary", "bootstrap_ci", "ratio_ci", "summarize"]


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


def summarize(out: Path | str, *, baseline: str = "ga", echo: Callable[[str], None] = print) -> SweepSummary:
    """Print the table of a sweep's results in ``out``; write ``summary.csv`` and ``curves_<budget>.png``."""
    out = Path(out)
    runs, generations = read_results(out)
    calibration = json.loads((out / "calibration.json").read_text())["units"]
    ceiling: dict[str, float] = defaultdict(lambda: -math.inf)
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
        groups[(run["optimizer"], run["noise"], run["generations"])].append(run)
    context = _Context(groups, ceiling, {u: v[0] for u, v in calibration.items()}, baseline, np.random.default_rng(0))
    order = sorted(groups, key=lambda k: (k[2], noise_order(k[1]), k[0]))
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
    echo(f"{'optimizer':<16}{'noise':>12}{'evals':>7}{'runs':>6}{'(a) / best any run':>26}"
         f"{'(b) / max of random':>26}{f'wins vs {baseline}':>14}{'optimizer s/run':>17}")  # fmt: skip
    for row in rows:
        wins = "-" if row.wins is None else f"{row.wins:.0%}"
        echo(f"{row.optimizer:<16}{row.noise:>12}{row.evaluations:>7}{row.runs:>6}{_interval(row.best_any_run):>26}"
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
    noises = sorted({noise for noise, _ in curves}, key=noise_order)
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
