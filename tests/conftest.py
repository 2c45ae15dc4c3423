"""Shared fixtures: a loaded generator, an in-process API over a real database, helpers to post.

The API and store tests (modules named in ``_BOTH_BACKENDS``) run once on a SQLite file and once on a fresh
database of a throwaway PostgreSQL cluster (``tests/postgres.py``); ``-m "not postgres"`` leaves the second out.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim import generators
from evostim.server.app import create_app
from evostim.server.config import Settings

# The test process starts and stops hundreds of servers, each of which would freeze and unfreeze every object
# (server/ops/collector.py): a full collection of all of them then lands on a later test at random. Off here and in
# the servers the tests start (they inherit it); tests/test_ops.py turns it on where it tests it.
os.environ.setdefault("EVOSTIM_GC_FREEZE", "false")


@pytest.fixture(scope="session")
def dcgan() -> generators.ImageGenerator:
    return generators.load_generator("dcgan-faces", "cpu")


# Test modules whose tests run on both backends; the others' subject is not the database, so SQLite does. Left out:
# test_api_optimizers (every optimizer through one store path, 14 s more on Postgres; test_api's replay and restart
# tests take that path there).
_BOTH_BACKENDS = ("test_api", "test_store", "test_migrations", "test_fuzz")
_SQLITE_ONLY = ("test_api_optimizers",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if "database_backend" in metafunc.fixturenames and module.startswith(_BOTH_BACKENDS) and module not in _SQLITE_ONLY:
        backends = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
        metafunc.parametrize("database_backend", backends, indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """One PostgreSQL 15 cluster for the whole run (started on first use, about 2 s), stopped at the end."""
    from tests.postgres import PostgresCluster, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL 15 is not installed (no /usr/lib/postgresql/15/bin/initdb): apt-get install postgresql-15"
        )
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def database_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: parametrized in the modules of ``_BOTH_BACKENDS``, SQLite elsewhere."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database_backend: str, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database of this test's own: tmp_path/evostim.db, or a fresh Postgres database."""
    if database_backend == "sqlite":
        yield f"sqlite:///{(tmp_path / 'evostim.db').resolve()}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    name = f"evostim_{uuid.uuid4().hex[:12]}"
    url: str = cluster.create_database(name)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def make_api(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """A factory of in-process API clients over one database (its files in tmp_path)."""
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = TestClient(create_app(Settings(data_dir=tmp_path, **{"database_url": database_url, **settings})))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Any) -> TestClient:
    client: TestClient = make_api()
    return client


def counts_for(manifest: dict[str, Any], *, seed: int = 0, channels: tuple[str, ...] = ("ch0",)) -> dict[str, Any]:
    """A valid responses body for every stimulus of a manifest (deterministic fake counts)."""
    rng = np.random.default_rng(seed)
    return {
        "responses": [
            {"stimulus": s["id"], "counts": {ch: rng.poisson(5, size=2).astype(float).tolist() for ch in channels}}
            for s in manifest["stimuli"]
        ]
    }


@pytest.fixture
def scratch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's temporary files go here (in-process), so a test sees whether any is made or left behind."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
