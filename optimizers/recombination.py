"""Selection and recombination helpers shared by the evolution strategies, and the fc6 reference scale."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FC6_CODE_NORM",
    "FC6_DIM",
    "log_rank_weights",
    "published_cma_sigma",
    "scale_relative_to_fc6",
    "select_parents",
]

FloatArray = NDArray[np.float64]

# The space the field's published optimizer settings were tuned in: DeePSiM fc6 codes (Wang & Ponce 2022).
FC6_DIM = 4096
FC6_CODE_NORM = 300.0


def scale_relative_to_fc6(dim: int, code_norm: float) -> float:
    """Per-coordinate spread of this space's codes over that of fc6 codes (for rescaling step sizes)."""
    return (code_norm / math.sqrt(dim)) / (FC6_CODE_NORM / math.sqrt(FC6_DIM))


def published_cma_sigma(dim: int, code_norm: float) -> float:
    """The CMA-ES initial step of the fc6 studies (sigma 3, Wang & Ponce 2022) rescaled to this space."""
    return round(3.0 * scale_relative_to_fc6(dim, code_norm), 6)


def log_rank_weights(mu: int) -> FloatArray:
    """Positive recombination weights w_i ∝ ln(mu + 1/2) - ln(i), i = 1..mu, summing to 1 ([H16] eq. 49)."""
    raw = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    return np.asarray(raw / raw.sum(), dtype=np.float64)


def select_parents(scores: FloatArray, mu: int) -> tuple[NDArray[np.intp], FloatArray]:
    """The best ``min(mu, m)`` of m scores (highest first, ties in order) and their recombination weights.

    With a partial population (aborted trials), fewer parents are recombined with re-normalized weights.
    """
    order = np.argsort(-scores, kind="stable")
    count = min(mu, len(order))
    return order[:count], log_rank_weights(count)
