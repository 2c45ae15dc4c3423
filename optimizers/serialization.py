"""Plain-data encoding of optimizer state: JSON-safe, exact, no pickle."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["decode_array", "encode_array", "rng_from_state", "rng_state"]


def encode_array(array: NDArray[Any]) -> dict[str, Any]:
    """Encode an array as dtype, shape and base64 of its little-endian bytes (bit-exact)."""
    contiguous = np.ascontiguousarray(array)
    little = contiguous.astype(contiguous.dtype.newbyteorder("<"), copy=False)
    return {
        "dtype": little.dtype.str,
        "shape": list(little.shape),
        "data": base64.b64encode(little.tobytes()).decode("ascii"),
    }


def decode_array(encoded: dict[str, Any]) -> NDArray[Any]:
    """Inverse of :func:`encode_array`; the result is a writable native-order copy."""
    raw = base64.b64decode(encoded["data"])
    array = np.frombuffer(raw, dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"])
    return array.astype(array.dtype.newbyteorder("="), copy=True)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The full state of a generator's bit generator (plain ints and strings)."""
    return dict(rng.bit_generator.state)


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A generator that continues exactly where the one that produced ``state`` stopped."""
    bit_generator_cls = getattr(np.random, state["bit_generator"])
    bit_generator = bit_generator_cls()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
