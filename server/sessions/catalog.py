"""What the registered optimizers are and take: names, one-line summaries, parameters with defaults and schemas.

Parameters come from each optimizer's typed record (``Optimizer.parameters``): name, description, default and
type, from which pydantic makes the JSON schema.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from evostim import optimizers
from evostim.optimizers import Optimizer
from evostim.protocol import OptimizerParameter, OptimizerPublic

__all__ = ["describe_optimizers"]


def _describe(cls: type[Optimizer], dim: int | None, code_norm: float | None, default: str) -> OptimizerPublic:
    space_defaults = cls.defaults_for_space(dim, code_norm) if dim and code_norm else {}
    parameters = [
        OptimizerParameter(
            name=spec.name,
            description=spec.doc,
            default=space_defaults.get(spec.name, spec.default),
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
    dim: int | None = None, code_norm: float | None = None, default: str = optimizers.DEFAULT_OPTIMIZER
) -> list[OptimizerPublic]:
    """Every registered optimizer; with a space (dim, code_norm), its defaults rescaled to that space; ``default``
    is the one sessions run when they name none (a generator may have its own)."""
    return [_describe(cls, dim, code_norm, default) for _, cls in sorted(optimizers.OPTIMIZERS.items())]
