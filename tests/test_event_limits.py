"""Event streams against a real server: limits per token and per server (429 / 503 with Retry-After), streams
released however they end, and every listener of a session told of a post."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.conftest import counts_for
from tests.test_events import _events

TOKEN_A = "stream-limit-token-aaaaaaaaaa"
TOKEN_B = "stream-limit-token-bbbbbbbbbb"
PER_TOKEN = 4
PER_SERVER = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    env = {
        "EVOSTIM_TOKENS": f"{TOKEN_A},{TOKEN_B}",
        "EVOSTIM_MAX_EVENT_STREAMS_PER_TOKEN": str(PER_TOKEN),
        "EVOSTIM_MAX_EVENT_STREAMS": str(PER_SERVER),
    }
    with LocalServer(Path(tmp_path_factory.mktemp("stream-limits")), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def sessions(server: LocalServer) -> dict[str, dict[str, Any]]:
    """A session of each token (its creation answer)."""
    made = {}
    for token in (TOKEN_A, TOKEN_B):
        with Client(server.url, token=token) as client:
            made[token] = client.create_session(seed=7, population_size=4, references={"builtin": 0})
    return made


def _url(server: LocalServer, sessions: dict[str, dict[str, Any]], token: str) -> str:
    return f"{server.url}/v1/sessions/{sessions[token]['session']['id']}/events"


class Stream:
    """An open stream whose first event has arrived (or a refusal, read whole)."""

    def __init__(self, stack: ExitStack, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        self.answer = stack.enter_context(httpx.stream("GET", url, headers=headers, timeout=10.0))
        self.status_code = self.answer.status_code
        if self.status_code == 200:
            self.events = _events(self.answer.iter_lines())
            assert next(self.events) is not None
        else:
            self.answer.read()

    def next_event(self) -> dict[str, Any]:
        return next(e for e in self.events if e is not None)

    def close(self) -> None:
        self.answer.close()


def _open(stack: ExitStack, url: str, token: str) -> Stream:
    """A stream kept open until ``stack`` closes (an httpx line iterator that is collected closes its response)."""
    stream = Stream(stack, url, token)
    stack.callback(stream.close)
    return stream


def _open_streams(server: LocalServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10.0).text
    match = re.search(r"^evostim_event_streams (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def _eventually(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _assert_refusal(stream: Stream, status: int, slug: str) -> None:
    answer = stream.answer
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    problem = answer.json()
    assert problem["type"] == f"/problems/{slug}" and problem["retryable"] is True and problem["retry_after"] == 5


def test_a_token_past_its_limit_gets_a_429_and_the_server_past_its_own_a_503(
    server: LocalServer, sessions: dict[str, dict[str, Any]]
) -> None:
    url_a, url_b = _url(server, sessions, TOKEN_A), _url(server, sessions, TOKEN_B)
    with ExitStack() as stack:
        first = _open(stack, url_a, TOKEN_A)
        for _ in range(PER_TOKEN - 1):
            assert _open(stack, url_a, TOKEN_A).status_code == 200
        _assert_refusal(_open(stack, url_a, TOKEN_A), 429, "too-many-streams")
        for _ in range(PER_SERVER - PER_TOKEN):
            assert _open(stack, url_b, TOKEN_B).status_code == 200
        _assert_refusal(_open(stack, url_b, TOKEN_B), 503, "event-streams-full")
        assert _open_streams(server) == PER_SERVER
        assert httpx.get(url_b.removesuffix("/events"), headers={"Authorization": f"Bearer {TOKEN_B}"}).is_success
        first.close()  # the client goes away: its place is free again
        assert _eventually(lambda: _open_streams(server) == PER_SERVER - 1)
        assert _open(stack, url_a, TOKEN_A).status_code == 200
    assert _eventually(lambda: _open_streams(server) == 0)


def test_abandoned_streams_are_released_and_a_refused_or_unknown_one_holds_nothing(
    server: LocalServer, sessions: dict[str, dict[str, Any]]
) -> None:
    url = _url(server, sessions, TOKEN_A)
    for _ in range(5):  # 20 streams dropped without a word, PER_TOKEN at a time
        with ExitStack() as stack:
            for _ in range(PER_TOKEN):
                assert _open(stack, url, TOKEN_A).status_code == 200
        assert _eventually(lambda: _open_streams(server) == 0)
    unknown = httpx.get(
        f"{server.url}/v1/sessions/s_nosuchsession/events", headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert unknown.status_code == 404 and _open_streams(server) == 0


def test_every_listener_of_a_session_sees_a_post(server: LocalServer, sessions: dict[str, dict[str, Any]]) -> None:
    created = sessions[TOKEN_B]
    url = _url(server, sessions, TOKEN_B)
    with ExitStack() as stack:
        streams = [_open(stack, url, TOKEN_B) for _ in range(PER_TOKEN)]
        with Client(server.url, token=TOKEN_B) as client:
            body = counts_for(created["generation"], seed=2)
            client.post_responses(created["session"]["id"], 0, {r["stimulus"]: r["counts"] for r in body["responses"]})
        for stream in streams:
            assert stream.next_event()["generation"] == 1
