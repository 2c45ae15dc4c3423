"""Registry of pretrained generators: latent codes -> images, loaded once per process, on GPU when present.

Adding a generator: one module that defines its ``SPEC`` (geometry, weights source, prior, build function),
and one line adding that ``SPEC`` to ``_BUILTIN`` below. ``register`` adds one from outside evostim.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from evostim.generators import biggan_deep, dcgan_faces, deepsim_fc6
from evostim.generators.base import GaussianPrior, GeneratorSpec, ImageGenerator
from evostim.generators.errors import (
    BadLatentCodes,
    GeneratorError,
    GeneratorPackageMissing,
    GeneratorWeightsMismatch,
    GeneratorWeightsMissing,
    UnknownGenerator,
)
from evostim.generators.weights import FileWeights, NoWeights, PackageWeights, WeightsSource

__all__ = [
    "GENERATORS",
    "BadLatentCodes",
    "FileWeights",
    "GaussianPrior",
    "GeneratorError",
    "GeneratorPackageMissing",
    "GeneratorSpec",
    "GeneratorWeightsMismatch",
    "GeneratorWeightsMissing",
    "ImageGenerator",
    "NoWeights",
    "PackageWeights",
    "UnknownGenerator",
    "WeightsSource",
    "generator_spec",
    "load_generator",
    "register",
    "resolve_device",
]

GENERATORS: dict[str, GeneratorSpec] = {}


def register(spec: GeneratorSpec) -> None:
    """Make ``spec`` available to sessions under its name (a name is registered once)."""
    if spec.name in GENERATORS:
        raise ValueError(f"generator {spec.name!r} registered twice")
    GENERATORS[spec.name] = spec


_BUILTIN = (
    dcgan_faces.SPEC,
    deepsim_fc6.SPEC,
    biggan_deep.SPEC,
)
for _spec in _BUILTIN:
    register(_spec)

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

    Generators whose weights are the lab's file read it from ``weights_dir`` (default: ./weights); a missing
    file or package raises GeneratorWeightsMissing before anything is built.
    """
    spec = generator_spec(name)
    torch_device = resolve_device(device)
    weights = spec.locate_weights(Path(weights_dir or "weights"))
    key = (name, str(torch_device), str(weights))
    with _loading:
        if key not in _loaded:
            _loaded[key] = ImageGenerator(spec, spec.build(torch_device, weights), torch_device)
        return _loaded[key]
