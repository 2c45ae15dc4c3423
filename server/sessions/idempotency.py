"""Idempotency-Keys: what a keyed request hashes to, and the stored answer a retry replays.

A post's key is scoped to its session, a creation's or fork's to its owner (the store keeps both). A retry with the
same key and body replays the stored answer; the same key with another body is refused (``IdempotencyKeyReused``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from evostim.protocol import SessionCreate, SessionFork
from evostim.server.sessions.errors import IdempotencyKeyReused
from evostim.server.storage.store import IdempotencyRecord

__all__ = ["checked_key", "creation_hashes", "request_hash"]

# What versions before per-generator defaults filled in for a creation that named no optimizer.
_OPTIMIZER_BEFORE_GENERATOR_DEFAULTS = "cholesky-cma"


def request_hash(scope: str | int, body: Any) -> str:
    """Identifies a keyed request: what it is for and its parsed body (key order does not matter)."""
    return hashlib.sha256(f"{scope}:{body.model_dump_json()}".encode()).hexdigest()


def creation_hashes(scope: str, body: SessionCreate | SessionFork) -> tuple[str, ...]:
    """A creation's hash, and for a body that names no optimizer also the one versions before per-generator
    defaults stored for it (with the name filled in), so that a key kept across the upgrade still holds."""
    current = request_hash(scope, body)
    if body.optimizer is None or body.optimizer.name is not None:
        return (current,)
    named = body.optimizer.model_copy(update={"name": _OPTIMIZER_BEFORE_GENERATOR_DEFAULTS})
    return current, request_hash(scope, body.model_copy(update={"optimizer": named}))


def checked_key(replay: IdempotencyRecord | None, key: str | None, *request_hashes: str) -> dict[str, Any] | None:
    """The stored answer of a retried request (its body hashing to any of ``request_hashes``); the same key with
    another body is refused. None: no key, or a key not used before."""
    if replay is None or key is None:
        return None
    if replay.request_hash not in request_hashes:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was used for a different request body; use a new key for new data"
        )
    return replay.body
