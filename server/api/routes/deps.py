"""Short dependency aliases shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from evostim.server.ops.auth import owner_of
from evostim.server.sessions.service import SessionService

__all__ = ["IDEMPOTENCY_KEY_PATTERN", "KEY_DESCRIPTION", "Owner", "Service"]

# An Idempotency-Key: printable ASCII without spaces (a UUID, a content hash), never empty.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"
KEY_DESCRIPTION = "a key of your choice (a UUID, say): a retry with the same key and body replays the first answer"


# Both async, on the event loop (microseconds each): a sync dependency runs in one of the 40 request threads, so
# every request queued for a thread three times under load instead of once.
async def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.service
    return service


async def _owner(request: Request) -> str:
    return owner_of(request)


Owner = Annotated[str, Depends(_owner)]
Service = Annotated[SessionService, Depends(_service)]
