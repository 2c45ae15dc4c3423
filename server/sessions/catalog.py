"""What the registered optimizers are and take: names, one-line summaries, parameters with defaults and schemas.

Parameters come from each optimizer's typed record (``Optimizer.parameters``): name, description, default and
type, from which pydantic makes the JSON schema. For a generator, each default is what a session on it gets: the
record's, rescaled to the generator's codes, and the session defaults the optimizer declares for its host.
"""

from __future__ import annotations

from typing import NoReturn

from pydantic import TypeAdapter

from evostim import optimizers
from evostim.generators import GeneratorSpec
from evostim.generators.host import generator_host
from evostim.optimizers import Host, Optimizer
from evostim.protocol import DEFAULT_POPULATION
from evostim.protocol_catalog import OptimizerParameter, OptimizerPublic
from evostim.server.sessions.setup import default_optimizer

__all__ = ["describe_optimizers"]


def _describe(
    cls: type[Optimizer], dim: int | None, code_norm: float | None, default: str, host: Host | None
) -> OptimizerPublic:
    space_defaults = cls.defaults_for_space(dim, code_norm) if dim and code_norm else {}
    # An open-ended session's, of the default size
    session_defaults = {} if host is None else cls.session_defaults({}, host, population_size=DEFAULT_POPULATION)
    parameters = [
        OptimizerParameter(
            name=spec.name,
            description=spec.doc,
            default=session_defaults.get(spec.name, space_defaults.get(spec.name, spec.default)),
            json_schema=TypeAdapter(spec.annotation).json_schema(),
        )
        for spec in cls.parameters.specs()
    ]
    return OptimizerPublic(
        name=cls.name,
        summary=(cls.__doc__ or cls.name).strip().splitlines()[0],
        is_default=cls.name == default,
        parameters=parameters,
        available=optimizers.available(cls.name),
        extra=None if cls.extra is None else cls.extra.name,
    )


def describe_optimizers(generator: GeneratorSpec | None = None) -> list[OptimizerPublic]:
    """Every registered optimizer, and the one sessions run when they name none; for a ``generator``, with the
    defaults a session on it gets (rescaled to its codes, and its session defaults) and its own default marked."""
    if generator is None:
        return [_describe(cls, None, None, optimizers.DEFAULT_OPTIMIZER, None) for cls in _registered()]
    # The host a session on it would have, for what it offers (a metric at a code or not): its network is never
    # loaded for this, as no metric is computed.
    host = generator_host(generator, lambda: _never_loaded(generator.name))
    dim, norm, default = generator.latent_dim, generator.typical_norm, default_optimizer(generator)
    return [_describe(cls, dim, norm, default, host) for cls in _registered()]


def _registered() -> list[type[Optimizer]]:
    return [cls for _, cls in sorted(optimizers.OPTIMIZERS.items())]


def _never_loaded(generator: str) -> NoReturn:
    raise AssertionError(f"listing the optimizers loaded {generator}'s network")
