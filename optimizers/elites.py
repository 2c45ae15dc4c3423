"""The images with the best mean score over their showings so far: the ones a search shows again (``remeasure``).

Under spiking noise the highest single count of a session's 1,600 is mostly luck: the image it picks is often a
poorer one that drew high, and under a neuron whose gain declines it is an early one. Showing the leaders again
measures them at the neuron's present gain: a lucky one falls back, a good one keeps its place, and the best image
is judged by its mean over several counts (docs/sample_efficiency.md, round 42). An image is its code: a code
shown again, by whatever row, adds to that image's counts.

O(H d) memory and per generation for the H images kept (``KEPT``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import FloatArray
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["KEPT", "Elites"]

# How many leaders are kept: more than are shown again, so that one which falls back has successors measured once.
KEPT = 8


class Elites:
    """The ``KEPT`` images with the highest mean score so far: their codes, score sums and showings."""

    def __init__(self, dim: int) -> None:
        self.codes: FloatArray = np.zeros((0, dim))
        self.sums: FloatArray = np.zeros(0)
        self.counts: FloatArray = np.zeros(0)
        self.origins: NDArray[np.int64] = np.zeros((0, 2), dtype=np.int64)  # (generation, row) of a first showing

    @property
    def means(self) -> FloatArray:
        return self.sums / self.counts

    def leaders(self, count: int) -> FloatArray:
        """The codes of the ``count`` best images by mean score (fewer while fewer were measured), best first."""
        return self.codes[:count].copy()

    @property
    def leader(self) -> tuple[float, int, int] | None:
        """The best image's mean score and where it was first shown (generation, row); None before any count."""
        if not len(self.codes):
            return None
        generation, row = self.origins[0]
        return float(self.means[0]), int(generation), int(row)

    def add(self, codes: FloatArray, scores: FloatArray, generation: int, rows: NDArray[np.intp]) -> None:
        """Count each measured image (shown in ``generation`` at ``rows``): a kept one adds to its sums, a new one
        enters; the best ``KEPT`` stay."""
        origins = np.vstack([self.origins, np.column_stack([np.full(len(rows), generation), rows])]).astype(np.int64)
        codes_ = np.vstack([self.codes, codes])
        sums, counts = np.concatenate([self.sums, scores]), np.concatenate([self.counts, np.ones(len(scores))])
        keys = [code.tobytes() for code in codes_]
        first: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            first.setdefault(key, row)
        rows = np.array([first[key] for key in keys])
        unique = np.array(sorted(first.values()))
        sums = np.bincount(rows, weights=sums, minlength=len(keys))[unique]
        counts = np.bincount(rows, weights=counts, minlength=len(keys))[unique]
        # Best mean first; among equal means the earlier image (a stable sort of rows in order of arrival).
        order = np.argsort(-(sums / counts), kind="stable")[:KEPT]
        self.codes, self.sums, self.counts = codes_[unique][order], sums[order], counts[order]
        self.origins = origins[unique][order]

    def state(self) -> dict[str, Any]:
        arrays = {"codes": self.codes, "sums": self.sums, "counts": self.counts, "origins": self.origins}
        return {name: encode_array(array) for name, array in arrays.items()}

    @classmethod
    def restored(cls, state: dict[str, Any] | None, dim: int) -> Elites:
        elites = cls(dim)
        if state is not None:
            elites.codes, elites.sums = decode_array(state["codes"]), decode_array(state["sums"])
            elites.counts, elites.origins = decode_array(state["counts"]), decode_array(state["origins"])
        return elites
