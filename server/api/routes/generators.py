"""The generators a session can use: GET /v1/generators."""

from __future__ import annotations

from fastapi import APIRouter, Request

from evostim.generators import GENERATORS
from evostim.protocol_catalog import GeneratorPublic, GeneratorsPublic
from evostim.server.sessions.setup import default_optimizer

router = APIRouter(prefix="/v1/generators", tags=["generators"])


@router.get("")
def list_generators(request: Request) -> GeneratorsPublic:
    """Every registered generator, its geometry, the optimizer its sessions run when they name none, and whether
    its weights are in place (and if not, why)."""
    weights_dir = request.app.state.settings.weights_dir
    data = []
    for spec in sorted(GENERATORS.values(), key=lambda spec: spec.name):
        reason = spec.unavailable_reason(weights_dir)
        data.append(
            GeneratorPublic(
                name=spec.name,
                description=spec.description,
                latent_dim=spec.latent_dim,
                image_size=spec.image_size,
                typical_norm=spec.typical_norm,
                licence=spec.licence,
                weights_file=spec.weights_file,
                default_optimizer=default_optimizer(spec),
                available=reason is None,
                unavailable_reason=reason,
            )
        )
    return GeneratorsPublic(data=data)
