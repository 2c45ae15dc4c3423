"""An optimizer's parameters as a typed record: each field carries its type, default, description and check.

An optimizer declares a frozen dataclass derived from :class:`Parameters`; each field has a type, a default and,
through :func:`doc`, a description and an optional check::

    @dataclass(frozen=True)
    class RandomSearchParameters(Parameters):
        scale: float = field(default=1.0, metadata=doc("std of the proposals per coordinate", check=positive))

:meth:`Parameters.build` turns a session's parameters (plain data) into such a record: unknown names, values
of the wrong type and values out of range raise InvalidParameter naming the parameter. Ints are accepted where
a float belongs and integral floats where an int belongs; the record holds the converted, checked values,
defaults resolved (e.g. ``mu`` = λ // 2), which is what the optimizer serializes as its settings.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from evostim.optimizers.errors import InvalidParameter

__all__ = ["Check", "Context", "ParameterSpec", "Parameters", "conform", "doc", "supported_type"]


@dataclass(frozen=True)
class Context:
    """What a parameter's check may depend on: the latent dimension d and the population size λ."""

    dim: int
    population_size: int


Check = Callable[[str, Any, Context], Any]
"""``check(name, value, context) -> value``: the value checked (and resolved), or InvalidParameter naming it."""


def doc(text: str, *, check: Check | None = None) -> dict[str, Any]:
    """The metadata of a :class:`Parameters` field: its description (GET /v1/optimizers) and its check.

    ``field(default=..., metadata=doc("what it does", check=positive))``. The check runs on the value after its type
    was checked, the default included; it returns the value to keep.
    """
    return {"doc": text, "check": check}


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter as the catalog shows it: name, description, default and type (a type hint)."""

    name: str
    doc: str
    default: Any
    annotation: Any
    check: Check | None


@dataclass(frozen=True)
class Parameters:
    """Base of every optimizer's parameter record: a frozen dataclass whose fields carry ``metadata=doc(...)``."""

    @classmethod
    def specs(cls) -> tuple[ParameterSpec, ...]:
        """The parameters in declaration order."""
        hints = typing.get_type_hints(cls)
        return tuple(
            ParameterSpec(
                name=f.name,
                doc=str(f.metadata.get("doc", "")),
                default=f.default,
                annotation=hints[f.name],
                check=f.metadata.get("check"),
            )
            for f in dataclasses.fields(cls)
        )

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, given: Mapping[str, Any], context: Context) -> Self:
        """The record for ``given`` (omitted parameters take their defaults), every value type-checked and checked."""
        unknown = sorted(set(given) - set(cls.names()))
        if unknown:
            raise InvalidParameter(f"no parameters {unknown}; it takes {cls.names()}")
        values = {}
        for spec in cls.specs():
            value = conform(spec.name, given.get(spec.name, spec.default), spec.annotation)
            values[spec.name] = value if spec.check is None else spec.check(spec.name, value, context)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The values by name (not copied)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# -- type checks -------------------------------------------------------------------------------------------
_SCALARS = (float, int, str, bool, type(None))


def supported_type(annotation: Any) -> bool:
    """Whether :func:`conform` can check values against ``annotation``."""
    if annotation is Any or annotation in _SCALARS:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return all(supported_type(arg) for arg in args)
    return origin is dict and args[:1] == (str,) and supported_type(args[1])


def conform(name: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` (int -> float, integral float -> int, tuple -> list), or
    InvalidParameter naming ``name``."""
    matched, converted = _conform(value, annotation)
    if not matched:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidParameter(f"{name} must be {_describe(annotation)}, got {shown}")
    return converted


def _conform(value: Any, annotation: Any) -> tuple[bool, Any]:
    if annotation is Any:
        return True, value
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _conform_union(value, typing.get_args(annotation))
    if origin is list:
        return _conform_list(value, typing.get_args(annotation)[0])
    if origin is dict:
        return _conform_dict(value, typing.get_args(annotation)[1])
    return _conform_scalar(value, annotation)


def _conform_scalar(value: Any, annotation: Any) -> tuple[bool, Any]:
    if isinstance(value, bool) or annotation is bool:  # bool is an int to Python, not to us
        return annotation is bool and isinstance(value, bool), value
    if annotation is float:
        return _conform_float(value)
    if annotation is int:
        return _conform_int(value)
    if annotation is type(None):
        return value is None, value
    return isinstance(value, annotation), value


def _conform_float(value: Any) -> tuple[bool, Any]:
    """A real number as a float; an integer beyond the floats' range (10**400) is not one."""
    if not isinstance(value, numbers.Real):
        return False, value
    try:
        return True, float(value)
    except OverflowError:
        return False, value


def _conform_int(value: Any) -> tuple[bool, Any]:
    """An integer, or a float with an integral value (3.0), as an int."""
    if isinstance(value, numbers.Integral):
        return True, int(value)
    integral = isinstance(value, numbers.Real) and float(value).is_integer()
    return (True, int(value)) if integral else (False, value)


def _conform_union(value: Any, options: tuple[Any, ...]) -> tuple[bool, Any]:
    for option in options:
        matched, converted = _conform(value, option)
        if matched:
            return True, converted
    return False, value


def _conform_list(value: Any, item: Any) -> tuple[bool, Any]:
    if not isinstance(value, list | tuple):
        return False, value
    converted = []
    for element in value:
        matched, element = _conform(element, item)
        if not matched:
            return False, value
        converted.append(element)
    return True, converted


def _conform_dict(value: Any, item: Any) -> tuple[bool, Any]:
    if not (isinstance(value, dict) and all(isinstance(key, str) for key in value)):
        return False, value
    converted = {}
    for key, element in value.items():
        matched, converted[key] = _conform(element, item)
        if not matched:
            return False, value
    return True, converted


def _describe(annotation: Any) -> str:
    """A type in words: 'a number', 'a list of numbers or null', ..."""
    if annotation is Any:
        return "a value"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is list:
        return f"a list of {_plural(args[0])}"
    if origin is dict:
        return "a mapping of names to values"
    words = {float: "a number", int: "an integer", str: "a string", bool: "true or false", type(None): "null"}
    return words.get(annotation, str(annotation))


def _plural(annotation: Any) -> str:
    if typing.get_origin(annotation) is list:
        return "lists"
    return {float: "numbers", int: "integers", str: "strings", bool: "booleans"}.get(annotation, "values")
