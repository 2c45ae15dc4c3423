"""Bearer-token authentication: a session belongs to the token that created it.

The server keeps only SHA-256 digests of its tokens (``Settings`` replaces each configured token by
``sha256:<hex>``, and a token may be configured as that digest in the first place). A presented token is hashed and
compared with each known digest in constant time. A session's owner id is the first 32 hex digits of its token's
digest, as it has been since the first release, so databases written by earlier versions keep their ownership.

Read-only tokens (``EVOSTIM_READ_TOKENS``) are for lab-wide viewing, a dashboard beside the rig: they read every
session, whoever made it (owner ``ANY_OWNER``), and anything but GET/HEAD with one is a 403.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from evostim.server.config import Settings
from evostim.server.sessions.errors import Forbidden, Unauthorized
from evostim.server.storage.store import ANY_OWNER

__all__ = ["ANONYMOUS", "ANY_OWNER", "owner_of"]

ANONYMOUS = "anonymous"
_READ_METHODS = frozenset({"GET", "HEAD"})


def _known(digest: str, digests: list[str]) -> bool:
    """Whether ``digest`` is one of ``digests``; every one is compared, each in constant time."""
    found = False
    for known in digests:
        found |= hmac.compare_digest(digest, known)
    return found


def owner_of(request: Request) -> str:
    """The owner id of the request's token (a digest, so the database never holds tokens)."""
    settings: Settings = request.app.state.settings
    if not settings.tokens and not settings.read_tokens:
        return ANONYMOUS  # development mode: no tokens configured
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send 'Authorization: Bearer <token>' with a token from the server's EVOSTIM_TOKENS")
    hexdigest = hashlib.sha256(token.strip().encode()).hexdigest()
    digest = f"sha256:{hexdigest}"
    if _known(digest, settings.tokens):
        return hexdigest[:32]
    if _known(digest, settings.read_tokens):
        if request.method not in _READ_METHODS:
            raise Forbidden(
                f"this token is read-only (EVOSTIM_READ_TOKENS): it may view sessions but not {request.method} "
                "anything; use a rig's token from EVOSTIM_TOKENS"
            )
        return ANY_OWNER
    raise Unauthorized("unknown bearer token")
