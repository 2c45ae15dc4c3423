"""A database that cannot serve a request (gone away, or every pooled connection busy) is a retryable 503
``database-unavailable`` problem with a Retry-After, never a 500; nothing accepted is lost, and the same request
succeeds once the database is back."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from evostim.clients.http.client import Client
from evostim.clients.http.errors import DatabaseUnavailable as ClientDatabaseUnavailable
from evostim.clients.http.local_server import LocalServer
from evostim.server.storage import engine as engine_module
from evostim.server.storage.errors import DatabaseUnavailable
from evostim.server.storage.store import Store
from tests.conftest import counts_for

DATABASE = "evostim_unavailable"


@pytest.fixture
def database(postgres_cluster: Any) -> Iterator[str]:
    url: str = postgres_cluster.create_database(DATABASE)
    yield url
    postgres_cluster.allow_connections(DATABASE, True)
    postgres_cluster.drop_database(DATABASE)


def test_a_database_gone_away_is_a_retryable_503_and_the_same_post_goes_through_once_it_is_back(
    postgres_cluster: Any, database: str, tmp_path: Path
) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("EVOSTIM_")}
    env.update({"EVOSTIM_DATABASE_URL": database, "EVOSTIM_GC_FREEZE": "false"})
    with LocalServer(tmp_path / "data", env=env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/v1/sessions", json={"seed": 3, "population_size": 6, "references": {"builtin": 0}})
        assert created.status_code == 201, created.text
        session_id, manifest = created.json()["session"]["id"], created.json()["generation"]
        post = f"/v1/sessions/{session_id}/generations/0/responses"
        body, key = counts_for(manifest, seed=3), {"Idempotency-Key": "gen-0"}

        postgres_cluster.allow_connections(DATABASE, False)  # ends the server's connections too
        refused = http.post(post, json=body, headers=key)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "/problems/database-unavailable" and problem["retryable"] is True
        assert refused.headers["Retry-After"] == "2" and "incident" in problem
        assert "try again" in problem["detail"] and DATABASE not in problem["detail"]  # no internals shown
        assert http.get(f"/v1/sessions/{session_id}").status_code == 503  # reads too

        postgres_cluster.allow_connections(DATABASE, True)
        accepted = http.post(post, json=body, headers=key)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["next"]["number"] == 1 and accepted.json()["accepted"]["number"] == 0
        assert http.post(post, json=body, headers=key).json() == accepted.json()  # stored once: replayed
        assert http.get(f"/v1/sessions/{session_id}").json()["generation"] == 1


def test_the_python_client_names_it_and_waits_it_out(postgres_cluster: Any, database: str, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("EVOSTIM_")}
    env.update({"EVOSTIM_DATABASE_URL": database, "EVOSTIM_GC_FREEZE": "false"})
    with LocalServer(tmp_path / "data", env=env) as server:
        postgres_cluster.allow_connections(DATABASE, False)
        with Client(server.url, retries=0) as client, pytest.raises(ClientDatabaseUnavailable) as raised:
            client.create_session(seed=4, population_size=6)
        assert raised.value.retryable and raised.value.status == 503
        postgres_cluster.allow_connections(DATABASE, True)
        with Client(server.url) as client:
            assert client.create_session(seed=4, population_size=6)["generation"]["number"] == 0


def test_a_request_that_finds_every_pooled_connection_busy_is_refused_not_left_waiting(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "POOL_TIMEOUT_S", 0.5)
    store = Store(database, connections=4)
    held = [store._engine.connect() for _ in range(4)]  # every connection of the pool, busy
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as raised:
            store.count_sessions("running")
        assert 0.4 < time.monotonic() - started < 5 and raised.value.extra["retry_after"] == 2
    finally:
        for connection in held:
            connection.close()
    assert store.count_sessions("running") == 0  # a connection back in the pool serves the next request
    store.close()


def test_a_sqlite_file_locked_by_another_process_is_unavailable_and_a_broken_schema_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "evostim.db"
    store = Store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the file's write lock
    try:
        with pytest.raises(DatabaseUnavailable):  # a write (WAL: reads go on beside the lock)
            store.set_status("s_0123456789abcdef", "stopped", allowed_from=["running"])
    finally:
        other.execute("ROLLBACK")
    assert store.count_sessions("running") == 0
    other.execute("DROP TABLE responses")  # a bug's kind of failure: retrying cannot help, so no 503
    other.close()
    with pytest.raises(OperationalError, match="no such table") as raised:
        store.get_responses("s_0123456789abcdef", 0, 1)
    assert not isinstance(raised.value, DatabaseUnavailable)
    store.close()


def test_a_database_host_that_never_answers_fails_a_connection_in_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        engine_module, "POSTGRES_CONNECT_ARGS", {**engine_module.POSTGRES_CONNECT_ARGS, "connect_timeout": 2}
    )
    with socket.socket() as silent:  # accepts the TCP connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(OperationalError):
            Store(f"postgresql+psycopg://evostim@127.0.0.1:{port}/evostim")
        assert time.monotonic() - started < 10
