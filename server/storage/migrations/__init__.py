"""Schema migrations (Alembic): a Store brings its database to the newest revision when it opens it, and so does
``evostim db upgrade``.

``versions/`` holds one file per revision; 0001, the baseline, creates the tables of ``baseline.py``. A database made
before migrations existed (our tables, no ``alembic_version``) is adopted in place: it is compared with the baseline,
given what earlier versions added on start (the ``creation_keys`` table, the ``responses.baseline`` column), and
stamped 0001; no row is touched. Any other difference is refused with the list of differences: guessing could cost
a lab its data. On Postgres one migrator runs at a time (an advisory lock) and the whole upgrade is one transaction.

A new revision, in a checkout: change the models in ``store.py``, then run ``python -c "from
evostim.server.storage.migrations import new_revision; new_revision('add sessions.label')"``; it writes
``versions/NNNN_<slug>.py`` from the difference between the models and a scratch database at head. Read it, fix
what autogenerate cannot know (renames, backfills), and test it (tests/test_migrations.py).
"""

from __future__ import annotations

import logging
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

from evostim.server.storage.migrations.baseline import baseline_metadata

__all__ = ["BASELINE", "SchemaMismatch", "current_revision", "head", "new_revision", "upgrade"]

BASELINE = "0001"
log = logging.getLogger("evostim")
_FOLDER = Path(__file__).resolve().parent
_LOCK_KEY = 0x65766F73  # pg_advisory_xact_lock's key: "evos"
# What the start-up of versions before migrations added to an older database (create_all of a new table, ALTER TABLE
# ADD COLUMN of a nullable one); an adopted database may lack them, and gets them before it is stamped.
_ADDED_BEFORE_MIGRATIONS = {("add_table", "creation_keys"), ("add_column", "responses.baseline")}


class SchemaMismatch(RuntimeError):
    """A database without migration history whose tables are not a layout any evostim version made."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_FOLDER))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision shipped with this version."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migration revisions in {_FOLDER / 'versions'}")
    return revision


def current_revision(connection: Connection) -> str | None:
    """The database's revision; None for an empty database or one made before migrations."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the database to ``head()`` (adopting one made before migrations) and return its revision.

    Raises SchemaMismatch for tables evostim did not make.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # concurrent starts wait here, then find the work done
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        if current_revision(connection) != head():
            _adopt_if_made_before_migrations(connection)
            log.info("database schema: upgrading from revision %s to %s", current_revision(connection), head())
            command.upgrade(_config(connection), "head")
        return current_revision(connection) or ""


def _adopt_if_made_before_migrations(connection: Connection) -> None:
    baseline = baseline_metadata()
    present = set(inspect(connection).get_table_names())
    if "alembic_version" in present or not present & set(baseline.tables):
        return  # under migration already, or empty of our tables: the revisions take it from here
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    # Tables that are not ours (a shared database) are left alone; every other difference must be a known one.
    differences = [d for d in compare_metadata(context, baseline) if _describe(d)[0] != "remove_table"]
    _refuse_unknown(differences)
    operations = Operations(context)
    for difference in differences:
        if difference[0] == "add_table":
            difference[1].create(connection)
        else:  # ("add_column", schema, table, column)
            _, schema, table, column = difference
            operations.add_column(table, Column(column.name, column.type, nullable=True), schema=schema)
    command.stamp(_config(connection), BASELINE)
    added = ", ".join(what for _, what in map(_describe, differences)) or "nothing"
    log.warning("database made before migrations adopted as revision %s (added: %s; no row changed)", BASELINE, added)


def _refuse_unknown(differences: list[Any]) -> None:
    unknown = [_describe(d) for d in differences if _describe(d) not in _ADDED_BEFORE_MIGRATIONS]
    if unknown:
        listed = "; ".join(f"{kind} {what}" for kind, what in unknown)
        raise SchemaMismatch(
            f"the database has evostim's tables but no migration history, and differs from every layout evostim "
            f"made ({listed}); refusing to change it. Point EVOSTIM_DATABASE_URL at evostim's own database."
        )


def _describe(difference: Any) -> tuple[str, str]:
    """(kind, object) of one of compare_metadata's differences, e.g. ("add_column", "responses.baseline")."""
    if isinstance(difference, list):  # a modify_* group: type, nullability or default of one column
        kind, _, table, column = difference[0][:4]
        return kind, f"{table}.{column}"
    kind = difference[0]
    if kind in ("add_table", "remove_table"):
        return kind, difference[1].name
    if kind in ("add_column", "remove_column"):
        return kind, f"{difference[2]}.{difference[3].name}"
    return kind, str(getattr(difference[1], "name", difference[1]))


def new_revision(message: str) -> Path:
    """Write versions/NNNN_<slug>.py: the models' difference from a scratch SQLite database at head (for developers)."""
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/scratch.db")
        try:
            upgrade(engine)
            with engine.begin() as connection:
                script = command.revision(
                    _config(connection), message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}"
                )
        finally:
            engine.dispose()
    head.cache_clear()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic wrote no single revision")
    return Path(script.path)
