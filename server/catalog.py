"""What the registered optimizers are and take: names, one-line summaries, parameters with defaults and schemas."""

from __future__ import annotations

import inspect
import re
import typing

from pydantic import TypeAdapter

from evostim import optimizers
from evostim.optimizers import Optimizer
from evostim.protocol import OptimizerParameter, OptimizerPublic

__all__ = ["describe_optimizers"]

_ARG_LINE = re.compile(r"^\s{8}(?P<name>\w+): (?P<text>.*)$")


def _argument_docs(cls: type[Optimizer]) -> dict[str, str]:
    """The ``Args:`` section of the class docstring (Google style), joined over continuation lines."""
    docs: dict[str, str] = {}
    current = None
    for line in (cls.__doc__ or "").split("Args:", 1)[-1].splitlines():
        match = _ARG_LINE.match(line)
        if match:
            current = match["name"]
            docs[current] = match["text"].strip()
        elif current and line.startswith(" " * 12):
            docs[current] += " " + line.strip()
        elif line.strip():
            current = None
    return docs


def _describe(cls: type[Optimizer], dim: int | None, code_norm: float | None) -> OptimizerPublic:
    signature = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    docs = _argument_docs(cls)
    space_defaults = cls.defaults_for_space(dim, code_norm) if dim and code_norm else {}
    parameters = [
        OptimizerParameter(
            name=name,
            description=docs.get(name, ""),
            default=space_defaults.get(name, signature.parameters[name].default),
            json_schema=TypeAdapter(hints[name]).json_schema(),
        )
        for name in optimizers.parameter_names(cls)
    ]
    summary = (cls.__doc__ or "").strip().splitlines()[0]
    return OptimizerPublic(
        name=cls.name, summary=summary, is_default=cls.name == optimizers.DEFAULT_OPTIMIZER, parameters=parameters
    )


def describe_optimizers(dim: int | None = None, code_norm: float | None = None) -> list[OptimizerPublic]:
    """Every registered optimizer; with a space (dim, code_norm), its defaults rescaled to that space."""
    return [_describe(cls, dim, code_norm) for _, cls in sorted(optimizers.OPTIMIZERS.items())]
