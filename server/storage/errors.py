"""The store's errors, named by meaning; they know nothing of HTTP or of the session service.

StoreError                        base of every error the store raises on purpose
├── ConcurrentUpdate              another writer changed the same rows first; re-read the state (a retry may succeed)
│   ├── GenerationAlreadyClosed   the generation was closed by another request (``generation``: its number)
│   └── IdempotencyKeyTaken       a concurrent request committed the same Idempotency-Key first
├── UnstorableValue               a value no backend may store (NUL in text, text too long, a 33-bit integer, NaN
│                                 in JSON); refused on SQLite as on Postgres, before anything is written
└── DatabaseUnavailable           the database did not serve the request: every pooled connection stayed busy, it
                                  was locked, or refused or lost the connection (``retry_after``: seconds)

How each is answered over HTTP is decided in the one table of ``evostim.server.api.problems``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConcurrentUpdate",
    "DatabaseUnavailable",
    "GenerationAlreadyClosed",
    "IdempotencyKeyTaken",
    "StoreError",
    "UnstorableValue",
]


class StoreError(Exception):
    """Base of the store's errors: a ``detail`` a person can act on, plus ``extra`` fields for programs."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ConcurrentUpdate(StoreError):
    """A conditional write found the rows changed by another writer (another thread, process or server)."""


class GenerationAlreadyClosed(ConcurrentUpdate):
    """The generation was closed by another request between reading the session and writing its responses."""


class IdempotencyKeyTaken(ConcurrentUpdate):
    """A concurrent request committed the same Idempotency-Key first; a retry replays or refuses it."""


class UnstorableValue(StoreError):
    """A value outside what every supported database stores; the request that carried it is refused unchanged."""


class DatabaseUnavailable(StoreError):
    """The database did not serve the request: the pool had no free connection in time, the database was busy or
    locked, or refused or lost the connection. A connection lost during the commit may leave it unknown whether
    the commit landed: a keyed request sent again replays if it did, and may succeed once the database is back."""
