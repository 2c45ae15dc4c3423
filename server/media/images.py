"""Image encoding and the render cache: images are pure functions of (generator, code), so render once."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import torch
import torchvision
from numpy.typing import NDArray
from PIL import Image

__all__ = ["MEDIA_TYPES", "ImageCache", "ImageFormat", "code_key", "encode_batch", "encode_image"]

ImageFormat = Literal["png", "jpg", "bmp"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpg": "image/jpeg", "bmp": "image/bmp"}
_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}


def code_key(generator: str, code: NDArray[np.float64]) -> str:
    """A stable key of a rendered code: generator name and a hash of the float64 bytes."""
    digest = hashlib.blake2b(np.ascontiguousarray(code, dtype="<f8").tobytes(), digest_size=16).hexdigest()
    return f"{generator}:{digest}"


def encode_image(pixels: NDArray[np.uint8], fmt: ImageFormat, size: int | None = None) -> bytes:
    """Encode one (H, W, 3) uint8 image; ``size`` resizes to size x size (bicubic)."""
    image = Image.fromarray(pixels, mode="RGB")
    if size is not None and size != image.width:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt == "jpg" else {"compress_level": 1} if fmt == "png" else {}
    image.save(buffer, format=_PIL_FORMATS[fmt], **options)
    return buffer.getvalue()


_ENCODERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="encode")  # PIL releases the GIL while encoding


def encode_batch(pixels: torch.Tensor, fmt: ImageFormat, size: int | None = None) -> list[bytes]:
    """Encode uint8 images (B, 3, H, W) on any device: JPEG on the GPU (nvJPEG) when they are on CUDA,
    otherwise PIL on the CPU in parallel threads."""
    if pixels.is_cuda and fmt == "jpg" and (size is None or size == pixels.shape[-1]):
        encoded = torchvision.io.encode_jpeg(list(pixels), quality=95)
        return [bytes(data.cpu().numpy()) for data in encoded]
    images = pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return list(_ENCODERS.map(lambda image: encode_image(image, fmt, size), images))


class ImageCache:
    """A thread-safe LRU of rendered pixels and encoded bytes, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, ...], NDArray[np.uint8] | bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the values held now (at most ``max_bytes``, or one value above it)."""
        with self._lock:
            return self._bytes

    def get(self, key: tuple[str, ...]) -> NDArray[np.uint8] | bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, ...], value: NDArray[np.uint8] | bytes) -> None:
        size = value.nbytes if isinstance(value, np.ndarray) else len(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes if isinstance(old, np.ndarray) else len(old)
            self._items[key] = value
            self._bytes += size
            while self._bytes > self._max_bytes and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes if isinstance(evicted, np.ndarray) else len(evicted)
