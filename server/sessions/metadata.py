"""A session's metadata (animal, array, channel, notes): the one part of a session that changes after creation.

PATCH /v1/sessions/{id} sends a JSON merge patch (RFC 7396) of it. A patch says what the metadata becomes, never
what to add, so applying one twice is applying it once: a client retries it safely without an Idempotency-Key. The
search (generator, optimizer, channels, ...) never changes; the metadata lives in the stored configuration, where
exports, forks and the session's answers have always read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evostim.protocol import SessionPublic, SessionUpdate
from evostim.server.sessions.limits import Limits
from evostim.server.sessions.locks import SessionLocks
from evostim.server.sessions.reads import SessionReader, session_not_found
from evostim.server.storage.store import Store

__all__ = ["MetadataEditor", "merge_patch"]


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396 section 2 on objects: each key of ``patch`` replaces ``target``'s, null removes it, and an object
    merges into an object (recursively); ``target`` itself is not changed."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            below = merged.get(key)
            merged[key] = merge_patch(below if isinstance(below, dict) else {}, value)
        else:
            merged[key] = value
    return merged


class MetadataEditor:
    """Applies metadata patches: checked against the operator's size limit, stored with the row locked."""

    def __init__(self, *, store: Store, reader: SessionReader, limits: Limits, locks: SessionLocks) -> None:
        self._store = store
        self._reader = reader
        self._limits = limits
        self._locks = locks

    def update(self, owner: str, session_id: str, update: SessionUpdate) -> SessionPublic:
        """The session after its metadata was patched (SessionNotFound for another owner's or an unknown one;
        InvalidSessionConfig when the result is above EVOSTIM_MAX_METADATA_BYTES, and then nothing is stored)."""

        def change(stored: dict[str, Any]) -> dict[str, Any]:
            metadata = merge_patch(stored.get("metadata") or {}, update.metadata)
            self._limits.check_metadata(metadata)
            return {**stored, "metadata": metadata}

        with self._locks.held(session_id):
            self._reader.session(owner, session_id)  # a 404 for a session this owner may not see
            changed = self._store.update_config(session_id, change)
        if changed is None:
            raise session_not_found(session_id)
        return self._reader.typed(changed).public
