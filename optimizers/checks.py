"""Parameter checks shared by the optimizers' parameter records; each raises InvalidParameter naming the parameter.

A check is ``check(name, value, context) -> value`` (see ``parameters.Check``); it runs after the value's type was
checked, so a float parameter's check gets a float. Factories (``between``, ``at_least``, ``optional``) make
checks from bounds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Check, Context

__all__ = ["at_least", "between", "code", "nonnegative", "optional", "parents", "positive", "required_code"]


def positive(name: str, value: float, context: Context | None = None) -> float:
    """A finite number > 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidParameter(f"{name} must be a positive number, got {value!r}")
    return float(value)


def nonnegative(name: str, value: float, context: Context | None = None) -> float:
    """A finite number >= 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise InvalidParameter(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def between(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Check:
    """A number in the interval from ``low`` to ``high`` (closed unless said open)."""
    shown = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"

    def check(name: str, value: float, context: Context) -> float:
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        if not (above and below):
            raise InvalidParameter(f"{name} must be in {shown}, got {value!r}")
        return float(value)

    return check


def at_least(low: int, *, at_most: int | None = None) -> Check:
    """An integer >= ``low`` (and <= ``at_most``, if given)."""

    def check(name: str, value: int, context: Context) -> int:
        if not value >= low:
            raise InvalidParameter(f"{name} must be an integer >= {low}, got {value!r}")
        if at_most is not None and not value <= at_most:
            raise InvalidParameter(f"{name} must be an integer <= {at_most}, got {value!r}")
        return int(value)

    return check


def optional(inner: Check) -> Check:
    """None, or a value that passes ``inner``."""

    def check(name: str, value: Any, context: Context) -> Any:
        return None if value is None else inner(name, value, context)

    return check


def parents(name: str, value: int | None, context: Context) -> int:
    """Number of parents: default half the population, at least one, at most all."""
    mu = context.population_size // 2 if value is None else value
    if not (isinstance(mu, int) and 1 <= mu <= context.population_size):
        raise InvalidParameter(f"{name} must be an integer in 1..population_size={context.population_size}, got {mu!r}")
    return mu


def code(name: str, values: Any, context: Context) -> list[float] | None:
    """An optional code: None, or a list of d finite numbers (as plain floats)."""
    return None if values is None else required_code(name, values, context)


def required_code(name: str, values: Any, context: Context) -> list[float]:
    """A code: a list of d finite numbers, as plain floats."""
    array = np.asarray(values, dtype=np.float64) if isinstance(values, list | tuple) else None
    if array is None or array.shape != (context.dim,) or not np.all(np.isfinite(array)):
        raise InvalidParameter(f"{name} must be a list of {context.dim} finite numbers")
    return [float(v) for v in array]
