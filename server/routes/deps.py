"""Short dependency aliases shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from evostim.server.auth import owner_of
from evostim.server.service import SessionService

__all__ = ["Owner", "Service"]


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.service
    return service


Owner = Annotated[str, Depends(owner_of)]
Service = Annotated[SessionService, Depends(_service)]
