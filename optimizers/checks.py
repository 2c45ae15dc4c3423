"""Parameter checks shared by the optimizers' constructors; each raises InvalidParameter naming the parameter."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evostim.optimizers.errors import InvalidParameter

__all__ = ["check_code", "check_parents", "check_positive"]


def check_positive(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidParameter(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_parents(mu: int | None, population_size: int) -> int:
    """Number of parents: default half the population, at least one, at most all."""
    mu = population_size // 2 if mu is None else mu
    if not (isinstance(mu, int) and 1 <= mu <= population_size):
        raise InvalidParameter(f"mu must be an integer in 1..population_size={population_size}, got {mu!r}")
    return mu


def check_code(name: str, values: Any, dim: int) -> list[float] | None:
    """An optional code of length ``dim`` with finite entries, as plain floats."""
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64) if isinstance(values, list | tuple) else None
    if array is None or array.shape != (dim,) or not np.all(np.isfinite(array)):
        raise InvalidParameter(f"{name} must be a list of {dim} finite numbers")
    return [float(v) for v in array]
