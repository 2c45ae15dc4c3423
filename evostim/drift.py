"""Drift correction from reference images, defined once: a session with ``objective.drift_correction`` and a sweep
run with ``drift_correction`` both tell their optimizer each evolved score divided by :func:`drift_factor` of the
reference responses so far. Pure Python (``math`` only): the server and the clients both import it, and neither
imports the other.

Labs show the same reference images in every generation; a neuron whose responsiveness declines over the recording
answers them less and less, and its later (better) images then score below earlier ones. The correction divides
generation t's scores by the neuron's responsiveness at t relative to generation 0, estimated from the mean
reference score of each generation so far:

- a straight line is fitted to the log of those means against the generation number (least squares), its slope
  shrunk towards zero (ridge: slope = Sxy / (Sxx + ``ridge``), Sxx the spread of the generation numbers, Sxy their
  co-spread with the logs); the factor is the line's value at t over its value at generation 0, exp(slope x t);
- so generation 0's factor is 1, and the factor follows the trend of many generations, not one generation's noise:
  with the default 4 random-face references near a neuron's spontaneous rate, one generation's mean is a few spikes
  (about 35% noise under over-dispersed counts), far noisier than the drift between generations, and dividing by it
  made the searches worse (docs/sample_efficiency.md, "Drift correction"). ``ridge`` = 1,000 is the spread of 23
  generations: over 23 generations the fitted slope is halved, over 40 shrunk by a sixth, over 10 nearly flat;
- a generation whose reference mean is missing (none measured), not a finite number, or not positive (a
  baseline-subtracted score at or below zero has no logarithm) adds no point to the fit; its factor is the line
  fitted to the others. With fewer than two usable generations the factor is 1 (no correction);
- the factor is bounded to [1 / ``max_factor``, ``max_factor``] (4): a correction never multiplies a score by more
  than 4 or less than a quarter, and never divides by a number near zero.

The factor of generation t uses generations 0..t only (it is known when t's responses arrive) and is never revised:
what was told stays told. It derives from the stored reference scores alone, so a replay tells the same values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DRIFT_RULE", "DriftRule", "drift_factor", "drift_factors"]

_RULE_NAME = "log-linear-ridge"


@dataclass(frozen=True)
class DriftRule:
    """The correction's constants (stored with a session that uses it, so a later default never changes how a
    stored session replays)."""

    ridge: float = 1000.0  # generations squared: the slope is halved when the fit spans 23 generations
    max_factor: float = 4.0  # the factor stays within [1 / max_factor, max_factor]

    def __post_init__(self) -> None:
        if not (self.ridge >= 0 and math.isfinite(self.ridge)) or not (1.0 <= self.max_factor < math.inf):
            raise ValueError(f"a drift rule needs ridge >= 0 and 1 <= max_factor < inf, not {self}")

    def to_stored(self) -> dict[str, Any]:
        return {"rule": _RULE_NAME, "ridge": self.ridge, "max_factor": self.max_factor}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> DriftRule:
        if stored.get("rule", _RULE_NAME) != _RULE_NAME:
            raise ValueError(f"unknown drift correction rule {stored.get('rule')!r}; this server knows {_RULE_NAME}")
        return cls(ridge=float(stored["ridge"]), max_factor=float(stored["max_factor"]))


DRIFT_RULE = DriftRule()


def _usable(mean: float | None) -> bool:
    return mean is not None and math.isfinite(mean) and mean > 0


def drift_factor(reference_means: Sequence[float | None], rule: DriftRule = DRIFT_RULE) -> float:
    """The factor of the last generation of ``reference_means`` (the mean reference score of generations 0..t, in
    order; None where none was measured): the scores of generation t told to the optimizer are its scores / this."""
    points = [(float(s), math.log(m)) for s, m in enumerate(reference_means) if _usable(m)]  # type: ignore[arg-type]
    if len(points) < 2:
        return 1.0
    mean_s = math.fsum(s for s, _ in points) / len(points)
    mean_y = math.fsum(y for _, y in points) / len(points)
    sxx = math.fsum((s - mean_s) ** 2 for s, _ in points)
    sxy = math.fsum((s - mean_s) * (y - mean_y) for s, y in points)
    slope = sxy / (sxx + rule.ridge)
    generation = len(reference_means) - 1
    log_bound = math.log(rule.max_factor)
    return math.exp(min(max(slope * generation, -log_bound), log_bound))


def drift_factors(reference_means: Sequence[float | None], rule: DriftRule = DRIFT_RULE) -> list[float]:
    """The factor of every generation, each from the generations up to it (as each was told)."""
    return [drift_factor(reference_means[: t + 1], rule) for t in range(len(reference_means))]
