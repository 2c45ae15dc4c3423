"""Bearer-token authentication: a session belongs to the token that created it."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from evostim.server.errors import Unauthorized

__all__ = ["ANONYMOUS", "owner_of"]

ANONYMOUS = "anonymous"


def owner_of(request: Request) -> str:
    """The owner id of the request's token (a hash, so the database never holds tokens)."""
    tokens: list[str] = request.app.state.settings.tokens
    if not tokens:
        return ANONYMOUS  # development mode: no tokens configured
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send 'Authorization: Bearer <token>' with a token from the server's EVOSTIM_TOKENS")
    if not any(hmac.compare_digest(token.encode(), known.encode()) for known in tokens):
        raise Unauthorized("unknown bearer token")
    return hashlib.sha256(token.encode()).hexdigest()[:32]
