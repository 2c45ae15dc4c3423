"""Sample efficiency of a sweep's optimizers: how many evaluations each needs to reach a baseline's final score.

In a lab every generation costs recording time, so the figure that matters is how soon a search reaches a high
response. Values are normalized per unit (the clean activation of a run's best-observed image / the best any run
reached on that unit), so units pool. Three readings, each with a 95% bootstrap CI over (unit, noise, seed)
pairings:

- **ratio** (the headline): the evaluations at which an optimizer's mean curve first reaches the baseline's mean
  final value, / the baseline's budget. 0.5: on average it gets where the baseline ends in half the evaluations.
- **ERT ratio**, per pairing: the target is the baseline's own final value on that pairing; the cost is the
  evaluations needed to reach it, or the whole budget spent in vain. Pooled as COCO does (Hansen et al. 2016):
  ERT = evaluations spent over all pairings / pairings that reached the target, the expected cost when a failed
  search is followed by a fresh one. Strict: the target carries the baseline's luck on each seed.
- **median ratio**: the median per-pairing cost (infinite when at least half never reach the target).

Also: the share of pairings that reached their target, and the mean normalized value at a few budgets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evostim.clients.simulation.neurons import noise_order
from evostim.clients.sweeps.panels import FloatArray
from evostim.clients.sweeps.sweep import bootstrap_ci, read_results

__all__ = ["Efficiency", "EvaluationsToTarget", "sample_efficiency"]

Pairing = tuple[str, str, int]  # (unit, noise, seed)


@dataclass(frozen=True)
class EvaluationsToTarget:
    """An optimizer's evaluations to reach the baseline's final score, over the pairings of one noise level (or
    all of them: ``noise == "all"``)."""

    optimizer: str
    noise: str
    pairings: int
    reached: float  # the fraction of pairings where it reached the target within its budget
    ratio: tuple[float, float, float]  # where its mean curve reaches the baseline's mean final / baseline budget
    ert_ratio: tuple[float, float, float]  # ERT / baseline budget
    median_ratio: tuple[float, float, float]  # median evaluations to the target / baseline budget, 95% CI
    normalized: dict[int, tuple[float, float, float]]  # evaluations -> mean value / best of any run, 95% CI


@dataclass(frozen=True)
class Efficiency:
    baseline: str
    budget: int  # the baseline's evaluations
    rows: list[EvaluationsToTarget]

    def row(self, optimizer: str, noise: str = "all") -> EvaluationsToTarget:
        return next(r for r in self.rows if r.optimizer == optimizer and r.noise == noise)


def _curves(out: Path) -> tuple[dict[tuple[str, Pairing], FloatArray], dict[str, float], int]:
    """Each run's best-clean curve by (optimizer, pairing); each unit's best value of any run; the population."""
    runs, generations = read_results(out)
    points: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in generations:
        points[row["key"]].append((row["evaluations"], row["best_clean"]))
    curves: dict[tuple[str, Pairing], FloatArray] = {}
    ceiling: dict[str, float] = defaultdict(lambda: -math.inf)
    for run in runs:
        curves[(run["optimizer"], (run["unit"], run["noise"], run["seed"]))] = np.array(
            [value for _, value in sorted(points[run["key"]])]
        )
        ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
    population = int(runs[0]["population"]) if runs else 40
    return curves, dict(ceiling), population


def _evaluations_to(curve: FloatArray, target: float, population: int) -> float:
    hit = np.flatnonzero(curve >= target)
    return float((hit[0] + 1) * population) if len(hit) else math.inf


def expected_running_time(costs: FloatArray, budgets: FloatArray) -> float:
    """COCO's ERT: evaluations spent (the cost where the target was reached, the budget where not) / successes."""
    reached = np.isfinite(costs)
    if not reached.any():
        return math.inf
    return float(np.where(reached, costs, budgets).sum() / reached.sum())


def paired_bootstrap_ci(
    statistic: Callable[..., float], *paired: FloatArray, rng: np.random.Generator, draws: int = 2000
) -> tuple[float, float]:
    """95% bootstrap CI of ``statistic(*paired)``, resampling the rows of the paired arrays together (the pairings);
    infinite values allowed: they sort last, and no quantile interpolates between them."""
    if len(paired[0]) < 2:
        return math.nan, math.nan
    picks = rng.integers(0, len(paired[0]), size=(draws, len(paired[0])))
    values = np.array([statistic(*(array[p] for array in paired)) for p in picks])
    low, high = np.quantile(values, [0.025, 0.975], method="inverted_cdf")
    return float(low), float(high)


def _median(values: FloatArray) -> float:
    return float(np.median(values))


def _normalized_curves(name: str, pairings: Sequence[Pairing], context: dict[str, Any]) -> FloatArray:
    """(pairings, generations): each pairing's curve / the best any run reached on its unit."""
    curves, ceiling = context["curves"], context["ceiling"]
    length = min(len(curves[(name, p)]) for p in pairings)
    return np.array([curves[(name, p)][:length] / ceiling[p[0]] for p in pairings])


def mean_curve_ratio(mine: FloatArray, theirs: FloatArray) -> float:
    """Where the mean of curves ``mine`` (pairings, G) first reaches the mean final value of ``theirs``, as a
    fraction of ``theirs``' budget (inf if it never does)."""
    target = theirs.mean(axis=0)[-1]  # reduced as the curve is, so a curve reaches its own final value exactly
    hit = np.flatnonzero(mine.mean(axis=0) >= target)
    return float((hit[0] + 1) / theirs.shape[1]) if len(hit) else math.inf


def _row(optimizer: str, noise: str, pairings: Sequence[Pairing], context: dict[str, Any]) -> EvaluationsToTarget:
    curves, population = context["curves"], context["population"]
    baseline, budget, rng = context["baseline"], context["budget"], context["rng"]
    costs = np.array([_evaluations_to(curves[(optimizer, p)], curves[(baseline, p)][-1], population) for p in pairings])
    spent = np.array([len(curves[(optimizer, p)]) * population for p in pairings], dtype=np.float64)
    ert_low, ert_high = paired_bootstrap_ci(expected_running_time, costs, spent, rng=rng)
    mine, theirs = _normalized_curves(optimizer, pairings, context), _normalized_curves(baseline, pairings, context)
    normalized = {}
    for evaluations in context["checkpoints"]:
        values = mine[:, min(evaluations // population, mine.shape[1]) - 1]
        normalized[evaluations] = (float(values.mean()), *bootstrap_ci(values, rng))
    return EvaluationsToTarget(
        optimizer,
        noise,
        len(pairings),
        float(np.mean(np.isfinite(costs))),
        (mean_curve_ratio(mine, theirs), *paired_bootstrap_ci(mean_curve_ratio, mine, theirs, rng=rng)),
        (expected_running_time(costs, spent) / budget, ert_low / budget, ert_high / budget),
        (float(np.median(costs / budget)), *paired_bootstrap_ci(_median, costs / budget, rng=rng)),
        normalized,
    )


def _noise_levels(pairings: Sequence[Pairing]) -> list[str]:
    present = {p[1] for p in pairings}
    return [*sorted(present, key=noise_order), "all"]


def _paired(
    curves: dict[tuple[str, Pairing], FloatArray], name: str, pairings: Sequence[Pairing], noise: str
) -> list[Pairing]:
    """The pairings of one noise level (or all) that optimizer ``name`` ran."""
    return [p for p in pairings if noise in ("all", p[1]) and (name, p) in curves]


def _groups(
    curves: dict[tuple[str, Pairing], FloatArray], pairings: Sequence[Pairing], baseline: str
) -> list[tuple[str, str, list[Pairing]]]:
    """(optimizer, noise level or "all", its pairings that the baseline has too), the baseline first."""
    names = sorted({name for name, _ in curves}, key=lambda n: (n != baseline, n))
    groups = [
        (name, noise, _paired(curves, name, pairings, noise)) for noise in _noise_levels(pairings) for name in names
    ]
    return [group for group in groups if group[2]]


def sample_efficiency(
    out: Path,
    *,
    baseline: str = "cholesky-cma",
    checkpoints: Sequence[int] = (800, 1600, 3000),
    echo: Callable[[str], None] = print,
) -> Efficiency:
    """Per optimizer and noise level (and pooled), from the sweep results in ``out``: evaluations to reach the
    baseline's final score (ratio to its budget) and normalized values at ``checkpoints`` evaluations; printed."""
    curves, ceiling, population = _curves(out)
    pairings = sorted({p for name, p in curves if name == baseline})
    if not pairings:
        raise ValueError(f"no runs of the baseline {baseline!r} in {out}")
    budget = len(curves[(baseline, pairings[0])]) * population
    context = {
        "curves": curves,
        "ceiling": ceiling,
        "population": population,
        "baseline": baseline,
        "budget": budget,
        "checkpoints": checkpoints,
        "rng": np.random.default_rng(0),
    }
    rows = [_row(name, noise, of, context) for name, noise, of in _groups(curves, pairings, baseline)]
    efficiency = Efficiency(baseline, budget, rows)
    _print(efficiency, checkpoints, echo)
    return efficiency


def _interval(values: tuple[float, float, float], digits: int = 3) -> str:
    mean, lo, hi = values
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _print(efficiency: Efficiency, checkpoints: Sequence[int], echo: Callable[[str], None]) -> None:
    echo(f"evaluations to reach {efficiency.baseline}'s final score (at {efficiency.budget}) / {efficiency.budget}, "
         "of the mean curve and per unit x seed [95% CI]; value / best of any run after N evaluations")  # fmt: skip
    header = "".join(f"{f'value at {n}':>24}" for n in checkpoints)
    echo(f"{'optimizer':<22}{'noise':>12}{'runs':>6}{'ratio':>20}{'reached':>9}{'ERT ratio':>20}{'median ratio':>20}"
         f"{header}")  # fmt: skip
    for row in efficiency.rows:
        values = "".join(f"{_interval(row.normalized[n]):>24}" for n in checkpoints)
        echo(f"{row.optimizer:<22}{row.noise:>12}{row.pairings:>6}{_interval(row.ratio, 2):>20}{row.reached:>9.0%}"
             f"{_interval(row.ert_ratio, 2):>20}{_interval(row.median_ratio, 2):>20}{values}")  # fmt: skip
