"""Latent-code geometry shared by the server and the in-silico engine: the projection onto the prior's sphere, and
the unit sphere's exponential and logarithm maps and parallel transport, by which the sphere searches move their
mean (numpy only)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["exp_map", "log_map", "parallel_transport", "project_to_sphere", "unit"]

FloatArray = NDArray[np.float64]


def project_to_sphere(codes: FloatArray, norm: float | None) -> FloatArray:
    """Rows of ``codes`` (B, d) scaled to ``norm`` (unchanged when norm is None or a row is zero)."""
    if norm is None:
        return codes
    lengths = np.linalg.norm(codes, axis=1, keepdims=True)
    return np.where(lengths > 1e-12, codes * (norm / np.maximum(lengths, 1e-12)), codes)


def unit(vectors: FloatArray) -> FloatArray:
    """``vectors`` (one, or rows) scaled to length 1."""
    return np.asarray(vectors / np.linalg.norm(vectors, axis=-1, keepdims=True), dtype=np.float64)


def log_map(origin: FloatArray, point: FloatArray) -> FloatArray:
    """The tangent vector at unit ``origin`` that points to unit ``point`` the short way, its length their angle
    (zero where the two are the same point, or antipodal: there no one way is the short one)."""
    along = point - (point @ origin) * origin
    sin_angle = float(np.linalg.norm(along))
    if sin_angle < 1e-12:
        return np.zeros_like(origin)
    return np.asarray(along * (math.atan2(sin_angle, float(point @ origin)) / sin_angle), dtype=np.float64)


def exp_map(origin: FloatArray, tangent: FloatArray) -> FloatArray:
    """The unit vector reached from unit ``origin`` along the great circle of ``tangent`` (a tangent vector there),
    by its length."""
    angle = float(np.linalg.norm(tangent))
    if angle < 1e-12:
        return origin.copy()
    return unit(math.cos(angle) * origin + math.sin(angle) * tangent / angle)


def parallel_transport(vector: FloatArray, old: FloatArray, new: FloatArray) -> FloatArray:
    """A tangent vector at unit ``old`` carried to unit ``new`` along the great circle between them (unchanged where
    the two are the same point, or antipodal: there no one great circle joins them)."""
    along = new - (new @ old) * old
    sin_angle = float(np.linalg.norm(along))
    if sin_angle < 1e-12:
        return vector.copy()
    along /= sin_angle
    cos_angle = float(new @ old)
    return np.asarray(vector + float(vector @ along) * ((cos_angle - 1) * along - sin_angle * old), dtype=np.float64)
