"""The wire types of the catalog: what GET /v1/optimizers and GET /v1/generators answer (the session and response
bodies are in evostim.protocol)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["GeneratorPublic", "GeneratorsPublic", "OptimizerParameter", "OptimizerPublic", "OptimizersPublic"]


class OptimizerParameter(BaseModel):
    name: str
    description: str
    default: Any = Field(description="the value a session gets when it omits this parameter")
    json_schema: dict[str, Any] = Field(description="JSON Schema of the accepted values")


class OptimizerPublic(BaseModel):
    name: str
    summary: str
    is_default: bool = Field(
        description="used by sessions that name no optimizer: on the generator asked about (?generator=), or else "
        "on generators without a default of their own (GET /v1/generators: default_optimizer)"
    )
    parameters: list[OptimizerParameter]
    available: bool = Field(description="whether a session can use it now (the extra it needs is installed)")
    extra: str | None = Field(description="the pip extra it needs (pip install 'evostim[EXTRA]'); null: built in")


class OptimizersPublic(BaseModel):
    generator: str | None = Field(description="the generator whose sessions' defaults are listed, if any")
    data: list[OptimizerPublic]


class GeneratorPublic(BaseModel):
    name: str
    description: str
    latent_dim: int
    image_size: int
    typical_norm: float = Field(description="norm of a typical code; optimizers scale their step sizes from it")
    licence: str
    weights_file: str | None = Field(description="file expected in the weights folder; null: weights ship installed")
    default_optimizer: str = Field(description="what its sessions run when they name no optimizer")
    available: bool = Field(description="whether a session can use it now (its weights are in place)")
    unavailable_reason: str | None = Field(
        default=None, description="when not available: what is missing and the command or file that supplies it"
    )


class GeneratorsPublic(BaseModel):
    data: list[GeneratorPublic]
