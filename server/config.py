"""Settings, read from EVOSTIM_* environment variables (or a .env file) by a factory, never at import time."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings", "is_digest", "token_digest"]

_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")


class Settings(BaseSettings):
    """Server configuration. In production, bearer tokens are required."""

    model_config = SettingsConfigDict(env_prefix="EVOSTIM_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses to start without EVOSTIM_TOKENS or with short tokens"
    )
    # Where `evostim serve` listens and how many processes it runs (its --host, --port, --workers win over these).
    host: str = Field(default="127.0.0.1", description="address to listen on (beyond loopback: tokens needed)")
    port: int = Field(default=8000, ge=0, le=65535, description="port to listen on")
    workers: int = Field(default=1, ge=1, description="server processes on one database")
    data_dir: Path = Field(default=Path("data"), description="folder of the SQLite file evostim.db")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    # `evostim serve` lowers it so that all its processes fit Postgres's max_connections (server/storage/fit.py);
    # at least fit.MIN_CONNECTIONS. With fewer than requests running, a request waits for one (up to 30 s, then
    # a retryable 500).
    database_connections: int = Field(
        default=40, ge=4, le=1000, description="Postgres connections a server process holds at most (one a request)"
    )
    device: str = Field(default="auto", description="torch device for generators: auto, cpu, cuda, cuda:1, ...")
    weights_dir: Path = Field(default=Path("weights"), description="folder of the lab's generator weight files")
    # Comma-separated in the environment: EVOSTIM_TOKENS=token-a,token-b. Each entry is a token or its digest
    # "sha256:<64 hex>" (`evostim token` prints both); after validation only digests are kept (auth.py).
    tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated bearer tokens (or their digests) that drive sessions"
    )
    # Lab-wide viewing (a dashboard beside the rig): these tokens GET every session, and may not post.
    read_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated tokens that read every session and post nothing"
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="debug, info, warning, error or critical (JSON lines on stderr)"
    )
    # /readyz loads these generators (once per process): the server is ready when they are usable.
    ready_generators: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["dcgan-faces"], description="comma-separated generators that /readyz loads"
    )
    optimizer_cache_mb: int = Field(default=64, ge=0, description="array bytes of optimizers kept between posts")
    # glibc gives each thread that contends for malloc an arena of its own (up to 8 per core), and the server's
    # request threads leave them fragmented: measured by benchmarks/load.py, RSS grew ~90 MB a round of 50 sessions
    # with glibc's default and ~20 MB with 2 (once the image cache was full). 0 keeps glibc's default.
    malloc_arenas: int = Field(default=2, ge=0, description="glibc malloc arenas of the server process")
    # Freed memory between live blocks stays resident until glibc is told to give it back (malloc_trim, a few ms):
    # every this many seconds (0: never). benchmarks/load.py on Postgres: rounds within 70 MB of each other and 1.4 GB
    # resident with 5 s; up to +240 MB from one round to the next and 1.8-2.0 GB without.
    malloc_trim_every_s: float = Field(default=5.0, ge=0, description="seconds between returns of freed memory")
    # server/ops/collector.py; off in the test suite's own process, which starts and stops hundreds of servers
    gc_freeze: bool = Field(default=True, description="keep the long-lived objects out of the garbage collector")
    # glibc serves a block of this size or more by a mapping of its own, unmapped when freed (0: its default, a
    # threshold that rises to 32 MB): the heap then holds no tensors. 1,024 measured 1.25 GB resident, but decodes
    # 20% slower and posts' p99 twice as long under load: for a server short of memory, not the default.
    malloc_mmap_threshold_kb: int = Field(
        default=0, ge=0, le=32768, description="glibc mmap threshold, KiB (0: its own)"
    )
    snapshot_every: int = Field(default=10, ge=1, description="optimizer snapshot every N generations")
    image_cache_mb: int = Field(default=256, ge=1, description="encoded images kept in memory, MB")
    reference_seed: int = Field(default=20190502, description="seed of the built-in reference latents")
    # What one request may ask for (the wire schema's bounds are the most any server takes). A bigger body is a
    # 413 before it is read; the others are 422s that name the setting.
    max_body_bytes: int = Field(default=16 * 2**20, ge=1024, description="request body bytes (init codes included)")
    max_metadata_bytes: int = Field(default=64 * 2**10, ge=2, description="a session's metadata, as JSON")
    max_population: int = Field(default=500, ge=2, le=1000, description="population_size of a session")
    max_channels: int = Field(default=512, ge=1, le=512, description="response channels of a session")
    max_repetitions: int = Field(default=200, ge=1, le=1000, description="repetitions per channel per stimulus")
    # Images a request may ask for: a side of at most max_image_size pixels (?size=), and an images.zip whose images
    # hold at most max_archive_mb of pixels (images x size x size x 3 bytes; BMP is that, PNG and JPEG less): 422s.
    max_image_size: int = Field(default=1024, ge=8, le=2048, description="image side a request may ask for, pixels")
    max_archive_mb: int = Field(default=256, ge=1, description="pixels of the images one images.zip may hold, MB")

    # Event streams (GET .../events) are held open for as long as a view is: each takes a connection and a seat at its
    # session's poll. Beyond these a stream is refused: 429 for the token, 503 for the server (per server process).
    max_event_streams_per_token: int = Field(default=16, ge=1, description="open event streams of one token")
    max_event_streams: int = Field(default=256, ge=1, description="open event streams of one server process")

    # Connections (server/ops/connections.py): a request's line and headers must arrive within the first timeout of
    # its first byte, its body within the second of its headers, or the connection is closed; beyond max_connections
    # (lowered to fit the open-files limit) a new connection is answered 503 and closed. Per server process.
    request_header_timeout_s: float = Field(default=10.0, gt=0, description="seconds to receive a request's headers")
    request_body_timeout_s: float = Field(default=60.0, gt=0, description="seconds to receive a request's body")
    max_connections: int = Field(default=2048, ge=16, description="open connections of one server process")

    @field_validator("tokens", "read_tokens", "ready_generators", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_unsafe_production_and_hash_tokens(self) -> Settings:
        if self.environment == "production":
            if not self.tokens:
                raise ValueError("EVOSTIM_TOKENS must be set in production: without tokens anyone can drive sessions")
            if any(len(token) < 16 for token in self.tokens + self.read_tokens if not is_digest(token)):
                raise ValueError("production tokens must be at least 16 characters long")
        # Then every token is replaced by its digest: the plain tokens are not kept in memory past this point.
        self.tokens = [token_digest(token) for token in self.tokens]
        self.read_tokens = [token_digest(token) for token in self.read_tokens]
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'evostim.db').resolve()}"


def is_digest(entry: str) -> bool:
    """Whether a configured token entry is already a digest, ``sha256:<64 hex digits>``."""
    return bool(_DIGEST.fullmatch(entry))


def token_digest(entry: str) -> str:
    """``sha256:<hex>`` of a token (an entry that is already a digest stays as it is)."""
    if is_digest(entry):
        return entry.lower()
    return "sha256:" + hashlib.sha256(entry.encode()).hexdigest()


def get_settings() -> Settings:
    """Fresh settings from the environment."""
    return Settings()
