"""The renderer decodes a generation ahead of its fetches in the background: ``prepare`` returns at once, and a
fetch of an image whose batch is still decoding waits for that batch instead of decoding the image alone."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch

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
