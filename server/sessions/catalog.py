"""What the registered optimizers are and take: names, one-line summaries, parameters with defaults and schemas.

Parameters come from each optimizer's typed record (``Optimizer.parameters``): name, description, default and
type, from which pydantic makes the JSON schema. For a generator, each default is what a session on it gets: the
record's, rescaled to the generator's codes, and the session defaults the optimizer declares for its host.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from evostim import optimizers
from evostim.optimizers import Host, Optimizer
from evostim.protocol import OptimizerParameter, OptimizerPublic

__all__ = ["describe_optimizers"]


def _describe(
    cls: type[Optimizer], dim: int | None, code_norm: float | None, default: str, host: Host | None
) -> OptimizerPublic:
    space_defaults = cls.defaults_for_space(dim, code_norm) if dim and code_norm else {}
    session_defaults = {} if host is None else cls.session_defaults({}, host)  # an open-ended session's
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


def describe_optimizers(
    dim: int | None = None,
    code_norm: float | None = None,
    default: str = optimizers.DEFAULT_OPTIMIZER,
    host: Host | None = None,
) -> list[OptimizerPublic]:
    """Every registered optimizer; with a space (dim, code_norm), its defaults rescaled to that space, and with the
    host of a generator's sessions, the defaults those sessions get; ``default`` is the one sessions run when they
    name none (a generator may have its own)."""
    return [_describe(cls, dim, code_norm, default, host) for _, cls in sorted(optimizers.OPTIMIZERS.items())]
