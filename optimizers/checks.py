"""Parameter checks shared by the optimizers' parameter records; each raises InvalidParameter naming the parameter.

A check is ``check(name, value, context) -> value`` (see ``parameters.Check``); it runs after the value's type was
checked, so a float parameter's check gets a float. Factories (``between``, ``at_least``, ``optional``) make
checks from bounds, and every check of a number declares its bounds (``declared_bounds``): what the catalog's
contract test tries each optimizer at and beyond (tests/test_optimizer_limits.py).

Step sizes and code norms are bounded above by ``MAX_SCALE`` (``step_size``, ``code_norm``): beyond it an optimizer
was once accepted whose codes or state overflow at its first update (a session that could never advance).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evostim.optimizers.errors import InvalidParameter
from evostim.optimizers.parameters import Check, Context

__all__ = [
    "MAX_COUNT",
    "MAX_SCALE",
    "MIN_ANGLE",
    "MIN_CODE_NORM",
    "MIN_STEP",
    "Bounds",
    "PopulationShare",
    "angle_degrees",
    "at_least",
    "between",
    "code",
    "code_scale",
    "declared_bounds",
    "nonnegative",
    "optional",
    "parents",
    "positive",
    "required_code",
    "step_size",
]

MAX_SCALE = 1e6
"""The largest step size or code norm a parameter takes: far beyond any generator's codes (norms of about 10 to 300)
and far below where their arithmetic overflows (float64 squares near 1e154; the generators' float32 near 3e38)."""
MAX_COUNT = 10**9
"""The largest count a parameter takes (generations, samples): beyond any session, and within a float's exact range."""
MIN_CODE_NORM = 1e-3
"""The smallest code norm: a sphere of radius 1e-300 has codes whose squares vanish (their directions are NaN), and
the step sizes the space's defaults derive from a norm below this round to 0."""
MIN_STEP = 1e-9
"""The smallest step size: pycma fails on a step of 5e-324."""
MIN_ANGLE = 1e-6
"""The smallest angular step, in degrees: a schedule from 5e-324 degrees to 2 overflows on its way."""


@dataclass(frozen=True)
class Bounds:
    """The interval a number must lie in (closed unless said open); infinite where a side has no bound."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return bool(above and below)

    def __str__(self) -> str:
        return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


@dataclass(frozen=True)
class _Bounded:
    """A check of a finite number that declares its bounds; ``refusal`` words the refusal (``{name}``, ``{value}``)."""

    bounds: Bounds
    refusal: str
    integer: bool = False
    refusal_above: str | None = None  # words a value above the bounds differently

    def __call__(self, name: str, value: Any, context: Context | None = None) -> Any:
        if not (_finite(value) and value in self.bounds):
            raise InvalidParameter(self._refusal(value).format(name=name, value=repr(value)))
        return int(value) if self.integer else float(value)

    def _refusal(self, value: Any) -> str:
        above = self.refusal_above is not None and _finite(value) and value > self.bounds.low
        return self.refusal_above if above and self.refusal_above is not None else self.refusal


def _finite(value: Any) -> bool:
    """A number (never a bool) that is finite: any int, or a float that is neither inf nor NaN."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


positive: Check = _Bounded(Bounds(0, math.inf, open_low=True), "{name} must be a positive number, got {value}")
"""A finite number > 0."""
nonnegative: Check = _Bounded(Bounds(0, math.inf), "{name} must be a number >= 0, got {value}")
"""A finite number >= 0."""
step_size: Check = _Bounded(
    Bounds(MIN_STEP, MAX_SCALE), f"{{name}} must be a number from {MIN_STEP:g} to {MAX_SCALE:g}, got {{value}}"
)
"""A step size: a number from ``MIN_STEP`` to ``MAX_SCALE``."""
angle_degrees: Check = _Bounded(
    Bounds(MIN_ANGLE, 180, open_high=True), f"{{name}} must be in [{MIN_ANGLE:g}, 180) degrees, got {{value}}"
)
"""An angular step in degrees: from ``MIN_ANGLE`` to less than 180."""
code_scale: Check = _Bounded(
    Bounds(MIN_CODE_NORM, MAX_SCALE),
    f"{{name}} must be a number from {MIN_CODE_NORM:g} to {MAX_SCALE:g}, got {{value}}",
)
"""The norm of codes: a number from ``MIN_CODE_NORM`` to ``MAX_SCALE``."""


def between(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Check:
    """A number in the interval from ``low`` to ``high`` (closed unless said open)."""
    bounds = Bounds(low, high, open_low, open_high)
    return _Bounded(bounds, f"{{name}} must be in {bounds}, got {{value}}")


def at_least(low: int, *, at_most: int = MAX_COUNT) -> Check:
    """An integer >= ``low`` and <= ``at_most`` (default ``MAX_COUNT``)."""
    below = f"{{name}} must be an integer >= {low}, got {{value}}"
    above = f"{{name}} must be an integer <= {at_most}, got {{value}}"
    return _Bounded(Bounds(low, at_most), below, integer=True, refusal_above=above)


@dataclass(frozen=True)
class _Optional:
    """None, or a value that passes ``inner`` (whose bounds it declares)."""

    inner: Check

    def __call__(self, name: str, value: Any, context: Context) -> Any:
        return None if value is None else self.inner(name, value, context)


def optional(inner: Check) -> Check:
    """None, or a value that passes ``inner``."""
    return _Optional(inner)


def declared_bounds(check: Check | None, context: Context) -> Bounds | None:
    """The bounds a check of a number declares for ``context`` (through ``optional`` too), or None: it checks no
    number."""
    if isinstance(check, _Optional):
        return declared_bounds(check.inner, context)
    if isinstance(check, PopulationShare):
        return check.bounds(context)
    return check.bounds if isinstance(check, _Bounded) else None


@dataclass(frozen=True)
class PopulationShare:
    """A check of an integer from ``low`` to the population size less ``short`` (its bounds depend on λ); None takes
    ``default(λ)``. ``refusal`` words a refusal (``{name}``, ``{value}``, ``{high}``: the largest value taken)."""

    low: int
    short: int
    default: Callable[[int], int]
    refusal: str

    def bounds(self, context: Context) -> Bounds:
        return Bounds(self.low, context.population_size - self.short)

    def __call__(self, name: str, value: int | None, context: Context) -> int:
        resolved = self.default(context.population_size) if value is None else value
        if not (isinstance(resolved, int) and not isinstance(resolved, bool) and resolved in self.bounds(context)):
            high = context.population_size - self.short
            raise InvalidParameter(self.refusal.format(name=name, value=repr(resolved), high=high))
        return resolved


parents = PopulationShare(
    1, 0, lambda size: size // 2, "{name} must be an integer in 1..population_size={high}, got {value}"
)
"""Number of parents: default half the population, at least one, at most all."""


def code(name: str, values: Any, context: Context) -> list[float] | None:
    """An optional code: None, or a list of d finite numbers (as plain floats)."""
    return None if values is None else required_code(name, values, context)


def required_code(name: str, values: Any, context: Context) -> list[float]:
    """A code: a list of d finite numbers, each at most ``MAX_SCALE`` in size, as plain floats."""
    array = np.asarray(values, dtype=np.float64) if isinstance(values, list | tuple) else None
    if array is None or array.shape != (context.dim,) or not np.all(np.isfinite(array)):
        raise InvalidParameter(f"{name} must be a list of {context.dim} finite numbers")
    if np.abs(array).max() > MAX_SCALE:
        raise InvalidParameter(f"{name} must be a code whose numbers are at most {MAX_SCALE:g} in size")
    return [float(v) for v in array]
