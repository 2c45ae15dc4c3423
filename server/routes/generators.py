"""The generators a session can use: GET /v1/generators."""

from __future__ import annotations

import importlib.util

from fastapi import APIRouter, Request

from evostim.generators import GENERATORS, GeneratorSpec
from evostim.protocol import GeneratorPublic, GeneratorsPublic

router = APIRouter(prefix="/v1/generators", tags=["generators"])

# Packages whose installed data are the weights of the embedded generators.
_EMBEDDED_PACKAGES = {"dcgan-faces": "gan_face_generate"}


def _available(spec: GeneratorSpec, request: Request) -> bool:
    if spec.weights_file is None:
        package = _EMBEDDED_PACKAGES.get(spec.name)
        return package is None or importlib.util.find_spec(package) is not None
    return bool((request.app.state.settings.weights_dir / spec.weights_file).is_file())


@router.get("")
def list_generators(request: Request) -> GeneratorsPublic:
    """Every registered generator, its geometry and whether its weights are in place."""
    return GeneratorsPublic(
        data=[
            GeneratorPublic(
                name=spec.name,
                description=spec.description,
                latent_dim=spec.latent_dim,
                image_size=spec.image_size,
                typical_norm=spec.typical_norm,
                licence=spec.licence,
                weights_file=spec.weights_file,
                available=_available(spec, request),
            )
            for spec in sorted(GENERATORS.values(), key=lambda spec: spec.name)
        ]
    )
