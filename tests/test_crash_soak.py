"""kill -9 under load: simulated rigs post while the server is killed at random moments and restarted.

Several rigs (one thread and one session each) post every generation with an Idempotency-Key and retry, with the
same key and body, whatever a crash did to their request (connection refused or reset, a 5xx). Their counts depend
only on (rig, generation, stimulus kind and index), so an uninterrupted run of the same sessions, in process, gets
the same posts. After the last kill the server starts once more and the test checks the promises:

- every post the server answered 2xx is in the history, closed, with exactly the counts that were posted;
- every session continues (one more generation posted after the last restart);
- every generation's codes equal, bit for bit, what the uninterrupted run proposed.

The default run kills 3 times on SQLite (about 30 s); ``pytest -m reliability`` kills 20 times on SQLite and on
Postgres, and prints ``kills, posts, losses`` for each.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim.clients.http.client import Client
from evostim.clients.http.errors import ServerError
from evostim.clients.http.local_server import LocalServer, free_port

_RIGS = 4
_POPULATION = 8
_REPETITIONS = 2


def _session_config(rig: int) -> dict[str, Any]:
    return {"seed": 1000 + rig, "channels": ["ch0"], "population_size": _POPULATION, "references": {"builtin": 2}}


def _counts(rig: int, manifest: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Deterministic counts for a generation: the same in the killed run and in the uninterrupted one."""
    counts = {}
    for stimulus in manifest["stimuli"]:
        kind = 0 if stimulus["kind"] == "evolved" else 1
        rng = np.random.default_rng([rig, manifest["number"], kind, stimulus["index"]])
        counts[stimulus["id"]] = {"ch0": rng.poisson(6, size=_REPETITIONS).astype(float).tolist()}
    return counts


@dataclass
class Rig:
    """One session's rig: posts generation after generation until told to stop, retrying through crashes."""

    number: int
    url: str
    session_id: str
    manifest: dict[str, Any]
    stop: threading.Event
    answered: dict[int, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    retries: int = 0
    failure: BaseException | None = None

    def run(self) -> None:
        try:
            with Client(self.url, retries=0, timeout=30.0) as client:
                while not self.stop.is_set():
                    self.post_one(client)
        except BaseException as error:  # reported by the test, not lost in the thread
            self.failure = error

    def post_one(self, client: Client) -> None:
        number = self.manifest["number"]
        counts = _counts(self.number, self.manifest)
        key = f"rig{self.number}-g{number}"
        while True:
            try:
                answer = client.post_responses(self.session_id, number, counts, idempotency_key=key)
                break
            except (httpx.TransportError, ServerError):  # the server died under us, or is starting: same key again
                self.retries += 1
                time.sleep(0.05)
        self.answered[number] = counts
        self.manifest = answer["next"]


def _wait_for_posts(rigs: list[Rig], at_least: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(r.answered) for r in rigs) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)


def _uninterrupted_codes(tmp_path: Path, rig: int, generations: int) -> list[list[list[float]]]:
    """The codes the same session proposes when nothing is killed: an in-process server, the same posts."""
    from evostim.server.app import create_app
    from evostim.server.config import Settings

    settings = Settings(data_dir=tmp_path / f"reference-{rig}")
    with TestClient(create_app(settings)) as api:
        created = api.post("/v1/sessions", json=_session_config(rig)).json()
        manifest, session_id = created["generation"], created["session"]["id"]
        for number in range(generations):
            body = {"responses": [{"stimulus": s, "counts": c} for s, c in _counts(rig, manifest).items()]}
            manifest = api.post(f"/v1/sessions/{session_id}/generations/{number}/responses", json=body).json()["next"]
        history = api.get(f"/v1/sessions/{session_id}/history", params={"codes": True}).json()
    return [[s["code"] for s in g["stimuli"]] for g in history["generations"]]


def _check_nothing_lost(history: dict[str, Any], rig: Rig) -> int:
    """Every answered post is stored, closed, with the posted counts; returns how many were missing (0)."""
    generations = {g["number"]: g for g in history["generations"]}
    lost = 0
    for number, counts in rig.answered.items():
        stored = generations.get(number)
        if stored is None or stored["status"] != "closed":
            lost += 1
            continue
        assert {s["id"]: s["counts"] for s in stored["stimuli"]} == counts, f"rig {rig.number} generation {number}"
    return lost


def _soak(tmp_path: Path, kills: int, env: dict[str, str]) -> None:
    port = free_port()
    data = tmp_path / "data"
    server = LocalServer(data, port=port, env=env).start()
    stop = threading.Event()
    rigs: list[Rig] = []
    with Client(server.url) as client:
        for number in range(_RIGS):
            created = client.create_session(**_session_config(number))
            rigs.append(Rig(number, server.url, created["session"]["id"], created["generation"], stop))
    threads = [threading.Thread(target=rig.run, daemon=True) for rig in rigs]
    for thread in threads:
        thread.start()
    chaos = random.Random(kills)
    try:
        for _ in range(kills):
            _wait_for_posts(rigs, sum(len(r.answered) for r in rigs) + _RIGS)  # the rigs are posting again
            time.sleep(chaos.uniform(0.0, 0.6))  # a random moment: mid-post, mid-commit, between posts
            server.kill()
            server = LocalServer(data, port=port, env=env).start()
        _wait_for_posts(rigs, sum(len(r.answered) for r in rigs) + _RIGS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    server.kill()  # the last crash, with every rig stopped: what they were told must survive it too
    server = LocalServer(data, port=port, env=env).start()
    try:
        failures = [r.failure for r in rigs if r.failure is not None]
        assert not failures, failures
        lost = 0
        with Client(server.url) as client:
            for rig in rigs:
                lost += _check_nothing_lost(client.history(rig.session_id, codes=True), rig)
                rig.post_one(client)  # the session continues after every crash
                history = client.history(rig.session_id, codes=True)
                stored = [[s["code"] for s in g["stimuli"]] for g in history["generations"]]
                assert stored == _uninterrupted_codes(tmp_path, rig.number, len(stored) - 1), f"rig {rig.number}"
        posts = sum(len(r.answered) for r in rigs)
        print(f"kills {kills}, posts {posts} (retried {sum(r.retries for r in rigs)}), losses {lost}")
        assert lost == 0
        assert posts >= kills * _RIGS
    finally:
        server.stop()


def test_a_server_killed_three_times_under_load_loses_no_answered_post(tmp_path: Path) -> None:
    _soak(tmp_path, kills=3, env={})


@pytest.mark.reliability
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_twenty_kills_under_load_lose_nothing_and_replay_bit_identically(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {}
    if backend == "postgres":
        env["EVOSTIM_DATABASE_URL"] = request.getfixturevalue("postgres_cluster").create_database("soak")
    _soak(tmp_path, kills=20, env=env)
    with capsys.disabled():
        print(f"\n{backend}: {capsys.readouterr().out.strip()}")
