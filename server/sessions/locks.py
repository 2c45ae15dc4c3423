"""Per-session serialization in this process: one post, stop or resume of a session at a time (across processes the
store's conditional update is the lock)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SessionLocks"]


class SessionLocks:
    """One lock per session id, made on first use."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def held(self, session_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
        with lock:
            yield
