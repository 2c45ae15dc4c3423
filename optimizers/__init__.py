"""Pure ask/tell optimizers with exact, plain-data state (numpy only: no torch, HTTP or storage)."""

from __future__ import annotations

import inspect
from typing import Any

from optimizers.base import Optimizer, Population
from optimizers.cholesky_cma import CholeskyCMA
from optimizers.errors import (
    DuplicateCandidate,
    IncompatibleState,
    InvalidParameter,
    NoPendingPopulation,
    OptimizerError,
    PendingPopulation,
    UnknownCandidate,
    UnknownOptimizer,
)

__all__ = [
    "OPTIMIZERS",
    "CholeskyCMA",
    "DuplicateCandidate",
    "IncompatibleState",
    "InvalidParameter",
    "NoPendingPopulation",
    "Optimizer",
    "OptimizerError",
    "PendingPopulation",
    "Population",
    "UnknownCandidate",
    "UnknownOptimizer",
    "create_optimizer",
    "optimizer_from_state",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {}


def _register(cls: type[Optimizer]) -> None:
    if cls.name in OPTIMIZERS:
        raise ValueError(f"optimizer {cls.name!r} registered twice")
    OPTIMIZERS[cls.name] = cls


_register(CholeskyCMA)


def _lookup(name: str) -> type[Optimizer]:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise UnknownOptimizer(f"unknown optimizer {name!r}; known: {', '.join(sorted(OPTIMIZERS))}") from None


def create_optimizer(name: str, dim: int, *, population_size: int, seed: int, **params: Any) -> Optimizer:
    """Build a registered optimizer; bad or unknown parameters raise InvalidParameter."""
    cls = _lookup(name)
    accepted = set(inspect.signature(cls).parameters) - {"dim", "population_size", "seed"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise InvalidParameter(f"{name} has no parameters {unknown}; it takes {sorted(accepted)}")
    return cls(dim, population_size=population_size, seed=seed, **params)


def optimizer_from_state(state: dict[str, Any]) -> Optimizer:
    """Rebuild whichever optimizer wrote ``state``."""
    return _lookup(str(state.get("optimizer"))).from_state(state)
