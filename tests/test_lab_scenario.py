"""The full lab scenario against a real server process: two evolutions ("threads") run in one block with their
images interleaved, 3 channels, 4 repetitions, aborted trials, a lost answer retried mid-post, and a server killed
and restarted mid-session. Nothing is lost or counted twice, and both sessions carry on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from clients.client import Client
from clients.local_server import LocalServer

CHANNELS = ["ch1", "ch2", "ch3"]
REPETITIONS = 4


class LoseOneAnswer(httpx.HTTPTransport):
    """Drops the answer to the n-th POST of responses after the server has processed it."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth, self.posts, self.dropped = nth, 0, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/responses"):
            self.posts += 1
            if self.posts == self.nth:
                response.read()
                self.dropped += 1
                raise httpx.ReadError("the rig's network dropped the answer", request=request)
        return response


def run_block(
    client: Client, threads: dict[str, dict[str, Any]], block: int, rng: np.random.Generator
) -> dict[str, dict[str, Any]]:
    """Show both threads' images interleaved, count 3 channels x 4 repetitions, abort 2 trials, post per thread."""
    shown = [(thread, stimulus) for thread, manifest in threads.items() for stimulus in manifest["stimuli"]]
    images = {}
    for thread, manifest in threads.items():
        for stimulus, image in zip(manifest["stimuli"], client.images(manifest), strict=True):
            images[(thread, stimulus["id"])] = image
    order = rng.permutation(len(shown))
    aborted = set(order[:2].tolist())  # the monkey broke fixation twice
    counts: dict[str, dict[str, dict[str, list[float]]]] = {thread: {} for thread in threads}
    for position in order:
        if position in aborted:
            continue
        thread, stimulus = shown[position]
        image = images[(thread, stimulus["id"])].astype(float) / 255
        rates = [5 + 20 * image[..., k].mean() for k in range(3)]  # each channel prefers a colour
        counts[thread][stimulus["id"]] = {ch: rng.poisson(r, REPETITIONS).astype(float).tolist()
                                          for ch, r in zip(CHANNELS, rates, strict=True)}  # fmt: skip
    answers = {}
    for thread, manifest in threads.items():
        key = f"block-{block}-{thread}"
        answers[thread] = client.post_responses(manifest["session_id"], manifest["number"], counts[thread],
                                                idempotency_key=key)  # fmt: skip
    return {thread: answer["next"] for thread, answer in answers.items()}


def test_two_interleaved_threads_survive_a_lost_answer_and_a_server_crash(tmp_path: Path) -> None:
    data, rng = tmp_path / "data", np.random.default_rng(0)
    common = {"population_size": 8, "channels": CHANNELS, "references": {"builtin": 2}, "seed": 1}
    server = LocalServer(data).start()
    try:
        transport = LoseOneAnswer(nth=5)  # block 2, thread A's post
        with Client(server.url, transport=transport, backoff=0.01) as client:
            a = client.create_session(**common, optimizer={"name": "cholesky-cma"}, objective={"weights": {"ch1": 1}})
            b = client.create_session(**common, optimizer={"name": "ga"},
                                      objective={"weights": {"ch2": 0.5, "ch3": 0.5}})  # fmt: skip
            ids = {"A": a["session"]["id"], "B": b["session"]["id"]}
            threads = {"A": a["generation"], "B": b["generation"]}
            for block in range(4):
                threads = run_block(client, threads, block, rng)
            assert transport.dropped == 1
            before = {t: client.history(i) for t, i in ids.items()}
        server.kill()  # mid-session, between blocks

        server = LocalServer(data).start()
        with Client(server.url) as client:
            for t, i in ids.items():
                assert client.history(i)["generations"] == before[t]["generations"]
                threads[t] = client.generation(i)  # the rig asks where it was
            for block in range(4, 6):
                threads = run_block(client, threads, block, rng)
            after = {t: client.history(i) for t, i in ids.items()}
    finally:
        server.stop()

    aborted_total = 0
    for thread, history in after.items():
        closed = [g for g in history["generations"] if g["status"] == "closed"]
        assert [g["number"] for g in closed] == list(range(6))
        for generation in closed:
            measured = [s for s in generation["stimuli"] if s["counts"] is not None]
            aborted_total += len(generation["stimuli"]) - len(measured)
            for stimulus in measured:
                assert set(stimulus["counts"]) == set(CHANNELS)
                assert all(len(values) == REPETITIONS for values in stimulus["counts"].values())
                weights = {"A": {"ch1": 1.0}, "B": {"ch2": 0.5, "ch3": 0.5}}[thread]
                expected = sum(w * np.mean(stimulus["counts"][ch]) for ch, w in weights.items())
                assert np.isclose(stimulus["score"], expected)
    assert aborted_total == 2 * 6  # two aborted trials per block, each recorded as missing exactly once
