"""What a request may ask of this server beyond what its schema says, and the rule that every number the server
derives from a request is finite.

``Limits`` holds the operator's bounds (``EVOSTIM_MAX_*`` settings: population, channels, repetitions, metadata
size); the schema's own bounds are the most any server takes. ``require_finite`` is called on what the server
computed (scores, means, optimizer summaries, next codes, the answer itself) *before* anything is stored: a number
that overflowed is a 422 that names it, never a stored generation whose answer cannot be written as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evostim.protocol import ResponsesSubmit, SessionCreate
from evostim.server.config import Settings
from evostim.server.sessions.errors import InvalidRequest, InvalidResponses, InvalidSessionConfig

__all__ = ["Limits", "first_non_finite", "is_session_id", "json_bytes", "require_finite"]

# What a session id can look like (the store's column): other text (a NUL character, say) never reaches the database.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def is_session_id(text: str) -> bool:
    """Whether ``text`` can be a session id; other text names no session and is not looked up."""
    return _SESSION_ID.fullmatch(text) is not None


def json_bytes(value: Any) -> int:
    """The size of ``value`` as compact UTF-8 JSON, as it is stored."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The operator's bounds on what one request may ask for (each also named in the refusal's detail)."""

    max_population: int
    max_channels: int
    max_repetitions: int
    max_metadata_bytes: int
    max_image_size: int = 2048
    max_archive_bytes: int = 2**63

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_population=settings.max_population,
            max_channels=settings.max_channels,
            max_repetitions=settings.max_repetitions,
            max_metadata_bytes=settings.max_metadata_bytes,
            max_image_size=settings.max_image_size,
            max_archive_bytes=settings.max_archive_mb * 2**20,
        )

    def check_image_size(self, size: int | None) -> None:
        """Refuse an image side above this server's limit (None: the generator's own size, always served)."""
        if size is not None and size > self.max_image_size:
            raise InvalidRequest(
                f"size={size} is above this server's limit of {self.max_image_size} pixels a side "
                "(EVOSTIM_MAX_IMAGE_SIZE); resize larger on the rig",
                field="size",
            )

    def check_archive(self, images: int, size: int) -> None:
        """Refuse an images.zip of ``images`` images of ``size`` x ``size`` pixels above this server's limit."""
        pixels = images * size * size * 3
        if pixels > self.max_archive_bytes:
            most = self.max_archive_bytes // (size * size * 3)
            raise InvalidRequest(
                f"{images} images of {size} x {size} pixels hold {pixels / 2**20:.0f} MB of pixels, above this "
                f"server's limit of {self.max_archive_bytes / 2**20:.0f} MB an images.zip (EVOSTIM_MAX_ARCHIVE_MB): "
                f"ask for a smaller size (at this one, at most {most} images fit) or fetch the images one by one",
                field="size",
            )

    def check_session(self, request: SessionCreate) -> None:
        """Refuse a new session (or fork) beyond this server's bounds."""
        if request.population_size > self.max_population:
            raise InvalidSessionConfig(
                f"population_size {request.population_size} is above this server's limit of {self.max_population} "
                "(EVOSTIM_MAX_POPULATION)",
                field="population_size",
            )
        if len(request.channels) > self.max_channels:
            raise InvalidSessionConfig(
                f"{len(request.channels)} channels are more than this server's limit of {self.max_channels} "
                "(EVOSTIM_MAX_CHANNELS)",
                field="channels",
            )
        self.check_metadata(request.metadata)

    def check_metadata(self, metadata: Mapping[str, Any]) -> None:
        size = json_bytes(metadata)
        if size > self.max_metadata_bytes:
            raise InvalidSessionConfig(
                f"metadata is {size} bytes as JSON, above this server's limit of {self.max_metadata_bytes} "
                "(EVOSTIM_MAX_METADATA_BYTES); keep notes short and put large files beside the data",
                field="metadata",
            )

    def check_responses(self, body: ResponsesSubmit) -> None:
        """Refuse a responses body with no repetitions, or more than this server takes, on a channel."""
        for i, response in enumerate(body.responses):
            for part, values in (("counts", response.counts), ("baseline", response.baseline or {})):
                for channel, repetitions in values.items():
                    if not 1 <= len(repetitions) <= self.max_repetitions:
                        where = f"responses[{i}].{part}.{channel}"
                        raise InvalidResponses(
                            f"{where} (stimulus {response.stimulus}): channel {channel!r} needs 1 to "
                            f"{self.max_repetitions} repetitions, this server's limit (EVOSTIM_MAX_REPETITIONS), "
                            f"got {len(repetitions)}",
                            stimulus=response.stimulus,
                            field=where,
                        )


def first_non_finite(value: Any, where: str) -> str | None:
    """The path of the first NaN or infinite number in ``value`` (nested mappings, sequences, arrays), or None."""
    if isinstance(value, float | np.floating):
        return None if math.isfinite(value) else where
    if isinstance(value, np.ndarray):
        return _non_finite_element(value, where)
    return next((path for path in (first_non_finite(item, sub) for sub, item in _children(value, where)) if path), None)


def _non_finite_element(array: np.ndarray[Any, Any], where: str) -> str | None:
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    index = np.argwhere(~np.isfinite(array))[0]
    return f"{where}[{','.join(str(int(i)) for i in index)}]"


def _children(value: Any, where: str) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [(f"{where}.{key}", item) for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    return []


def require_finite(value: Any, where: str, error: type[InvalidRequest], hint: str) -> None:
    """Refuse the request (``error``, nothing stored) when a number the server derived from it is not finite."""
    path = first_non_finite(value, where)
    if path is not None:
        raise error(f"{path} is not a finite number: {hint}", field=path)
