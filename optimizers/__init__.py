"""Pure ask/tell optimizers with exact, plain-data state (numpy only: no torch, HTTP or storage).

Adding an optimizer: write its module (a class deriving from ``Optimizer`` that declares ``name``, a
``parameters`` record, ``start``, ``extra`` and what it ``needs`` from its host; see README "Adding an optimizer")
and add one ``register(...)`` line below (a lab's own module may call ``evostim.optimizers.register`` itself
instead).
"""

from __future__ import annotations

from evostim.optimizers.base import Extra, Optimizer, Population, Start
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
from evostim.optimizers.host import NO_HOST, Host, MetricAhead, MetricAt, Need
from evostim.optimizers.metric_cma import MetricCMA
from evostim.optimizers.parameters import Context, Parameters, doc
from evostim.optimizers.references import CmaesCMA, CmaesSepCMA, PycmaCMA
from evostim.optimizers.registry import (
    OPTIMIZERS,
    available,
    create_optimizer,
    lookup,
    optimizer_from_state,
    parameter_names,
    register,
    start_parameters,
)
from evostim.optimizers.sep_cma import SepCMA
from evostim.optimizers.sphere_cma import SphereCMA
from evostim.optimizers.subspace import Subspace

__all__ = [
    "DEFAULT_OPTIMIZER",
    "NO_HOST",
    "OPTIMIZERS",
    "CholeskyCMA",
    "CmaesCMA",
    "CmaesSepCMA",
    "Context",
    "DuplicateCandidate",
    "Extra",
    "GeneticAlgorithm",
    "Host",
    "IncompatibleState",
    "InvalidParameter",
    "MetricAhead",
    "MetricAt",
    "MetricCMA",
    "Need",
    "NoPendingPopulation",
    "Optimizer",
    "OptimizerError",
    "Parameters",
    "PendingPopulation",
    "Population",
    "PycmaCMA",
    "SepCMA",
    "SphereCMA",
    "Start",
    "Subspace",
    "UnknownCandidate",
    "UnknownOptimizer",
    "available",
    "create_optimizer",
    "doc",
    "lookup",
    "optimizer_from_state",
    "parameter_names",
    "register",
    "start_parameters",
]

# The built-in optimizers, one line each.
register(CholeskyCMA)
register(SphereCMA)
register(GeneticAlgorithm)
register(SepCMA)
register(Subspace)
register(MetricCMA)
register(PycmaCMA)
register(CmaesCMA)
register(CmaesSepCMA)

# What a session uses when it names no optimizer (chosen by benchmarks/search_quality.py; see README).
DEFAULT_OPTIMIZER = "cholesky-cma"
