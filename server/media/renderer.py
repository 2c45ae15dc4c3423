"""The renderer: latent codes -> encoded images, batched, cached (images are pure functions of generator and code).

``render`` turns a batch of codes into encoded images with one batched decode on the generator's device
(``ImageGenerator.decode_pixels``) and one batched encode (``images.encode_batch``: nvJPEG on CUDA for JPEG, PIL in
parallel threads otherwise): the path ``benchmarks/render.py`` measures. A post only ``prepare``s the next
generation (the batched decode; pixels cached), and each fetch encodes its own format and size from the cached
pixels: measured on a 2-core CPU, encoding a generation's PNGs ahead made every post 30 ms slower and no fetch
faster (a fetch costs its HTTP round trip, not its encoding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

    def prepare(self, generator: str, codes: Sequence[FloatArray]) -> None:
        """Decode the codes not yet cached, in one batch, ahead of their fetches."""
        keys = [code_key(generator, code) for code in codes]
        todo = [i for i, key in enumerate(keys) if not isinstance(self._cache.get((key,)), np.ndarray)]
        if todo:
            self._pixels(generator, [codes[i] for i in todo], [keys[i] for i in todo])

    def pixels(self, generator: str, codes: Sequence[FloatArray]) -> NDArray[np.uint8]:
        """The images of ``codes`` as (B, H, W, 3) uint8 at the generator's size (cached pixels, else one decode)."""
        keys = [code_key(generator, code) for code in codes]
        return self._pixels(generator, codes, keys).permute(0, 2, 3, 1).cpu().numpy()

    def image(self, generator: str, code: FloatArray, fmt: ImageFormat, size: int | None) -> bytes:
        """One encoded image (a fetch): from the cache, or rendered as a batch of one."""
        return self.render(generator, [code], fmt, size)[0]

    def _encode(
        self, generator: str, codes: Sequence[FloatArray], keys: Sequence[str], fmt: ImageFormat, size: int | None
    ) -> list[bytes]:
        encoded = encode_batch(self._pixels(generator, codes, keys), fmt, size)
        for key, data in zip(keys, encoded, strict=True):
            self._cache.put((key, fmt, str(size)), data)
        return encoded

    def _pixels(self, generator: str, codes: Sequence[FloatArray], keys: Sequence[str]) -> torch.Tensor:
        """uint8 images (B, 3, H, W): cached pixels, or one batched decode left on the generator's device."""
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
