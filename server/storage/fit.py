"""How many Postgres connections each of ``evostim serve``'s processes may hold: the database's ``max_connections``,
less the connections kept for superusers and those open now, shared between the processes.

A server process holds up to 40 (one per request running at once, ``engine.POOL_SIZE``). Past what Postgres allows,
a request is refused a connection and fails; a smaller pool makes it wait for one instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

__all__ = ["MIN_CONNECTIONS", "ConnectionBudget", "connection_budget"]

# Below this a process's requests would mostly wait for a connection: refuse to start rather than crawl.
MIN_CONNECTIONS = 4


@dataclass(frozen=True)
class ConnectionBudget:
    """What Postgres allows now: its ``max_connections``, those kept for superusers, and those open."""

    max_connections: int
    reserved: int
    open: int

    @property
    def free(self) -> int:
        return max(self.max_connections - self.reserved - self.open, 0)

    def per_process(self, processes: int, wanted: int) -> int:
        """Connections each of ``processes`` may hold, at most ``wanted``."""
        return min(wanted, self.free // processes)


def connection_budget(url: str) -> ConnectionBudget:
    """Postgres's connection limits as seen now (this look's own connection is closed again before the server starts,
    so it is not counted)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            settings: dict[str, str] = dict(
                connection.execute(
                    text(
                        "SELECT name, setting FROM pg_settings WHERE name IN "
                        "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
                    )
                ).all()
            )
            # Another role's sessions show no backend_type to a role without pg_read_all_stats: counted too (the
            # safe side; a background process of Postgres's own then counts as well).
            opened = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' OR backend_type IS NULL"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    reserved = int(settings.get("superuser_reserved_connections", 3)) + int(settings.get("reserved_connections", 0))
    return ConnectionBudget(int(settings["max_connections"]), reserved, int(opened) - 1)
