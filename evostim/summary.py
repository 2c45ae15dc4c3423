"""The score summary of a generation, defined once: the server stores one with each closed generation (and returns it
in ``GET /v1/sessions/{id}/history`` among the generation's ``optimizer`` entries), the analyses compute theirs with
the same function, and the dashboard draws what the history carries. numpy only: the server and the clients both
import it, and neither imports the other.

``statistics`` describes values along their first axis (NaN: not measured, left out); ``summarize`` turns one
generation's scores into its :class:`GenerationSummary`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["SCORE_SUMMARIES", "GenerationSummary", "Statistics", "statistics", "summarize"]

SCORE_SUMMARIES = ("evolved_mean", "evolved_sd", "evolved_max", "reference_mean", "best_score")
"""The entries of a generation's summary that are scores, not the optimizer's own state (``sigma``, ``mean_norm``,
...); ``best_score`` is the optimizer's best so far."""


@dataclass(frozen=True, eq=False)
class Statistics:
    """Values described along their first axis, each entry shaped as the values without that axis.

    NaN where a column has too few measured values (mean and max: none; sd and sem: fewer than two); ``argmax`` is
    -1 where there is none.
    """

    n: NDArray[np.int64]  # measured values
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]  # sample standard deviation (ddof=1)
    sem: NDArray[np.float64]  # standard error of the mean: sd / sqrt(n)
    max: NDArray[np.float64]
    argmax: NDArray[np.int64]  # the first position of the maximum among all values, measured or not


def statistics(values: ArrayLike) -> Statistics:
    """Count, mean, sample SD, SEM, max and its first position of ``values`` (N, ...) along axis 0, NaN left out.

    Without NaN a column's mean and max are numpy's ``mean`` and ``max`` of it, bit for bit.
    """
    array = np.asarray(values, dtype=np.float64)
    measured = ~np.isnan(array)
    n = measured.sum(axis=0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(measured, array, 0.0).sum(axis=0) / n  # numpy's mean: the pairwise sum, then one division
        squares = np.where(measured, array - mean, 0.0) ** 2
        sd = np.sqrt(squares.sum(axis=0) / (n - 1))
        sem = sd / np.sqrt(n)
    sd, sem = np.where(n < 2, np.nan, sd), np.where(n < 2, np.nan, sem)
    candidates = np.where(measured, array, -np.inf)
    top = np.where(n == 0, np.nan, np.max(candidates, axis=0, initial=-np.inf))
    first = np.argmax(candidates, axis=0) if len(array) else np.zeros(np.shape(n), dtype=np.int64)
    return Statistics(
        n=np.asarray(n),
        mean=np.asarray(mean, dtype=np.float64),
        sd=np.asarray(sd, dtype=np.float64),
        sem=np.asarray(sem, dtype=np.float64),
        max=np.asarray(top, dtype=np.float64),
        argmax=np.asarray(np.where(n == 0, -1, first), dtype=np.int64),
    )


@dataclass(frozen=True)
class GenerationSummary:
    """A scored generation's summary: its evolved stimuli's mean, SD and max, its references' mean, its best."""

    evolved_mean: float
    evolved_max: float
    reference_mean: float | None  # None: no reference was measured
    best_stimulus: str  # the first evolved stimulus with the highest score
    evolved_sd: float | None = None  # None: fewer than two evolved stimuli measured

    def as_dict(self) -> dict[str, float]:
        """The entries stored with the generation (and returned by the history): the numbers, each where defined."""
        entries = {"evolved_mean": self.evolved_mean, "evolved_max": self.evolved_max}
        if self.reference_mean is not None:
            entries["reference_mean"] = self.reference_mean
        if self.evolved_sd is not None and math.isfinite(self.evolved_sd):  # sd of huge scores can overflow
            entries["evolved_sd"] = self.evolved_sd
        return entries


def summarize(ids: Sequence[str], kinds: Sequence[str], scores: Mapping[str, float]) -> GenerationSummary:
    """The summary of a generation's stimuli (ids and kinds, ``evolved`` or ``reference``) from the scores of the
    measured ones; at least one evolved stimulus must be measured."""
    evolved = _measured(ids, kinds, scores, "evolved")
    if not evolved:
        raise ValueError("a generation's summary needs at least one measured evolved stimulus")
    mine = statistics([scores[i] for i in evolved])
    theirs = statistics([scores[i] for i in _measured(ids, kinds, scores, "reference")])
    return GenerationSummary(
        evolved_mean=float(mine.mean),
        evolved_max=float(mine.max),
        reference_mean=float(theirs.mean) if theirs.n > 0 else None,
        best_stimulus=evolved[int(mine.argmax)],
        evolved_sd=float(mine.sd) if mine.n > 1 else None,
    )


def _measured(ids: Sequence[str], kinds: Sequence[str], scores: Mapping[str, float], kind: str) -> list[str]:
    """The ids of the measured stimuli of one kind, in their order."""
    return [i for i, k in zip(ids, kinds, strict=True) if k == kind and i in scores]
