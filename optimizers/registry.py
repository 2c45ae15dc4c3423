"""The optimizer registry: names -> classes, construction with checked parameters, starts, rebuilding from state.

Adding an optimizer is one module (a class declaring ``name``, ``parameters``, ``start``, ``extra`` and what it
``needs`` from its host) and one ``register(TheClass)`` call; ``register`` checks the declaration, so a mistake
fails at import, not in a session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers.base import Optimizer
from evostim.optimizers.errors import InvalidParameter, UnknownOptimizer
from evostim.optimizers.host import NO_HOST, SERVICES, Host
from evostim.optimizers.parameters import Parameters, supported_type

__all__ = [
    "OPTIMIZERS",
    "available",
    "create_optimizer",
    "lookup",
    "optimizer_from_state",
    "parameter_names",
    "register",
    "start_parameters",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {}


def register(cls: type[Optimizer]) -> type[Optimizer]:
    """Add an optimizer class under its ``name``; a name can be registered only once.

    Raises TypeError / ValueError when the class's declaration is incomplete: no name, a parameter record that is
    not a frozen dataclass of documented fields of supported types, a start naming no parameter, or a need of a
    service no host provides.
    """
    _check_declaration(cls)
    if cls.name in OPTIMIZERS:
        raise ValueError(f"optimizer {cls.name!r} registered twice")
    OPTIMIZERS[cls.name] = cls
    return cls


def _check_declaration(cls: type[Optimizer]) -> None:
    name = getattr(cls, "name", None)
    if not (isinstance(name, str) and name):
        raise TypeError(f"{cls.__qualname__} needs a class attribute name = '...'")
    record = cls.parameters
    # A subclass of the frozen Parameters can only be a frozen dataclass, or no dataclass of its own at all.
    if not (isinstance(record, type) and issubclass(record, Parameters) and "__dataclass_fields__" in vars(record)):
        raise TypeError(f"{name}: parameters must be a @dataclass(frozen=True) subclass of Parameters")
    _check_fields(name, record)
    if cls.start is not None and cls.start.parameter not in record.names():
        raise TypeError(f"{name}: start names {cls.start.parameter!r}, which is not one of {record.names()}")
    _check_needs(cls)


# The names create() takes besides the parameters: a parameter may not have one of them.
_RESERVED = ("dim", "population_size", "seed", "host")


def _check_needs(cls: type[Optimizer]) -> None:
    names = cls.parameters.names()
    taken = [name for name in _RESERVED if name in names]
    if taken:
        raise TypeError(f"{cls.name}: a parameter may not be named {taken[0]!r} (create() takes it by that name)")
    for need in cls.needs:
        if need.service not in SERVICES:
            raise TypeError(f"{cls.name}: needs {need.service!r}, which no host provides; hosts provide {SERVICES}")
        if need.when is not None and need.when not in names:
            raise TypeError(f"{cls.name}: needs {need.service} when {need.when!r}, which is not one of {names}")


def _check_fields(name: str, record: type[Parameters]) -> None:
    for spec in record.specs():
        if not spec.doc:
            raise TypeError(f"{name}: parameter {spec.name!r} has no description: metadata=doc('...')")
        if spec.default is dataclasses.MISSING:
            raise TypeError(f"{name}: parameter {spec.name!r} has no default")
        if not supported_type(spec.annotation):
            raise TypeError(f"{name}: parameter {spec.name!r} has an unsupported type {spec.annotation}")


def lookup(name: str) -> type[Optimizer]:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise UnknownOptimizer(f"unknown optimizer {name!r}; known: {', '.join(sorted(OPTIMIZERS))}") from None


def available(name: str) -> bool:
    """Whether a session can use the optimizer now: it needs no extra, or its extra is installed."""
    extra = lookup(name).extra
    return extra is None or extra.installed


def parameter_names(cls: type[Optimizer]) -> list[str]:
    """The parameters a session may set (everything but dim, population_size and seed)."""
    return cls.parameters.names()


def create_optimizer(
    name: str,
    dim: int,
    *,
    population_size: int,
    seed: int,
    code_norm: float | None = None,
    host: Host = NO_HOST,
    params: Mapping[str, Any] | None = None,
    **more: Any,
) -> Optimizer:
    """Build a registered optimizer from ``params`` and ``more``; bad or unknown parameters raise InvalidParameter
    naming them (prefixed by the optimizer's name), a missing extra raises MissingExtra.

    ``code_norm`` (the norm of the generator's prior codes) rescales the defaults that depend on the
    space; parameters given explicitly win. ``host``: what the host provides (``evostim.generators.host`` fills
    it and checks the optimizer's needs against it). Parameters a client sends go in ``params``: a parameter that
    shares a name with a keyword here (subspace's ``code_norm``) or an unknown one named ``seed`` is then a
    parameter, never a clash of keywords.
    """
    cls = lookup(name)
    given = {**(params or {}), **more}
    unknown = sorted(set(given) - set(cls.parameters.names()))
    if unknown:
        raise InvalidParameter(f"{name}: no parameters {unknown}; it takes {cls.parameters.names()}")
    if code_norm is not None:
        given = {**cls.defaults_for_space(dim, code_norm), **given}
    try:
        return cls.create(dim, population_size=population_size, seed=seed, host=host, **given)
    except InvalidParameter as error:
        raise InvalidParameter(f"{name}: {error}") from None


def start_parameters(name: str, codes: NDArray[np.float64]) -> dict[str, Any]:
    """The parameters that start optimizer ``name`` from ``codes`` (n, d), as its ``start`` declares.

    Raises InvalidParameter if the optimizer cannot start from given codes, UnknownOptimizer for an unknown name.
    """
    start = lookup(name).start
    if start is None:
        raise InvalidParameter(f"optimizer {name} cannot start from given codes")
    return start.params_for(np.atleast_2d(np.asarray(codes, dtype=np.float64)))


def optimizer_from_state(state: dict[str, Any], *, host: Host = NO_HOST) -> Optimizer:
    """Rebuild whichever optimizer wrote ``state``, given ``host`` as :func:`create_optimizer` is."""
    return lookup(str(state.get("optimizer"))).from_state(state, host=host)
