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


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.service
    return service


Owner = Annotated[str, Depends(owner_of)]
Service = Annotated[SessionService, Depends(_service)]
