"""GET /v1/access: what the request's token may do, so a view (the dashboard) offers only what will be accepted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from evostim.protocol import AccessPublic
from evostim.server.api.problems import PROBLEM_JSON
from evostim.server.api.routes.deps import Owner
from evostim.server.ops.auth import ANONYMOUS, ANY_OWNER

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["access"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "problem details (RFC 9457)", "content": {PROBLEM_JSON: {}}}
}


@router.get("/access", responses=_PROBLEMS)
def access(owner: Owner) -> AccessPublic:
    """The token's role: a rig's token (EVOSTIM_TOKENS) reads and changes its own sessions, a read-only token
    (EVOSTIM_READ_TOKENS) reads every session and changes none; with no tokens configured everything is open."""
    if owner == ANY_OWNER:  # only a read-only token reads as every owner
        return AccessPublic(role="viewer", can_write=False)
    return AccessPublic(role="open" if owner == ANONYMOUS else "rig", can_write=True)
