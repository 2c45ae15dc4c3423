"""The optimizer registry: names -> classes, construction with validated parameters, rebuilding from state."""

from __future__ import annotations

import inspect
from typing import Any

from evostim.optimizers.base import Optimizer
from evostim.optimizers.errors import InvalidParameter, UnknownOptimizer

__all__ = ["OPTIMIZERS", "create_optimizer", "lookup", "optimizer_from_state", "parameter_names", "register"]

OPTIMIZERS: dict[str, type[Optimizer]] = {}

_FIXED = {"self", "dim", "population_size", "seed"}


def register(cls: type[Optimizer]) -> type[Optimizer]:
    """Add an optimizer class under its ``name``; a name can be registered only once."""
    if cls.name in OPTIMIZERS:
        raise ValueError(f"optimizer {cls.name!r} registered twice")
    OPTIMIZERS[cls.name] = cls
    return cls


def lookup(name: str) -> type[Optimizer]:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise UnknownOptimizer(f"unknown optimizer {name!r}; known: {', '.join(sorted(OPTIMIZERS))}") from None


def parameter_names(cls: type[Optimizer]) -> list[str]:
    """The parameters a session may set (everything but dim, population_size and seed)."""
    return [name for name in inspect.signature(cls.__init__).parameters if name not in _FIXED]


def create_optimizer(
    name: str, dim: int, *, population_size: int, seed: int, code_norm: float | None = None, **params: Any
) -> Optimizer:
    """Build a registered optimizer; bad or unknown parameters raise InvalidParameter.

    ``code_norm`` (the norm of the generator's prior codes) rescales the defaults that depend on the
    space; parameters given explicitly win.
    """
    cls = lookup(name)
    accepted = parameter_names(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidParameter(f"{name} has no parameters {unknown}; it takes {accepted}")
    if code_norm is not None:
        params = {**cls.defaults_for_space(dim, code_norm), **params}
    try:
        return cls(dim, population_size=population_size, seed=seed, **params)
    except (TypeError, ValueError) as error:  # e.g. a list where a number belongs
        raise InvalidParameter(f"{name}: {error}") from None


def optimizer_from_state(state: dict[str, Any]) -> Optimizer:
    """Rebuild whichever optimizer wrote ``state``."""
    return lookup(str(state.get("optimizer"))).from_state(state)
