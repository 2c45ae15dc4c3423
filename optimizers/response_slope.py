"""sphere-cma's ``screen``: a model of the responses that chooses which of the drawn steps are shown.

The model is a linear one of the responses' ranks on the codes (points on the unit sphere): ridge least squares,
each generation centred, each generation's data weighing 1/3 less a generation, its gradient at the mean kept as a
unit tangent vector, the *slope*. Screening shows the drawn steps whose lines are best aligned with the slope, either
way, so the responses, not the fit, tell which way is up (a model-based proposal, issue #33;
docs/sample_efficiency.md, round 31: off by default, it did not help). Least squares rather than the ranks'
covariance with the codes: screened samples crowd along the slope, and the covariance would then pull the fit
towards the slope it was screened by. Ranks, so a drifting or over-dispersed neuron's scale does not weigh one
generation over another.

d² + 2 d numbers of state; a fit costs O(λ d² + d³).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evostim.optimizers.base import FloatArray
from evostim.optimizers.serialization import decode_array, encode_array

__all__ = ["MAX_SCREEN", "ResponseSlope"]

# screen: at most this many drawn per shown (the draws cost O(screen λ d) a generation).
MAX_SCREEN = 64

# The weight of a generation's data in the fit (about the last three generations count), and the ridge, a fraction
# of the data's mean variance per direction (a generation of mirrored pairs spans only half the directions).
SLOPE_WEIGHT = 1 / 3
SLOPE_RIDGE = 0.1


class ResponseSlope:
    """The responses' fitted slope on the sphere (a unit tangent vector at the mean; zero before the first fit), and
    the weighted moments of the data it is fitted to (the centred codes' X^T X and X^T ranks)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.slope = np.zeros(dim)
        self._moments = np.zeros((dim, dim))
        self._response = np.zeros(dim)

    def forget(self, slope: FloatArray | None = None) -> None:
        """Drop the data fitted so far (their coordinates no longer hold); keep ``slope`` as the slope (None: none)."""
        self.slope = np.zeros(self.dim) if slope is None else slope
        self._moments, self._response = np.zeros((self.dim, self.dim)), np.zeros(self.dim)

    def most_aligned(self, drawn: FloatArray, count: int) -> FloatArray:
        """The ``count`` rows of ``drawn`` (steps, any length) whose lines are most aligned with the slope, either
        way, in their drawn order; the first ``count`` while nothing is fitted."""
        if not np.any(self.slope):
            return drawn[:count]
        alignment = np.abs((drawn / np.linalg.norm(drawn, axis=1, keepdims=True)) @ self.slope)
        return drawn[np.sort(np.argsort(-alignment, kind="stable")[:count])]

    def fit(self, points: FloatArray, scores: FloatArray, direction: FloatArray) -> None:
        """Refit with a generation's told ``points`` (on the unit sphere) and ``scores``; the slope as a unit tangent
        vector at the mean ``direction`` (the new one)."""
        if len(scores) < 2:
            return
        _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
        ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # ties share their average rank
        centred = points - points.mean(axis=0)
        self._moments = (1 - SLOPE_WEIGHT) * self._moments + SLOPE_WEIGHT * centred.T @ centred
        self._response = (1 - SLOPE_WEIGHT) * self._response + SLOPE_WEIGHT * centred.T @ (ranks - ranks.mean())
        ridge = SLOPE_RIDGE * float(np.trace(self._moments)) / self.dim
        if ridge == 0:
            return  # every told code the same: nothing to fit
        gradient = np.asarray(
            np.linalg.solve(self._moments + ridge * np.eye(self.dim), self._response), dtype=np.float64
        )
        gradient -= (gradient @ direction) * direction
        length = float(np.linalg.norm(gradient))
        if length > 0:
            self.slope = gradient / length

    def state(self) -> dict[str, Any]:
        return {
            "slope": encode_array(self.slope),
            "moments": encode_array(self._moments),
            "response": encode_array(self._response),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.slope = decode_array(state["slope"])
        self._moments, self._response = decode_array(state["moments"]), decode_array(state["response"])
