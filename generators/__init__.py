"""Registry of pretrained generators: latent codes -> images, loaded once per process, on GPU when present."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from evostim.generators import biggan_deep, dcgan_faces, deepsim_fc6
from evostim.generators.base import GeneratorSpec, ImageGenerator
from evostim.generators.errors import (
    BadLatentCodes,
    GeneratorError,
    GeneratorWeightsMismatch,
    GeneratorWeightsMissing,
    UnknownGenerator,
)

__all__ = [
    "GENERATORS",
    "BadLatentCodes",
    "GeneratorError",
    "GeneratorSpec",
    "GeneratorWeightsMismatch",
    "GeneratorWeightsMissing",
    "ImageGenerator",
    "UnknownGenerator",
    "generator_spec",
    "load_generator",
    "resolve_device",
]

GENERATORS: dict[str, GeneratorSpec] = {}


def _register(spec: GeneratorSpec) -> None:
    if spec.name in GENERATORS:
        raise ValueError(f"generator {spec.name!r} registered twice")
    GENERATORS[spec.name] = spec


_register(dcgan_faces.SPEC)
_register(deepsim_fc6.SPEC)
_register(biggan_deep.SPEC)

_loaded: dict[tuple[str, str, str], ImageGenerator] = {}
_loading = threading.Lock()


def generator_spec(name: str) -> GeneratorSpec:
    try:
        return GENERATORS[name]
    except KeyError:
        raise UnknownGenerator(f"unknown generator {name!r}; known: {', '.join(sorted(GENERATORS))}") from None


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' means CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_generator(name: str, device: str = "auto", weights_dir: Path | None = None) -> ImageGenerator:
    """The process-wide instance of generator ``name`` on ``device``, loaded on first use.

    Generators with a ``weights_file`` read it from ``weights_dir`` (default: ./weights).
    """
    spec = generator_spec(name)
    torch_device = resolve_device(device)
    weights = None if spec.weights_file is None else Path(weights_dir or "weights") / spec.weights_file
    key = (name, str(torch_device), str(weights))
    with _loading:
        if key not in _loaded:
            _loaded[key] = ImageGenerator(spec, spec.build(torch_device, weights), torch_device)
        return _loaded[key]
