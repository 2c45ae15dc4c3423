"""The images with the best mean score over their showings so far: which image is a search's best, and which it shows
again (metric-cma's ``remeasure``).

Under spiking noise the highest single count of a session's 1,600 is mostly luck: the image it picks is often a
poorer one that drew high, and under a neuron whose gain declines it is an early one. Showing the leaders again
measures them at the neuron's present gain: a lucky one falls back, a good one keeps its place, and the best image
is judged by its mean over several counts (docs/sample_efficiency.md, round 42). An image is its code: a code
shown again, by whatever row, adds to that image's counts.

One rule for every judge: a session's optimizer keeps these, and the sweep engine judges every run's best image
with the same class (an image dropped by one is dropped by both, so both name the same best).

``shrink`` (round 46): images are ranked by their mean with that many pseudo-counts at the mean score of the
generation that first showed them, so that one lucky count ranks below an image that kept its score over several
showings (an empirical-Bayes estimate: a single count says less than several). 0: the plain mean.

O(KEPT d) memory and per generation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["KEPT", "MAX_REMEASURE", "Elites"]

# How many images are kept: far more than are shown again, so that an image that once led and fell back is still
# there to lead again when later leaders fall below it (as they do, measured again under a declining gain).
KEPT = 64
# The most images a generation may show again.
MAX_REMEASURE = 8


class Elites:
    """The ``KEPT`` images with the highest mean score so far (``estimates``: shrunk, with ``shrink``): their codes,
    score sums, showings, priors and first showing."""

    def __init__(self, dim: int, shrink: float = 0.0) -> None:
        self.shrink = shrink
        self.codes: FloatArray = np.zeros((0, dim))
        self.sums: FloatArray = np.zeros(0)
        self.counts: FloatArray = np.zeros(0)
        self.priors: FloatArray = np.zeros(0)  # the mean score of the generation that first showed each image
        self.origins: NDArray[np.int64] = np.zeros((0, 2), dtype=np.int64)  # (generation, row) of a first showing

    @property
    def means(self) -> FloatArray:
        return self.sums / self.counts

    @property
    def estimates(self) -> FloatArray:
        """What the images are ranked by: their means, each shrunk towards its generation's by ``shrink`` counts."""
        return _estimates(self.sums, self.counts, self.priors, self.shrink)

    @property
    def leader(self) -> tuple[float, int, int] | None:
        """The best image's mean score (its plain mean, ranked by ``estimates``) and where it was first shown
        (generation, row); None before any count."""
        if not len(self.codes):
            return None
        generation, row = self.origins[0]
        return float(self.means[0]), int(generation), int(row)

    def leaders(self, count: int) -> FloatArray:
        """The codes of the ``count`` best images by ``estimates`` (fewer while fewer were measured), best first."""
        return self.codes[:count].copy()

    def add(self, codes: FloatArray, scores: FloatArray, generation: int, rows: NDArray[np.intp]) -> None:
        """Count each measured image (shown in ``generation`` at ``rows``): a kept one adds to its sums, a new one
        enters with these scores' mean as its prior; the best ``KEPT`` stay (among equal estimates the one kept
        longer, then the earlier row)."""
        origins = np.vstack([self.origins, np.column_stack([np.full(len(rows), generation), rows])]).astype(np.int64)
        codes_ = np.vstack([self.codes, codes])
        sums, counts = np.concatenate([self.sums, scores]), np.concatenate([self.counts, np.ones(len(scores))])
        priors = np.concatenate([self.priors, np.full(len(scores), float(np.mean(scores)) if len(scores) else 0.0)])
        keys = [code.tobytes() for code in codes_]
        first: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            first.setdefault(key, row)
        rows_of = np.array([first[key] for key in keys])
        unique = np.array(sorted(first.values()))
        sums = np.bincount(rows_of, weights=sums, minlength=len(keys))[unique]
        counts = np.bincount(rows_of, weights=counts, minlength=len(keys))[unique]
        priors = priors[unique]  # an image's prior is its first showing's
        order = np.argsort(-_estimates(sums, counts, priors, self.shrink), kind="stable")[:KEPT]  # stable: arrival
        self.codes, self.sums, self.counts = codes_[unique][order], sums[order], counts[order]
        self.priors, self.origins = priors[order], origins[unique][order]

    def state(self) -> dict[str, Any]:
        arrays = {"codes": self.codes, "sums": self.sums, "counts": self.counts, "origins": self.origins}
        if self.shrink:  # without shrinking the priors are never read: states stay as they were
            arrays["priors"] = self.priors
        return {name: encode_array(array) for name, array in arrays.items()}

    @classmethod
    def restored(cls, state: dict[str, Any] | None, dim: int, shrink: float = 0.0) -> Elites:
        elites = cls(dim, shrink)
        if state is not None:
            elites.codes, elites.sums = decode_array(state["codes"]), decode_array(state["sums"])
            elites.counts, elites.origins = decode_array(state["counts"]), decode_array(state["origins"])
            priors = state.get("priors")
            elites.priors = elites.means if priors is None else decode_array(priors)
        return elites


def _estimates(sums: FloatArray, counts: FloatArray, priors: FloatArray, shrink: float) -> FloatArray:
    return (sums + shrink * priors) / (counts + shrink)
