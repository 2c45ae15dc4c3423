"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path

from fastapi import FastAPI

from evostim import generators
from evostim.generators import ImageGenerator
from evostim.server.api.body_limit import BodyLimit
from evostim.server.api.openapi import install_openapi
from evostim.server.api.problems import install_problem_handlers
from evostim.server.api.routes import access, blocks, dashboard, events, health, optimizers, sessions
from evostim.server.api.routes import generators as generator_routes
from evostim.server.config import Settings, get_settings
from evostim.server.media import scratch
from evostim.server.ops.collector import long_lived_frozen
from evostim.server.ops.observability import (
    AccessLog,
    configure_logging,
    limit_malloc_arenas,
    map_large_allocations,
    trimming_free_memory,
)
from evostim.server.sessions.service import SessionService
from evostim.server.storage.store import Store

__all__ = ["create_app", "create_worker_app"]


def create_app(
    settings: Settings | None = None,
    *,
    load_generator: Callable[[str, str, Path], ImageGenerator] = generators.load_generator,
) -> FastAPI:
    """Build the app; the store opens when the app starts and closes when it stops."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        scratch.remove_stale()  # exports a killed server was writing
        store = Store(settings.resolved_database_url, connections=settings.database_connections)
        app.state.store = store  # /readyz pings it, /metrics counts its sessions
        app.state.service = SessionService(store, settings, load_generator=load_generator)
        try:
            frozen = long_lived_frozen() if settings.gc_freeze else nullcontext()
            with trimming_free_memory(settings.malloc_trim_every_s), frozen:
                try:
                    yield
                finally:
                    app.state.service.close()  # before unfreezing: nothing freezes after
        finally:
            store.close()

    app = FastAPI(
        title="evostim",
        version="0.1.0",
        summary="Closed-loop neuron-stimulus search: evolve images that drive a recorded neuron.",
        lifespan=lifespan,
        docs_url=None,  # /docs and its assets are served locally by the dashboard routes (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.load_generator = load_generator  # /readyz loads the configured generators through it
    install_problem_handlers(app)
    install_openapi(app)
    # Inside the access log (a refused body is logged like any answer), outside everything that reads a body.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(access.router)
    app.include_router(optimizers.router)
    app.include_router(generator_routes.router)
    app.include_router(blocks.router)
    app.include_router(events.router)
    app.include_router(dashboard.router)
    return app


def create_worker_app() -> FastAPI:
    """The app of one worker process of ``evostim serve --workers N``: settings and log level from the environment."""
    settings = get_settings()
    configure_logging(settings.log_level)
    limit_malloc_arenas(settings.malloc_arenas)
    map_large_allocations(settings.malloc_mmap_threshold_kb)
    return create_app(settings)
