"""GET /v1/sessions/{id}/events against a real server: a post shows up as an event; other tokens see nothing."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.conftest import counts_for

TOKEN = "events-token-aaaaaaaaaaaa"
OTHER = "events-token-bbbbbbbbbbbb"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    data_dir = Path(tmp_path_factory.mktemp("events-data"))
    with LocalServer(data_dir, env={"EVOSTIM_TOKENS": f"{TOKEN},{OTHER}"}) as running:
        yield running


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any] | None]:
    """Each event's JSON, or None for a comment (heartbeat)."""
    data: list[str] = []
    comment = False
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line.startswith(":"):
            comment = True
        elif line == "" and (data or comment):
            yield json.loads("\n".join(data)) if data else None
            data, comment = [], False


def test_a_post_to_the_session_is_streamed_as_an_event(server: LocalServer) -> None:
    with Client(server.url, token=TOKEN) as client:
        created = client.create_session(seed=3, population_size=4, references={"builtin": 1})
        session_id = created["session"]["id"]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{server.url}/v1/sessions/{session_id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=10.0) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _events(stream.iter_lines())
            first = next(events)
            assert first is not None and first["id"] == session_id and first["generation"] == 0
            started = time.monotonic()
            client.post_responses(session_id, 0, _counts(created["generation"]))
            second = next(events)
            assert second is not None and second["generation"] == 1 and second["best_score"] is not None
            assert time.monotonic() - started < 5.0


def _counts(manifest: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    body = counts_for(manifest, seed=1)
    return {r["stimulus"]: r["counts"] for r in body["responses"]}


def test_another_token_gets_a_404_problem(server: LocalServer) -> None:
    with Client(server.url, token=TOKEN) as client:
        session_id = client.create_session(seed=4, population_size=4, references={"builtin": 0})["session"]["id"]
    answer = httpx.get(
        f"{server.url}/v1/sessions/{session_id}/events", headers={"Authorization": f"Bearer {OTHER}"}, timeout=10.0
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "/problems/session-not-found"


def test_an_unknown_session_is_a_404_and_no_token_a_401(server: LocalServer) -> None:
    url = f"{server.url}/v1/sessions/no-such-session/events"
    answer = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(url, timeout=10.0).status_code == 401


def test_the_server_stops_promptly_with_a_stream_open(tmp_path: Path) -> None:
    with LocalServer(tmp_path, env={"EVOSTIM_TOKENS": TOKEN}) as running, Client(running.url, token=TOKEN) as client:
        session_id = client.create_session(seed=5, population_size=4, references={"builtin": 0})["session"]["id"]
        url = f"{running.url}/v1/sessions/{session_id}/events"
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0) as stream:
            assert next(_events(stream.iter_lines())) is not None
            started = time.monotonic()
            code = running.stop()
            assert time.monotonic() - started < 5.0  # not uvicorn's 10 s graceful-shutdown timeout
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled once it has shut down
