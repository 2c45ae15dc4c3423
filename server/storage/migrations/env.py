"""Alembic's environment for evostim: migrations run online, on the connection
``evostim.server.storage.migrations`` hands over (``config.attributes["connection"]``), inside its transaction."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import TypeDecorator
from sqlalchemy.engine import Connection

from evostim.server.storage.tables import schema_metadata


def _render_item(kind: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    """A revision names plain SQLAlchemy types (``sa.String(length=40)``), never the store's private column types."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl!r}"
    return False  # alembic's own rendering


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=schema_metadata(),  # what `revision(autogenerate=True)` compares the database with
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("evostim's migrations run online only: `evostim db upgrade` connects to the database")
_run(context.config.attributes["connection"])
