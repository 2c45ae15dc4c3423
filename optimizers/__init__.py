"""Pure ask/tell optimizers with exact, plain-data state (numpy only: no torch, HTTP or storage)."""

from __future__ import annotations

from evostim.optimizers.base import Optimizer, Population
from evostim.optimizers.cholesky_cma import CholeskyCMA
from evostim.optimizers.errors import (
    DuplicateCandidate,
    IncompatibleState,
    InvalidParameter,
    NoPendingPopulation,
    OptimizerError,
    PendingPopulation,
    UnknownCandidate,
    UnknownOptimizer,
)
from evostim.optimizers.genetic import GeneticAlgorithm
from evostim.optimizers.references import CmaesCMA, CmaesSepCMA, PycmaCMA
from evostim.optimizers.registry import (
    OPTIMIZERS,
    create_optimizer,
    lookup,
    optimizer_from_state,
    parameter_names,
    register,
)
from evostim.optimizers.sep_cma import SepCMA
from evostim.optimizers.sphere_cma import SphereCMA
from evostim.optimizers.subspace import Subspace

__all__ = [
    "DEFAULT_OPTIMIZER",
    "OPTIMIZERS",
    "CholeskyCMA",
    "CmaesCMA",
    "CmaesSepCMA",
    "DuplicateCandidate",
    "GeneticAlgorithm",
    "IncompatibleState",
    "InvalidParameter",
    "NoPendingPopulation",
    "Optimizer",
    "OptimizerError",
    "PendingPopulation",
    "Population",
    "PycmaCMA",
    "SepCMA",
    "SphereCMA",
    "Subspace",
    "UnknownCandidate",
    "UnknownOptimizer",
    "create_optimizer",
    "lookup",
    "optimizer_from_state",
    "parameter_names",
]

for _cls in (CholeskyCMA, SphereCMA, GeneticAlgorithm, SepCMA, Subspace, PycmaCMA, CmaesCMA, CmaesSepCMA):
    register(_cls)

# What a session uses when it names no optimizer (chosen by benchmarks/search_quality.py; see README).
DEFAULT_OPTIMIZER = "cholesky-cma"
