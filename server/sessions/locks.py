"""Per-session serialization in this process: one post, stop or resume of a session at a time (across processes the
store's conditional update is the lock)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["SessionLocks"]


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # requests that hold it or wait for it


class SessionLocks:
    """One lock per session id while a request holds or waits for it: the table holds the sessions of the requests in
    flight, never every id ever posted to (a client posting to made-up ids cannot grow it)."""

    def __init__(self) -> None:
        self._locks: dict[str, _Entry] = {}
        self._guard = threading.Lock()

    @contextmanager
    def held(self, session_id: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(session_id, _Entry())
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if not entry.users:
                    del self._locks[session_id]

    def __len__(self) -> int:
        """How many sessions' locks are held or waited for now."""
        with self._guard:
            return len(self._locks)
