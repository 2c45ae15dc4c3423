"""What the store takes and gives: frozen records of plain values, never live ORM objects.

A session's configuration and an optimizer's state are opaque here (a JSON object, a blob): the store knows nothing
of what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ANY_OWNER",
    "GenerationRecord",
    "IdempotencyRecord",
    "PostInputs",
    "ReferenceRecord",
    "ResponseRecord",
    "SessionRecord",
    "StimulusRecord",
]

# The owner a lab-wide viewer (a read-only token) reads as: every session, whoever made it. Owner ids are hex
# digests or "anonymous", so no real owner is ever "*".
ANY_OWNER = "*"


@dataclass(frozen=True)
class SessionRecord:
    id: str
    owner: str
    created_at: datetime
    config: dict[str, Any]
    status: str
    generation: int
    best_score: float | None
    best_stimulus: str | None
    updated_at: datetime | None = None  # the last change (None: not stored yet; the store sets it)
    # The plateau rule's running summary: the best mean evolved score of a closed generation and the first
    # generation that reached it (None until a generation closes; revision 0003).
    best_mean: float | None = None
    best_mean_generation: int | None = None


@dataclass(frozen=True)
class StimulusRecord:
    stimulus_id: str
    generation: int
    kind: str
    index: int
    candidate_id: int | None
    code: NDArray[np.float64]


@dataclass(frozen=True)
class ReferenceRecord:
    """A reference image's code: shown in every generation as stimulus ``g<n>-r<index>``."""

    index: int
    code: NDArray[np.float64]


@dataclass(frozen=True)
class GenerationRecord:
    number: int
    order: list[str]
    closed: bool
    summary: dict[str, float] | None
    opened_at: datetime | None = None  # UTC
    closed_at: datetime | None = None  # UTC; None while open


@dataclass(frozen=True)
class ResponseRecord:
    stimulus_id: str
    generation: int
    missing: bool
    counts: dict[str, list[float]] | None
    score: float | None
    baseline: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    request_hash: str
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class PostInputs:
    """What a post of responses reads, in one round trip: the session, the stimuli of the generation posted to,
    and the answer stored under the post's Idempotency-Key (None: no key, or a new one)."""

    session: SessionRecord
    stimuli: list[StimulusRecord]
    replay: IdempotencyRecord | None
