"""Schema migrations (Alembic), on SQLite and Postgres: from empty, adoption of databases made before migrations
(a real file from the previous version, and the older layouts it upgraded on start), refusal of foreign tables,
idempotent re-runs, and ``evostim db upgrade``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from evostim.cli import main
from evostim.server.storage import migrations
from evostim.server.storage.migrations import SchemaMismatch, head
from evostim.server.storage.migrations.baseline import baseline_metadata
from evostim.server.storage.store import Store, schema_metadata
from tests.conftest import counts_for
from tests.test_api import create, history

# Made by evostim 0.1.0 before migrations (commit e0dbb57, `Store` at its create_all + add-missing-columns path):
# one dcgan-faces session (population 4, channels a and b), generations 0 and 1 closed with keyed posts
# ("gen-0", "gen-1"), generation 2 open, created with the key "create-1".
PREVIOUS_VERSION_FILE = Path(__file__).parent / "fixtures" / "evostim-0.1.0-before-migrations.db"
PREVIOUS_VERSION_SESSION = "s_b86bf6aed643a3fe"
PREVIOUS_VERSION_CREATION = {
    "generator": "dcgan-faces", "population_size": 4, "seed": 7, "channels": ["a", "b"],
    "metadata": {"animal": "legacy", "notes": "made by evostim before migrations (commit e0dbb57)"},
}  # fmt: skip


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def rows(engine: Engine) -> dict[str, int]:
    """Rows per baseline table (the names quoted: `references` is a reserved word)."""
    tables = baseline_metadata().sorted_tables
    with engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
        return {
            t.name: connection.scalar(select(func.count()).select_from(t)) or 0 for t in tables if t.name in present
        }


def differences_from_models(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, schema_metadata()))


def back_to_a_layout_before_migrations(engine: Engine, *statements: str) -> None:
    """Undo what the revisions did (0001's stamp, 0002's and 0003's columns, 0004's dropped table), then
    ``statements``: the tables as a version before migrations left them."""
    with engine.begin() as connection:
        for statement in ["DROP TABLE alembic_version", *(f"ALTER TABLE sessions DROP COLUMN {c}" for c in _ADDED)]:
            connection.execute(text(statement))
        baseline_metadata().tables["references"].create(connection)
        for statement in statements:
            connection.execute(text(statement))


_ADDED = ("updated_at", "best_mean", "best_mean_generation")  # sessions' columns of revisions 0002 and 0003
_DROPPED = "references"  # revision 0004: its rows are generation 0's reference stimuli


def without_dropped(counts: dict[str, int]) -> dict[str, int]:
    return {table: count for table, count in counts.items() if table != _DROPPED}


def run_a_session(api: TestClient) -> str:
    """A session with one closed generation, a keyed post and a keyed creation: a row in every table."""
    response = api.post("/v1/sessions", json={"seed": 5, "population_size": 4}, headers={"Idempotency-Key": "c-1"})
    assert response.status_code == 201, response.text
    created = response.json()
    manifest = created["generation"]
    posted = api.post(manifest["responses_url"], json=counts_for(manifest), headers={"Idempotency-Key": "p-1"})
    assert posted.status_code == 200, posted.text
    return str(created["session"]["id"])


def test_an_empty_database_gets_the_newest_revision_whose_tables_are_the_models(
    engine: Engine, database_url: str
) -> None:
    Store(database_url).close()
    assert revision(engine) == head()
    # A model changed without a revision shows up here.
    assert differences_from_models(engine) == []


def test_opening_a_database_at_the_newest_revision_again_changes_nothing(make_api: Any, engine: Engine) -> None:
    session_id = run_a_session(make_api())
    before = rows(engine)
    reopened = make_api()
    assert revision(engine) == head() and rows(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    assert reopened.get(f"/v1/sessions/{session_id}").status_code == 200


LAYOUTS_BEFORE_MIGRATIONS = {
    "last": [],  # the layout of the version just before migrations
    "before-creation-keys": ["DROP TABLE creation_keys"],
    "before-baselines": ["DROP TABLE creation_keys", "ALTER TABLE responses DROP COLUMN baseline"],
}


@pytest.mark.parametrize("layout", list(LAYOUTS_BEFORE_MIGRATIONS))
def test_a_database_made_before_migrations_is_adopted_without_losing_a_row(
    make_api: Any, engine: Engine, layout: str
) -> None:
    api = make_api()
    session_id = run_a_session(api)
    before = history(api, session_id)
    back_to_a_layout_before_migrations(engine, *LAYOUTS_BEFORE_MIGRATIONS[layout])
    kept = without_dropped(rows(engine))

    reopened = make_api()
    assert revision(engine) == head() and differences_from_models(engine) == []
    assert {table: count for table, count in rows(engine).items() if table in kept} == kept
    after = history(reopened, session_id)
    if layout == "before-baselines":  # the column came back empty: what an older version stored
        for stimulus in (s for g in before["generations"] for s in g["stimuli"]):
            stimulus["baseline"] = None
    assert after == before  # last_activity included: 0002 backfills it from the generation's closing time
    assert create(reopened, population_size=4)["session"]["status"] == "running"


def test_the_previous_versions_database_file_is_adopted_and_its_session_goes_on(tmp_path: Path) -> None:
    from evostim.server.app import create_app
    from evostim.server.config import Settings

    database = tmp_path / "evostim.db"
    shutil.copyfile(PREVIOUS_VERSION_FILE, database)
    engine = create_engine(f"sqlite:///{database}")
    kept = without_dropped(rows(engine))
    with TestClient(create_app(Settings(data_dir=tmp_path))) as api:
        assert revision(engine) == head() and rows(engine) == kept
        past = history(api, PREVIOUS_VERSION_SESSION)
        assert [g["number"] for g in past["generations"]] == [0, 1, 2]
        manifest = api.get(f"/v1/sessions/{PREVIOUS_VERSION_SESSION}/generations/2").json()
        # The stored optimizer state replays: generation 2's proposals are reproduced, and it takes its scores.
        posted = api.post(manifest["responses_url"], json=counts_for(manifest, channels=("a", "b")))
        assert posted.status_code == 200, posted.text
        assert posted.json()["next"]["number"] == 3
        # The previous version's idempotency keys still hold: its creation, retried, replays the stored answer.
        retry = api.post("/v1/sessions", json=PREVIOUS_VERSION_CREATION, headers={"Idempotency-Key": "create-1"})
        assert retry.status_code == 201 and retry.json()["session"]["id"] == PREVIOUS_VERSION_SESSION
    engine.dispose()


def test_tables_evostim_did_not_make_are_refused_and_left_alone(database_url: str, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE sessions (id INTEGER PRIMARY KEY, name VARCHAR(40))"))
        connection.execute(text("INSERT INTO sessions VALUES (1, 'another program''s row')"))
    with pytest.raises(SchemaMismatch, match="sessions"):
        Store(database_url)
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"sessions"}
        assert connection.scalar(text("SELECT name FROM sessions")) == "another program's row"


def test_evostim_db_upgrade_creates_adopts_and_reruns(
    database_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["db", "upgrade", "--url", database_url])
    assert capsys.readouterr().out.strip().endswith(f"at revision {head()} (head)")
    main(["db", "upgrade", "--url", database_url])  # again: nothing to do
    assert capsys.readouterr().out.strip().endswith(f"at revision {head()} (head)")
    back_to_a_layout_before_migrations(engine, "DROP TABLE creation_keys")
    main(["db", "upgrade", "--url", database_url])
    assert revision(engine) == head() and differences_from_models(engine) == []
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'nonexistent'"))
    with pytest.raises(SystemExit, match=r"evostim db upgrade: .*nonexistent"):
        main(["db", "upgrade", "--url", database_url])


def test_the_baseline_is_the_schema_of_the_last_version_before_migrations(tmp_path: Path) -> None:
    """The file made by the previous version has revision 0001's tables exactly: it is adopted as it is."""
    database = tmp_path / "evostim.db"
    shutil.copyfile(PREVIOUS_VERSION_FILE, database)
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, baseline_metadata()) == []
    engine.dispose()


def test_revision_0002_backfills_last_activity_from_the_latest_closed_generation(tmp_path: Path) -> None:
    """The previous version's file: its session's last activity becomes generation 1's closing time."""
    from evostim.server.app import create_app
    from evostim.server.config import Settings

    database = tmp_path / "evostim.db"
    shutil.copyfile(PREVIOUS_VERSION_FILE, database)
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        closed_at = connection.scalar(
            text("SELECT closed_at FROM generations WHERE session_id = :s AND number = 1"),
            {"s": PREVIOUS_VERSION_SESSION},
        )
    with TestClient(create_app(Settings(data_dir=tmp_path))) as api:
        session = api.get(f"/v1/sessions/{PREVIOUS_VERSION_SESSION}").json()
        assert session["last_activity"].startswith(str(closed_at).replace(" ", "T")[:19])
        manifest = api.get(f"/v1/sessions/{PREVIOUS_VERSION_SESSION}/generations/2").json()
        answer = api.post(manifest["responses_url"], json=counts_for(manifest, channels=("a", "b"))).json()
        again = api.get(f"/v1/sessions/{PREVIOUS_VERSION_SESSION}").json()
        assert again["last_activity"] == answer["session"]["last_activity"] > session["last_activity"]
    engine.dispose()


def test_revision_0003_backfills_the_plateau_rules_running_summary(tmp_path: Path) -> None:
    """The previous version's file: generations 0 and 1 closed with mean evolved scores 5.125 and 4.5."""
    database = tmp_path / "evostim.db"
    shutil.copyfile(PREVIOUS_VERSION_FILE, database)
    store = Store(f"sqlite:///{database}")
    session = store.get_session(PREVIOUS_VERSION_SESSION)
    store.close()
    assert session is not None and (session.best_mean, session.best_mean_generation) == (5.125, 0)


def test_revision_0004_drops_the_references_table_whose_rows_are_generation_0s_reference_stimuli(
    database_url: str, engine: Engine, make_api: Any
) -> None:
    """Nothing is lost: the dropped table held the codes of each session's reference stimuli, and downgrading
    rebuilds it from them."""
    legacy = create_engine(f"sqlite:///{PREVIOUS_VERSION_FILE}")
    with legacy.connect() as connection:  # what the previous version wrote there: the same codes
        dropped = connection.execute(text('SELECT "index", code FROM "references" ORDER BY "index"')).all()
        kept = connection.execute(text(_REFERENCE_STIMULI), {"s": PREVIOUS_VERSION_SESSION}).all()
    legacy.dispose()
    assert len(dropped) == 4 and [tuple(row) for row in dropped] == [tuple(row) for row in kept]

    api = make_api()
    session_id = create(api, population_size=4, references={"builtin": 3})["session"]["id"]
    with engine.begin() as connection:
        command.downgrade(migrations._config(connection), "0003")
        rebuilt = connection.execute(text('SELECT "index", code FROM "references" ORDER BY "index"')).all()
        shown = connection.execute(text(_REFERENCE_STIMULI), {"s": session_id}).all()
    assert len(rebuilt) == 3 and [tuple(row) for row in rebuilt] == [tuple(row) for row in shown]
    assert create(make_api(), population_size=4)["session"]["status"] == "running"  # upgraded again on open
    assert revision(engine) == head() and differences_from_models(engine) == []


_REFERENCE_STIMULI = (
    "SELECT \"index\", code FROM stimuli WHERE session_id = :s AND generation = 0 AND kind = 'reference' "
    'ORDER BY "index"'
)
