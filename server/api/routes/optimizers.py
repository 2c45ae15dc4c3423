"""The optimizers a session can use, with their parameters: GET /v1/optimizers."""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, Query

from evostim.generators import GeneratorError, generator_spec
from evostim.generators.host import generator_host
from evostim.protocol import OptimizersPublic
from evostim.server.sessions.catalog import describe_optimizers
from evostim.server.sessions.errors import InvalidRequest
from evostim.server.sessions.setup import default_optimizer

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
    # The host a session on it would have, for what it offers (a metric at a code or not): the network is never
    # loaded for this, as no metric is computed.
    host = generator_host(spec, lambda: _never_loaded(spec.name))
    described = describe_optimizers(spec.latent_dim, spec.typical_norm, default=default_optimizer(spec), host=host)
    return OptimizersPublic(generator=spec.name, data=described)


def _never_loaded(generator: str) -> NoReturn:
    raise AssertionError(f"listing the optimizers loaded {generator}'s network")
