"""The Python client against a real server: arrays out, problems raised, lost answers retried safely."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from evostim.clients.client import Client, EvostimError
from evostim.clients.local_server import LocalServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(Path(tmp_path_factory.mktemp("client-data"))) as running:
        yield running


class LoseFirstAnswer(httpx.HTTPTransport):
    """Delivers every request, but drops the first answer to a POST of responses (a network cut)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/responses") and not self.dropped:
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
    from evostim.clients.client import AsyncClient

    async def scenario() -> tuple[dict, np.ndarray, np.ndarray]:
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
            return answer, images, same, history  # type: ignore[return-value]

    answer, images, same, history = asyncio.run(scenario())  # type: ignore[misc]
    assert answer["accepted"]["measured"] == 7 and answer["next"]["number"] == 1
    assert images.shape == (7, 64, 64, 3) and np.array_equal(images, same)
    scores = [s["score"] for s in history["generations"][0]["stimuli"] if s["score"] is not None]
    assert len(scores) == 7  # counted once despite the retry
