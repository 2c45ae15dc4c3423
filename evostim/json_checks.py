"""What a free-form JSON field of a request (metadata, optimizer parameters) may hold: nothing a store or a JSON
reader cannot take back (NaN/Infinity, NUL characters, nesting deeper than 32 levels)."""

from __future__ import annotations

import math
from typing import Any

from pydantic_core import PydanticCustomError

__all__ = ["json_object"]

MAX_DEPTH = 32


def _check(value: Any, where: str, depth: int = 0) -> None:
    """Raise a pydantic error naming ``where`` for the first value a free-form JSON field cannot store or echo."""
    if depth > MAX_DEPTH:
        raise PydanticCustomError("json_too_deep", "{where} is nested more than 32 levels deep", {"where": where})
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("json_not_finite", "{where} holds a number that is not finite", {"where": where})
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("json_nul", "{where} holds a NUL character", {"where": where})
    if isinstance(value, dict):
        for key, item in value.items():
            _check(key, where, depth + 1)
            _check(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]", depth + 1)


def json_object(value: dict[str, Any], where: str) -> dict[str, Any]:
    """``value`` itself once every value in it can be stored (a field validator's answer)."""
    _check(value, where)
    return value
