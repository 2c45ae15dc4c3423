"""``evostim serve`` on Postgres fits its processes' connection pools into the database's ``max_connections``: a
pool cut to fit (said in the log, passed to the workers), a start that would leave too few refused in one line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from evostim import cli
from evostim.server.storage.fit import MIN_CONNECTIONS, connection_budget
from evostim.server.storage.store import Store


@pytest.fixture
def postgres_url(postgres_cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[str]:
    for name in [n for n in os.environ if n.startswith("EVOSTIM_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url: str = postgres_cluster.create_database("evostim_fit")
    monkeypatch.setenv("EVOSTIM_DATABASE_URL", url)
    yield url
    postgres_cluster.drop_database("evostim_fit")


def test_the_budget_is_what_postgres_allows_less_reserved_and_open_connections(postgres_url: str) -> None:
    before = connection_budget(postgres_url)
    engine = create_engine(postgres_url)
    with engine.connect() as held:  # one connection open beside the look's own
        assert held.execute(text("SHOW max_connections")).scalar_one() == "200"  # tests/postgres.py's cluster
        budget = connection_budget(postgres_url)
    engine.dispose()
    assert (budget.max_connections, budget.reserved) == (200, 3)
    assert budget.open == before.open + 1 and budget.free == before.free - 1  # the look's own is not counted
    assert budget.per_process(1, 40) == 40 and budget.per_process(6, 40) == budget.free // 6 < 40


def test_a_role_that_cannot_see_others_sessions_still_counts_them(postgres_url: str) -> None:
    """Without pg_read_all_stats another role's sessions show no backend_type: they count all the same."""
    admin = create_engine(postgres_url, poolclass=NullPool)  # a closed connection is closed, not pooled
    with admin.connect() as connection:
        connection.execute(text("DROP ROLE IF EXISTS evostim_lab"))
        connection.execute(text("CREATE ROLE evostim_lab LOGIN"))
        connection.execute(text("GRANT ALL ON DATABASE evostim_fit TO evostim_lab"))
        connection.commit()
    lab_url = make_url(postgres_url).set(username="evostim_lab").render_as_string(hide_password=False)
    before = connection_budget(lab_url)
    held = [admin.connect() for _ in range(5)]  # the superuser's: invisible in detail to evostim_lab
    try:
        assert connection_budget(lab_url).open == before.open + 5
    finally:
        for connection in held:
            connection.close()
        admin.dispose()


def test_a_store_holds_at_most_its_connections(postgres_url: str) -> None:
    store = Store(postgres_url, connections=6)
    try:
        pool = store._engine.pool
        assert pool.size() + pool._max_overflow == 6  # type: ignore[attr-defined]
    finally:
        store.close()


def _no_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **options: started.append(options))
    return started


def test_workers_beyond_what_postgres_allows_share_it_and_the_log_says_so(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    started = _no_server(monkeypatch)
    # what serve sets for its workers, restored after the test
    monkeypatch.setenv("EVOSTIM_DATABASE_CONNECTIONS", "40")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    free = connection_budget(postgres_url).free
    cli.main(["serve", "--port", "0", "--workers", "6"])
    assert started and started[0]["workers"] == 6
    each = int(os.environ["EVOSTIM_DATABASE_CONNECTIONS"])  # what the worker processes read
    assert MIN_CONNECTIONS <= each < 40 and abs(each - free // 6) <= 1
    log = capfd.readouterr().err
    assert f"each of 6 server processes holds at most {each}" in log and "200 connections (max_connections)" in log


def test_a_start_that_would_leave_too_few_connections_is_refused_in_one_line(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _no_server(monkeypatch)
    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", "--port", "0", "--workers", "60"])
    line = str(refused.value.code)
    assert line.startswith("evostim serve: refusing to start: Postgres allows 200 connections") and "\n" not in line
    assert "fewer than 4 each: run fewer --workers or raise max_connections" in line and not started


def test_a_database_that_does_not_answer_is_refused_in_one_line(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _no_server(monkeypatch)
    monkeypatch.setenv("EVOSTIM_DATABASE_URL", "postgresql+psycopg://evostim:secret@127.0.0.1:1/none")
    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", "--port", "0"])
    line = str(refused.value.code)
    assert line.startswith("evostim serve: refusing to start: the database postgresql+psycopg://evostim:***@")
    assert "does not answer" in line and "secret" not in line and not started
