"""The renderer decodes a generation ahead of its fetches in the background: ``prepare`` returns at once, and a
fetch of an image whose batch is still decoding waits for that batch instead of decoding the image alone."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from evostim.generators import ImageGenerator
from evostim.server.media.images import encode_image
from evostim.server.media.renderer import Renderer


class _Gated:
    """The real dcgan-faces generator whose decodes are held until ``gate`` opens; counts the batches."""

    def __init__(self, generator: ImageGenerator) -> None:
        self._generator = generator
        self.gate = threading.Event()
        self.batches: list[int] = []

    def check_codes(self, codes: Any) -> None:
        self._generator.check_codes(codes)

    def decode_pixels(self, codes: Any) -> torch.Tensor:
        assert self.gate.wait(10), "the test never opened the gate"
        self.batches.append(len(codes))
        return self._generator.decode_pixels(codes)


def test_a_fetch_waits_for_the_batch_decoding_ahead_and_decodes_nothing_itself(dcgan: ImageGenerator) -> None:
    gated = _Gated(dcgan)
    renderer = Renderer(lambda name: gated, cache_bytes=2**30)  # type: ignore[arg-type,return-value]
    codes = list(np.random.default_rng(0).standard_normal((4, 100)))
    batch = renderer.prepare("dcgan-faces", codes)
    assert batch is not None and not batch.done()  # prepare returned while its decode is held
    assert renderer.prepare("dcgan-faces", codes[1:3]) is None  # being decoded: not queued again
    with ThreadPoolExecutor(1) as fetcher:
        fetched = fetcher.submit(renderer.image, "dcgan-faces", codes[2], "png", None)
        time.sleep(0.3)
        gated.gate.set()
        png = fetched.result(timeout=10)
    assert gated.batches == [4]  # one batch of four; the fetch decoded nothing of its own
    assert not renderer._pending  # every key's batch is done
    assert png == encode_image(dcgan.decode_uint8(np.stack(codes))[2], "png")  # the image of the batch
    assert renderer.prepare("dcgan-faces", codes) is None  # all cached: nothing to decode


def test_a_failed_decode_ahead_leaves_the_fetch_to_decode_and_answer(
    dcgan: ImageGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    failures = iter([RuntimeError("out of memory")])

    class _FailsOnce:
        def check_codes(self, codes: Any) -> None:
            dcgan.check_codes(codes)

        def decode_pixels(self, codes: Any) -> torch.Tensor:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return dcgan.decode_pixels(codes)

    renderer = Renderer(lambda name: _FailsOnce(), cache_bytes=2**30)  # type: ignore[arg-type,return-value]
    codes = list(np.random.default_rng(1).standard_normal((3, 100)))
    batch = renderer.prepare("dcgan-faces", codes)
    assert batch is not None
    with caplog.at_level(logging.ERROR):
        batch.result(timeout=10)  # the failure is logged, not raised into the fetches
    assert "decoding a generation ahead of its fetches failed" in caplog.text
    png = renderer.image("dcgan-faces", codes[0], "png", None)
    assert png == encode_image(dcgan.decode_uint8(np.stack(codes[:1]))[0], "png")


def test_fetches_waiting_for_their_decode_hold_no_request_thread(api: TestClient, dcgan: ImageGenerator) -> None:
    """More fetches wait for a held decode than the server has request threads, and a read that needs a thread
    still answers: a fetch waits on the event loop, not in a thread (held threads delayed 50 sessions' posts)."""
    gated = _Gated(dcgan)
    api.app.state.service._renderer._load = lambda name: gated  # type: ignore[attr-defined]
    threads = api.portal.call(anyio.to_thread.current_default_thread_limiter)  # type: ignore[union-attr]
    threads.total_tokens = 3
    created = api.post("/v1/sessions", json={"seed": 1, "population_size": 8}).json()
    session_id, urls = created["session"]["id"], [s["url"] for s in created["generation"]["stimuli"]]
    with ThreadPoolExecutor(len(urls) + 1) as fetcher:
        fetches = [fetcher.submit(api.get, url) for url in urls]  # more than the 3 threads
        time.sleep(0.5)
        assert not any(fetch.done() for fetch in fetches)  # all waiting for the held decode
        read = fetcher.submit(api.get, f"/v1/sessions/{session_id}")
        assert read.result(timeout=5).status_code == 200  # a thread was free for it
        gated.gate.set()
        images = [fetch.result(timeout=10) for fetch in fetches]
    assert all(image.status_code == 200 and image.content.startswith(b"\x89PNG") for image in images)
    assert gated.batches == [len(urls)]  # the fetches decoded nothing of their own
