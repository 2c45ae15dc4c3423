"""The store's connection to its database: the engine, its pool and timeouts, SQLite's pragmas, and which of the
database's failures mean "not now" (a retryable 503) rather than "wrong" (a bug: a 500).

``store.Store`` builds its engine here and wraps each of its transactions in :func:`unavailable_as_error`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from evostim.server.storage.errors import DatabaseUnavailable
from evostim.server.storage.tables import json_dumps

__all__ = ["POOL_SIZE", "make_engine", "unavailable_as_error"]

POOL_SIZE = 40  # anyio runs up to 40 sync endpoints at once, each in a thread of its own
POSTGRES_POOL_SIZE = 20  # kept open; the other 20 close when idle (a Postgres connection is a process)
POOL_TIMEOUT_S = 30.0  # how long a request waits for a free pooled connection before it is answered 503
SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's lock on the file (then: 503)
RETRY_AFTER_S = 2  # what a request the database could not serve tells its client to wait
# libpq: a database host that does not answer fails a new connection in 10 s, and a connection whose peer went
# silent is found dead by TCP keepalives within about a minute, rather than holding a request thread for good
POSTGRES_CONNECT_ARGS = {"connect_timeout": 10, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
# Failures that a later try may not meet: Postgres SQLSTATE classes 08 (connection), 40 (rolled back: serialization,
# deadlock), 53 (resources: too many connections), 57P (shut down, starting up), and 55000 / 55P03 (a database not
# accepting connections, a lock not available); SQLite's BUSY (5) and LOCKED (6), extended codes included.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P", "55000", "55P03")
_SQLITE_BUSY_OR_LOCKED = (5, 6)


def _unavailable(error: OperationalError) -> bool:
    """Whether the database failed to serve the request (busy, locked, gone) rather than refused it as wrong."""
    if error.connection_invalidated:
        return True
    driver_error = error.orig
    sqlite_code = getattr(driver_error, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return sqlite_code & 0xFF in _SQLITE_BUSY_OR_LOCKED
    sqlstate = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    # no SQLSTATE: libpq's own failure (refused, timed out, connection lost) before the server said anything
    return sqlstate is None or str(sqlstate).startswith(_TRANSIENT_SQLSTATE_PREFIXES)


def make_engine(url: str, connections: int) -> Engine:
    """The engine of ``url``: at most ``connections`` to Postgres at once (SQLite's pool is its own, 40 + 10)."""
    if not url.startswith("sqlite"):
        # beyond SQLAlchemy's pool of 5, each request beside 5 others opened a connection (a Postgres backend
        # process) and closed it again; up to 40 per process, as many as requests run at once (README), fewer
        # where the database's max_connections would not hold every process's (``connections``, fit.py)
        kept = min(POSTGRES_POOL_SIZE, connections)
        return create_engine(
            url,
            pool_pre_ping=True,
            json_serializer=json_dumps,
            pool_size=kept,
            max_overflow=connections - kept,
            pool_timeout=POOL_TIMEOUT_S,
            connect_args=POSTGRES_CONNECT_ARGS,
        )
    # As many pooled connections as requests run at once: beyond the pool, each request opened a connection of its
    # own and set its pragmas, 12% of a loaded server's busy time. (An in-memory database has one connection.)
    parsed = make_url(url)
    in_memory = parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
    pool: dict[str, float] = (
        {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": 10, "pool_timeout": POOL_TIMEOUT_S}
    )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        json_serializer=json_dumps,
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives a power cut too
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


@contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Raise a database that did not serve the request (its pool busy, refused, lost, locked, rolled back) as
    ``DatabaseUnavailable``; any other failure as it is."""
    try:
        yield
    except PoolTimeout as error:  # every pooled connection stayed busy for POOL_TIMEOUT_S
        raise DatabaseUnavailable(
            "every database connection of this server process stayed busy; try again shortly",
            retry_after=RETRY_AFTER_S,
        ) from error
    except OperationalError as error:
        if not _unavailable(error):  # a bug or a broken schema (SQLite's "no such table" too): stays a 500
            raise
        raise DatabaseUnavailable(
            "the database did not serve the request (it refused or lost the connection, was busy or locked, or "
            "rolled the transaction back); try again shortly (a request sent again with its Idempotency-Key "
            "replays if it was stored)",
            retry_after=RETRY_AFTER_S,
        ) from error
