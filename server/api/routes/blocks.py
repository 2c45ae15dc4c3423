"""Blocks: several sessions ("threads") shown together, their images interleaved, their responses posted at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from evostim.protocol import BlockManifest, BlockResponsesAccepted, BlockResponsesSubmit
from evostim.server.api.routes.deps import IDEMPOTENCY_KEY_PATTERN, KEY_DESCRIPTION, Owner, Service
from evostim.server.api.routes.sessions import _PROBLEMS

router = APIRouter(prefix="/v1/blocks", tags=["blocks"])


@router.get("", responses=_PROBLEMS)
def current_block(
    sessions: Annotated[str, Query(description="comma-separated session ids")], owner: Owner, service: Service
) -> BlockManifest:
    """The running sessions' open generations as one block, their stimuli interleaved in one order."""
    return service.block(owner, [s for s in sessions.split(",") if s])


@router.post("/responses", responses=_PROBLEMS, response_model=BlockResponsesAccepted)
def post_block_responses(
    body: BlockResponsesSubmit,
    owner: Owner,
    service: Service,
    # shorter than the sessions' keys: each share is stored under "<key>:<session id>"
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, pattern=IDEMPOTENCY_KEY_PATTERN, description=KEY_DESCRIPTION)
    ] = None,
) -> Any:
    """Store every session's share of a block (all validated first); the answer holds the next block."""
    return service.submit_block(owner, body, idempotency_key)
