"""Settings, read from EVOSTIM_* environment variables (or a .env file) by a factory, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Server configuration. In production, bearer tokens are required."""

    model_config = SettingsConfigDict(env_prefix="EVOSTIM_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    device: str = Field(default="auto", description="torch device for generators: auto, cpu, cuda, cuda:1, ...")
    weights_dir: Path = Field(default=Path("weights"), description="folder of the lab's generator weight files")
    # Comma-separated in the environment: EVOSTIM_TOKENS=token-a,token-b
    tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    snapshot_every: int = Field(default=10, ge=1, description="optimizer snapshot every N generations")
    image_cache_mb: int = Field(default=256, ge=1)
    reference_seed: int = Field(default=20190502, description="seed of the built-in reference latents")

    @field_validator("tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production":
            if not self.tokens:
                raise ValueError("EVOSTIM_TOKENS must be set in production: without tokens anyone can drive sessions")
            if any(len(token) < 16 for token in self.tokens):
                raise ValueError("production tokens must be at least 16 characters long")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'evostim.db').resolve()}"


def get_settings() -> Settings:
    """Fresh settings from the environment."""
    return Settings()
