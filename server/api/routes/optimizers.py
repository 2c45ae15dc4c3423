"""The optimizers a session can use, with their parameters: GET /v1/optimizers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from evostim.generators import GeneratorError, generator_spec
from evostim.protocol_catalog import OptimizersPublic
from evostim.server.sessions.catalog import describe_optimizers
from evostim.server.sessions.errors import InvalidRequest

router = APIRouter(prefix="/v1/optimizers", tags=["optimizers"])


@router.get("")
def list_optimizers(
    generator: Annotated[
        str | None, Query(description="the defaults a session on this generator gets (rescaled to its codes)")
    ] = None,
) -> OptimizersPublic:
    """Every optimizer a session may name, its parameters, their defaults and JSON schemas, and whether it is
    available (the extra it needs, if any, is installed); which one sessions run when they name none."""
    if generator is None:
        return OptimizersPublic(generator=None, data=describe_optimizers())
    try:
        spec = generator_spec(generator)
    except GeneratorError as error:
        raise InvalidRequest(str(error)) from None
    return OptimizersPublic(generator=spec.name, data=describe_optimizers(spec))
