"""Latent-code geometry shared by the server and the in-silico engine (numpy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["project_to_sphere"]

FloatArray = NDArray[np.float64]


def project_to_sphere(codes: FloatArray, norm: float | None) -> FloatArray:
    """Rows of ``codes`` (B, d) scaled to ``norm`` (unchanged when norm is None or a row is zero)."""
    if norm is None:
        return codes
    lengths = np.linalg.norm(codes, axis=1, keepdims=True)
    return np.where(lengths > 1e-12, codes * (norm / np.maximum(lengths, 1e-12)), codes)
