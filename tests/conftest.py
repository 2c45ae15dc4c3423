"""Shared fixtures: a loaded generator, an in-process API over a real SQLite file, helpers to post."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim import generators
from evostim.server.app import create_app
from evostim.server.config import Settings


@pytest.fixture(scope="session")
def dcgan() -> generators.ImageGenerator:
    return generators.load_generator("dcgan-faces", "cpu")


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Any]:
    """A factory of in-process API clients over one SQLite file in tmp_path."""
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = TestClient(create_app(Settings(data_dir=tmp_path, **settings)))
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
