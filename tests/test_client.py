"""The Python client against a real server: arrays out, problems raised, lost answers retried safely."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from evostim.clients.http.client import AsyncClient, Client, EvostimError
from evostim.clients.http.errors import GenerationClosed, SessionNotFound, SessionNotRunning
from evostim.clients.http.local_server import LocalServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(Path(tmp_path_factory.mktemp("client-data"))) as running:
        yield running


class LoseFirstAnswer(httpx.HTTPTransport):
    """Delivers every request, but drops the first answer to a POST whose path ends so (a network cut)."""

    def __init__(self, path_end: str = "/responses") -> None:
        super().__init__()
        self.dropped = 0
        self.path_end = path_end
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith(self.path_end):
            self.keys.append(request.headers.get("Idempotency-Key"))
        if request.method == "POST" and request.url.path.endswith(self.path_end) and not self.dropped:
            response.read()
            self.dropped += 1
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


def test_images_come_back_as_arrays_in_manifest_order(server: LocalServer) -> None:
    with Client(server.url) as client:
        created = client.create_session(seed=1, population_size=5, references={"builtin": 2})
        pixels = client.images(created["generation"])
        assert pixels.shape == (7, 64, 64, 3) and pixels.dtype == np.uint8
        assert client.image(created["generation"]["stimuli"][0]["url"], size=96).shape == (96, 96, 3)
        assert client.generation(created["session"]["id"])["number"] == 0


def test_a_lost_answer_is_retried_with_the_same_key_and_counted_once(server: LocalServer) -> None:
    transport = LoseFirstAnswer()
    with Client(server.url, transport=transport, backoff=0.01) as client:
        created = client.create_session(seed=2, population_size=4, references={"builtin": 0})
        session_id, manifest = created["session"]["id"], created["generation"]
        counts = {s["id"]: {"ch0": [float(i)]} for i, s in enumerate(manifest["stimuli"])}
        answer = client.post_responses(session_id, 0, counts)
        assert transport.dropped == 1
        assert answer["next"]["number"] == 1 and answer["accepted"]["measured"] == 4
        history = client.history(session_id)
        assert [s["counts"]["ch0"] for s in history["generations"][0]["stimuli"]] == [[0.0], [1.0], [2.0], [3.0]]
        assert client.session(session_id)["generation"] == 1


def test_problems_are_raised_with_their_details(server: LocalServer) -> None:
    with Client(server.url) as client:
        with pytest.raises(EvostimError) as raised:
            client.session("s_missing")
        assert raised.value.status == 404 and "s_missing" in raised.value.problem["detail"]
        assert isinstance(raised.value, SessionNotFound) and not raised.value.retryable


def sessions_tagged(client: Client, tag: str) -> list[str]:
    listed = client.sessions(limit=500)["items"]
    return [s["id"] for s in listed if s["config"].get("metadata", {}).get("tag") == tag]


def test_a_lost_answer_to_create_session_makes_exactly_one_session(server: LocalServer) -> None:
    transport = LoseFirstAnswer(path_end="/v1/sessions")
    with Client(server.url, transport=transport, backoff=0.01) as client:
        created = client.create_session(seed=7, population_size=4, metadata={"tag": "lost-create"})
        assert transport.dropped == 1 and len(transport.keys) == 2 and transport.keys[0] == transport.keys[1]
        assert sessions_tagged(client, "lost-create") == [created["session"]["id"]]


def test_a_lost_answer_to_fork_makes_exactly_one_fork(server: LocalServer) -> None:
    with Client(server.url) as client:
        parent = client.create_session(seed=8, population_size=4, references={"builtin": 0})
        counts = {s["id"]: {"ch0": [float(i)]} for i, s in enumerate(parent["generation"]["stimuli"])}
        client.post_responses(parent["session"]["id"], 0, counts)
    transport = LoseFirstAnswer(path_end="/fork")
    with Client(server.url, transport=transport, backoff=0.01) as client:
        fork = client.fork(parent["session"]["id"], best=2, metadata={"tag": "lost-fork"})
        assert transport.dropped == 1 and transport.keys[0] == transport.keys[1]
        assert sessions_tagged(client, "lost-fork") == [fork["session"]["id"]]


def test_baselines_are_posted_stored_and_subtracted(server: LocalServer) -> None:
    config: dict[str, Any] = {
        "seed": 9,
        "population_size": 4,
        "references": {"builtin": 0},
        "response": {"unit": "count", "window_ms": 200, "baseline_window_ms": 100},
        "objective": {"weights": {"ch0": 1}, "subtract_baseline": True},
    }
    with Client(server.url) as client:
        created = client.create_session(**config)
        session_id, stimuli = created["session"]["id"], created["generation"]["stimuli"]
        counts = {s["id"]: {"ch0": [10.0, 12.0]} for s in stimuli}
        baselines = {s["id"]: {"ch0": [float(i), float(i)]} for i, s in enumerate(stimuli)}
        answer = client.post_responses(session_id, 0, counts, baselines=baselines)
        stored = client.history(session_id)["generations"][0]["stimuli"]
    assert [s["baseline"] for s in stored] == [baselines[s["id"]] for s in stored]
    # 11 spikes in 200 ms minus i spikes in 100 ms: 55 - 10 i spikes/s; the best is the stimulus with no baseline.
    assert [s["score"] for s in stored] == [55.0, 45.0, 35.0, 25.0]
    assert answer["accepted"]["evolved_max"] == 55.0


def test_two_concurrent_posts_to_one_generation_exactly_one_wins(server: LocalServer) -> None:
    with Client(server.url) as client:
        created = client.create_session(seed=3, population_size=6, references={"builtin": 0})
    session_id, manifest = created["session"]["id"], created["generation"]
    bodies = [{s["id"]: {"ch0": [float(rig)]} for s in manifest["stimuli"]} for rig in (1, 2)]
    outcomes: list[object] = [None, None]

    def post(rig: int) -> None:
        with Client(server.url, retries=0) as client:
            try:
                outcomes[rig] = client.post_responses(session_id, 0, bodies[rig])
            except EvostimError as error:
                outcomes[rig] = error.status

    threads = [threading.Thread(target=post, args=(rig,)) for rig in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["dict", "int"] and 409 in outcomes
    winner = next(rig for rig, o in enumerate(outcomes) if isinstance(o, dict))
    with Client(server.url) as client:
        stored = client.history(session_id)["generations"][0]["stimuli"]
    assert all(s["counts"]["ch0"] == [float(winner + 1)] for s in stored)


class AsyncLoseFirstAnswer(httpx.AsyncHTTPTransport):
    """The async twin of LoseFirstAnswer."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/responses") and not self.dropped:
            await response.aread()
            self.dropped += 1
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


def test_the_async_client_runs_the_loop_with_concurrent_downloads_and_safe_retries(server: LocalServer) -> None:
    async def scenario() -> tuple[dict[str, Any], np.ndarray, np.ndarray, dict[str, Any]]:
        transport = AsyncLoseFirstAnswer()
        async with AsyncClient(server.url, transport=transport, backoff=0.01) as client:
            created = await client.create_session(population_size=5, seed=3, references={"builtin": 2})
            manifest = created["generation"]
            images = await client.images(manifest)
            counts = {s["id"]: {"ch0": [float(i), float(i + 1)]} for i, s in enumerate(manifest["stimuli"])}
            answer = await client.post_responses(created["session"]["id"], 0, counts)
            assert transport.dropped == 1  # the first answer was lost and the post retried with its key
            stopped = await client.stop(created["session"]["id"])
            assert stopped["status"] == "stopped"
            with pytest.raises(EvostimError) as refused:
                await client.post_responses(created["session"]["id"], 1, counts)
            assert refused.value.status == 409 and "resume" in refused.value.problem["detail"]
            await client.resume(created["session"]["id"])
            history = await client.history(created["session"]["id"])
            with Client(server.url) as sync:
                same = sync.images(manifest)
            return answer, images, same, history

    answer, images, same, history = asyncio.run(scenario())
    assert answer["accepted"]["measured"] == 7 and answer["next"]["number"] == 1
    assert images.shape == (7, 64, 64, 3) and np.array_equal(images, same)
    scores = [s["score"] for s in history["generations"][0]["stimuli"] if s["score"] is not None]
    assert len(scores) == 7  # counted once despite the retry


def test_the_async_client_lists_fetches_bytes_and_answers_blocks_with_baselines(server: LocalServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.url) as client:
            ids = []
            for seed in (11, 12):
                created = await client.create_session(seed=seed, population_size=3, references={"builtin": 1})
                ids.append(created["session"]["id"])
            listed = await client.sessions(limit=500)
            assert set(ids) <= {s["id"] for s in listed["items"]}
            block = await client.block(ids)
            first = block["stimuli"][0]
            assert (await client.image_bytes(first["url"])).startswith(b"\x89PNG")
            counts = {(s["session"], s["id"]): {"ch0": [4.0, 6.0]} for s in block["stimuli"]}
            baselines = {key: {"ch0": [1.0, 1.0]} for key in counts}
            answer = await client.post_block(block, counts, baselines=baselines)
            assert set(answer["accepted"]) == set(ids) and answer["next"] is not None
            with pytest.raises(GenerationClosed):
                await client.post_block(block, counts)
            for session_id in ids:
                stored = (await client.history(session_id))["generations"][0]["stimuli"]
                assert all(s["baseline"] == {"ch0": [1.0, 1.0]} for s in stored)
            await client.stop(ids[0])
            with pytest.raises(SessionNotRunning):
                await client.post_responses(ids[0], 1, {answer["next"]["stimuli"][0]["id"]: {"ch0": [1.0]}})

    asyncio.run(scenario())


def test_a_notebook_gets_arrays_a_long_frame_and_the_best_images_exactly_as_posted(server: LocalServer) -> None:
    with Client(server.url) as client:
        created = client.create_session(seed=5, channels=["a", "b"], population_size=4, references={"builtin": 1})
        session_id, manifest = created["session"]["id"], created["generation"]
        posted = {}
        for number in range(2):
            stimuli = manifest["stimuli"][:-1] if number == 1 else manifest["stimuli"]  # generation 1: one aborted
            posted[number] = {
                s["id"]: {"a": [float(i), float(i + 1)], "b": [10.0 + i, 20.0 + i]} for i, s in enumerate(stimuli)
            }
            baselines = {s: {"a": [0.5, 0.5], "b": [1.0, 1.0]} for s in posted[number]}
            manifest = client.post_responses(session_id, number, posted[number], baselines=baselines)["next"]
        arrays = client.arrays(session_id)
        frame = client.history_frame(session_id)
        best = client.best_images(session_id)
        history = client.history(session_id, codes=True)

    # the codes are the history's, bit for bit, in the export's stimulus order
    codes = {s["id"]: s["code"] for g in history["generations"] for s in g["stimuli"]}
    np.testing.assert_array_equal(arrays["code"], np.array([codes[s] for s in arrays["stimulus_id"]]))
    # one row per posted value: 5 + 4 stimuli x 2 channels x 2 repetitions, nothing for the aborted or open ones
    assert list(frame.columns) == ["generation", "stimulus", "kind", "index", "channel", "repetition", "count",
                                   "baseline", "score"]  # fmt: skip
    assert len(frame) == (5 + 4) * 2 * 2
    for row in frame.to_dict("records"):
        assert row["count"] == posted[row["generation"]][row["stimulus"]][row["channel"]][row["repetition"]]
        assert row["baseline"] == (0.5 if row["channel"] == "a" else 1.0)
    # the best image of each generation is its highest-scoring evolved stimulus's
    assert best.generations == [0, 1] and best.images.shape == (2, 64, 64, 3)
    evolved = frame[frame.kind == "evolved"]
    for generation, stimulus, score in zip(best.generations, best.stimuli, best.scores, strict=True):
        scores = evolved[evolved.generation == generation].groupby("stimulus").score.first()
        assert scores.idxmax() == stimulus and scores.max() == score
    assert best.labels()[0] == f"gen 0: {best.scores[0]:.1f}"
