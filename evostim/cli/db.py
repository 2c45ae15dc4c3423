"""``evostim db upgrade``: create the tables, or migrate them to this version's schema."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from evostim.cli._common import redacted, setting_error

if TYPE_CHECKING:
    from evostim.cli._common import Commands
    from evostim.server.config import Settings

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    db = commands.add_parser("db", help="database maintenance")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser(
        "upgrade", help="create the tables, or migrate them to this version's schema (the server does it on start too)"
    )
    upgrade.add_argument("--url", help="SQLAlchemy URL (default: EVOSTIM_DATABASE_URL, or the data dir's SQLite file)")
    upgrade.set_defaults(run=upgrade_command)


def upgrade_command(args: argparse.Namespace) -> None:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from evostim.server.storage.migrations import SchemaMismatch, head
    from evostim.server.storage.store import Store

    url = args.url or _settings().resolved_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        store = Store(url)  # creates, adopts or upgrades: the same path as the server's start
    except (SchemaMismatch, SQLAlchemyError, CommandError) as error:  # e.g. a revision newer than this version
        raise SystemExit(f"evostim db upgrade: {redacted(url)}: {error}") from None
    revision = store.schema_revision()
    store.close()
    print(f"{redacted(url)}: at revision {revision}{' (head)' if revision == head() else ''}")


def _settings() -> Settings:
    import pydantic

    from evostim.server.config import Settings

    try:
        return Settings()
    except pydantic.ValidationError as error:
        raise SystemExit(f"evostim db: {'; '.join(setting_error(e) for e in error.errors())}") from None
