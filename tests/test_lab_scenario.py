"""The full lab scenario against a real server process: two evolutions ("threads") run in one block with their
images interleaved, 3 channels, 4 repetitions, aborted trials, a lost answer retried mid-post, and a server killed
and restarted mid-session. Nothing is lost or counted twice, and both sessions carry on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer

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


def run_block(client: Client, session_ids: list[str], block: int, rng: np.random.Generator) -> None:
    """Show the threads' block in its interleaved order, count 3 channels x 4 repetitions, abort 2 trials, post."""
    manifest = client.block(session_ids)
    images = {}
    for stimulus in manifest["stimuli"]:
        images[(stimulus["session"], stimulus["id"])] = client.image(stimulus["url"])
    aborted = set(rng.choice(len(manifest["order"]), size=2, replace=False).tolist())  # broke fixation twice
    counts = {}
    for position, shown in enumerate(manifest["order"]):
        if position in aborted:
            continue
        image = images[(shown["session"], shown["id"])].astype(float) / 255
        rates = [5 + 20 * image[..., k].mean() for k in range(3)]  # each channel prefers a colour
        counts[(shown["session"], shown["id"])] = {
            ch: rng.poisson(r, REPETITIONS).astype(float).tolist() for ch, r in zip(CHANNELS, rates, strict=True)
        }
    client.post_block(manifest, counts, idempotency_key=f"block-{block}")


def test_two_interleaved_threads_survive_a_lost_answer_and_a_server_crash(tmp_path: Path) -> None:
    data, rng = tmp_path / "data", np.random.default_rng(0)
    common: dict[str, Any] = {"population_size": 8, "channels": CHANNELS, "references": {"builtin": 2}, "seed": 1}
    server = LocalServer(data).start()
    try:
        transport = LoseOneAnswer(nth=3)  # the third block's answer is lost
        with Client(server.url, transport=transport, backoff=0.01) as client:
            a = client.create_session(**common, optimizer={"name": "cholesky-cma"}, objective={"weights": {"ch1": 1}})
            b = client.create_session(**common, optimizer={"name": "ga"},
                                      objective={"weights": {"ch2": 0.5, "ch3": 0.5}})  # fmt: skip
            ids = {"A": a["session"]["id"], "B": b["session"]["id"]}
            for block in range(4):
                run_block(client, list(ids.values()), block, rng)
            assert transport.dropped == 1
            before = {t: client.history(i) for t, i in ids.items()}
        server.kill()  # mid-session, between blocks

        server = LocalServer(data).start()
        with Client(server.url) as client:
            for t, i in ids.items():
                assert client.history(i)["generations"] == before[t]["generations"]
            for block in range(4, 6):  # the rig asks for the current block and goes on
                run_block(client, list(ids.values()), block, rng)
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
