"""The renderer: latent codes -> encoded images, batched, cached (images are pure functions of generator and code).

``render`` turns a batch of codes into encoded images with one batched decode on the generator's device
(``ImageGenerator.decode_pixels``) and one batched encode (``images.encode_batch``: nvJPEG on CUDA for JPEG, PIL in
parallel threads otherwise): the path ``benchmarks/render.py`` measures. A post only ``prepare``s the next
generation (the batched decode; pixels cached), and each fetch encodes its own format and size from the cached
pixels: measured on a 2-core CPU, encoding a generation's PNGs ahead made every post 30 ms slower and no fetch
faster (a fetch costs its HTTP round trip, not its encoding).

``prepare`` decodes in a background thread, one batch at a time, and returns at once: a post answers as soon as
its generation is stored, not after the other sessions' decodes queued before its own (50 sessions posting at once
on 2 cores: up to 1.2 s). A fetch of an image whose batch is queued or running waits for that batch rather than
decoding the image alone, and waits on the event loop (``image_or_batch``), not in one of the request threads a
post needs; images are pure functions of their codes, so a crash loses nothing but the cache.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from numpy.typing import NDArray

from evostim.generators import ImageGenerator
from evostim.server.media.images import ImageCache, ImageFormat, code_key, encode_batch
from evostim.server.ops.observability import DECODE_SECONDS

__all__ = ["Renderer"]

FloatArray = NDArray[np.float64]


class Renderer:
    """Renders and caches images for every generator; ``load(name)`` gives the loaded generator."""

    def __init__(self, load: Callable[[str], ImageGenerator], *, cache_bytes: int) -> None:
        self._load = load
        self._cache = ImageCache(cache_bytes)
        # one thread: batches decode one after another, as the generator's device lock would order them anyway
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-ahead")
        self._pending: dict[str, Future[None]] = {}  # code key -> the background batch decoding it
        self._pending_lock = threading.Lock()

    def render(
        self, generator: str, codes: Sequence[FloatArray], fmt: ImageFormat, size: int | None = None
    ) -> list[bytes]:
        """The encoded images of ``codes`` (each (d,)); the ones not cached are decoded and encoded in one batch."""
        keys = [code_key(generator, code) for code in codes]
        encoded = [self._cached_bytes((key, fmt, str(size))) for key in keys]
        todo = [i for i, data in enumerate(encoded) if data is None]
        fresh = self._encode(generator, [codes[i] for i in todo], [keys[i] for i in todo], fmt, size) if todo else []
        return _filled(encoded, dict(zip(todo, fresh, strict=True)))

    @property
    def cache_bytes(self) -> int:
        """Bytes the image cache holds now."""
        return self._cache.nbytes

    def _cached_bytes(self, key: tuple[str, ...]) -> bytes | None:
        data = self._cache.get(key)
        return data if isinstance(data, bytes) else None

    def prepare(self, generator: str, codes: Sequence[FloatArray]) -> Future[None] | None:
        """Decode the codes not yet cached, in one batch, ahead of their fetches, in the background; the batch's
        future (None: all cached). The generator loads and the codes are checked here (BadLatentCodes: codes
        that cannot decode), so that what would fail the decode refuses the caller's request."""
        keys = [code_key(generator, code) for code in codes]
        todo = {key: code for key, code in zip(keys, codes, strict=True) if not self._has_pixels(key)}
        if not todo:
            return None
        self._load(generator).check_codes(np.stack(list(todo.values())))
        with self._pending_lock:  # held until every key names the batch, so the batch's end finds them all
            todo = {key: code for key, code in todo.items() if key not in self._pending}  # else decoding already
            if not todo:
                return None
            batch = self._ahead.submit(self._decode_ahead, generator, list(todo.values()), list(todo))
            self._pending.update(dict.fromkeys(todo, batch))
        return batch

    def _has_pixels(self, key: str) -> bool:
        return isinstance(self._cache.get((key,)), np.ndarray)

    def close(self) -> None:
        """Drop the batches not started (a server stopping); the running one ends on its own."""
        self._ahead.shutdown(wait=False, cancel_futures=True)

    def _decode_ahead(self, generator: str, codes: Sequence[FloatArray], keys: Sequence[str]) -> None:
        try:
            self._decoded(generator, codes, keys)
        except Exception:  # a fetch decodes its image itself and answers with the error, if it recurs
            logging.getLogger(__name__).exception("decoding a generation ahead of its fetches failed")
        finally:
            with self._pending_lock:
                for key in keys:
                    self._pending.pop(key, None)

    def _wait_for_ahead(self, keys: Sequence[str]) -> None:
        """Wait for the background batches decoding any of ``keys`` (their pixels are then cached)."""
        with self._pending_lock:
            batches = {id(b): b for b in (self._pending.get(key) for key in keys) if b is not None}
        for batch in batches.values():
            with contextlib.suppress(Exception):
                batch.result()

    def pixels(self, generator: str, codes: Sequence[FloatArray]) -> NDArray[np.uint8]:
        """The images of ``codes`` as (B, H, W, 3) uint8 at the generator's size (cached pixels, else one decode)."""
        keys = [code_key(generator, code) for code in codes]
        return self._pixels(generator, codes, keys).permute(0, 2, 3, 1).cpu().numpy()

    def image(self, generator: str, code: FloatArray, fmt: ImageFormat, size: int | None) -> bytes:
        """One encoded image (a fetch): from the cache, or rendered as a batch of one."""
        return self.render(generator, [code], fmt, size)[0]

    def image_or_batch(
        self, generator: str, code: FloatArray, fmt: ImageFormat, size: int | None
    ) -> bytes | Future[None]:
        """``image``, or, while a background batch decodes this code, that batch: a fetch awaits it without holding
        a request thread (50 sessions' rigs fetching as their posts answer held every thread), then asks again."""
        key = code_key(generator, code)
        encoded = self._cached_bytes((key, fmt, str(size)))
        if encoded is not None:
            return encoded
        with self._pending_lock:
            batch = self._pending.get(key)
        return self.image(generator, code, fmt, size) if batch is None else batch

    def _encode(
        self, generator: str, codes: Sequence[FloatArray], keys: Sequence[str], fmt: ImageFormat, size: int | None
    ) -> list[bytes]:
        encoded = encode_batch(self._pixels(generator, codes, keys), fmt, size)
        for key, data in zip(keys, encoded, strict=True):
            self._cache.put((key, fmt, str(size)), data)
        return encoded

    def _pixels(self, generator: str, codes: Sequence[FloatArray], keys: Sequence[str]) -> torch.Tensor:
        """uint8 images (B, 3, H, W): cached pixels (those decoding in the background waited for), or one batched
        decode left on the generator's device."""
        self._wait_for_ahead(keys)
        return self._decoded(generator, codes, keys)

    def _decoded(self, generator: str, codes: Sequence[FloatArray], keys: Sequence[str]) -> torch.Tensor:
        cached = [self._cache.get((key,)) for key in keys]
        if all(isinstance(pixels, np.ndarray) for pixels in cached):
            return torch.from_numpy(np.stack(cached)).permute(0, 3, 1, 2)  # type: ignore[arg-type]
        with DECODE_SECONDS.time():
            decoded = self._load(generator).decode_pixels(np.stack(codes))
        host = decoded.permute(0, 2, 3, 1).contiguous().cpu().numpy()  # (B, H, W, 3), kept for other formats
        for key, pixels in zip(keys, host, strict=True):
            # a copy: a view would keep the whole batch alive while the cache counts one image
            self._cache.put((key,), pixels.copy())
        return decoded


def _filled(encoded: list[bytes | None], fresh: dict[int, bytes]) -> list[bytes]:
    """The cached images with the freshly rendered ones in their places."""
    return [fresh[i] if data is None else data for i, data in enumerate(encoded)]
