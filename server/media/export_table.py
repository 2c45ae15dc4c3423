"""The table every export holds, read from the store a few generations at a time: one row per stimulus (all
generations, evolved and reference; docs/protocol.md, "Data out", lists its columns), with its generation's columns
(timestamps, optimizer summary) repeated on each of its rows, and the session (configuration, metadata) beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim import __version__
from evostim.protocol import SessionPublic
from evostim.server.storage.store import GenerationRecord, ResponseRecord, StimulusRecord

__all__ = [
    "FORMAT_VERSION",
    "Chunk",
    "SessionData",
    "Table",
    "codes_of",
    "padded",
    "ragged_columns",
    "row_columns",
]

FORMAT_VERSION = 1  # of the layout below; bumped when a column changes meaning

FloatArray = NDArray[np.float64]
Pixels = Callable[[Sequence[FloatArray]], NDArray[np.uint8]]  # codes -> (B, H, W, 3) uint8 images
Reader = Callable[[int, int], tuple[list[StimulusRecord], dict[str, ResponseRecord]]]  # generations first..last


@dataclass(frozen=True)
class Chunk:
    """A few consecutive generations with their stimuli (in table order) and responses by stimulus id."""

    generations: list[GenerationRecord]
    stimuli: list[StimulusRecord]
    responses: Mapping[str, ResponseRecord]


@dataclass(frozen=True)
class SessionData:
    """What an export reads: the session, its generations, and readers of stimuli and images."""

    session: SessionPublic
    channels: tuple[str, ...]
    latent_dim: int
    generations: list[GenerationRecord]
    read: Reader
    pixels: Pixels
    chunk_generations: int = 8
    nwb: Mapping[str, str] = field(default_factory=dict)  # the export's NWB fields (subject, session start)

    def chunks(self) -> Iterator[Chunk]:
        step = self.chunk_generations
        for start in range(0, len(self.generations), step):
            generations = self.generations[start : start + step]
            stimuli, responses = self.read(generations[0].number, generations[-1].number)
            yield Chunk(generations, stimuli, responses)

    @property
    def summary_keys(self) -> list[str]:
        """Every optimizer summary entry any generation has (each becomes a column ``optimizer.<key>``)."""
        return sorted({key for g in self.generations for key in (g.summary or {})})

    def about(self) -> dict[str, Any]:
        """The session as GET /v1/sessions/{id} answers it, and what this file is."""
        return {
            "session": self.session.model_dump(mode="json"),
            "channels": list(self.channels),
            "latent_dim": self.latent_dim,
            "format_version": FORMAT_VERSION,
            "evostim_version": __version__,
            "exported_at": datetime.now(UTC).isoformat(),
        }


# -- the table, a chunk at a time ------------------------------------------------------------------------------------
def _status(response: ResponseRecord | None) -> str:
    """measured / missing (left out of its generation's post) / pending (its generation is still open)."""
    if response is None:
        return "pending"
    return "missing" if response.missing else "measured"


def _reference_id(stimulus: StimulusRecord) -> int:
    """The reference image's id (its index: the same image in every generation); -1 for an evolved stimulus."""
    return stimulus.index if stimulus.kind == "reference" else -1


def _score(response: ResponseRecord | None) -> float:
    return np.nan if response is None or response.score is None else response.score


def _reps(values: Mapping[str, list[float]] | None, channel: str) -> list[float] | None:
    return None if values is None else [float(v) for v in values[channel]]


def _stamp(moment: datetime | None) -> np.datetime64:
    """A UTC moment as numpy microseconds (NaT for none)."""
    return np.datetime64("NaT", "us") if moment is None else np.datetime64(moment.replace(tzinfo=None), "us")


def _generation_columns(chunk: Chunk, keys: Sequence[str]) -> dict[str, NDArray[Any]]:
    """The generation's columns, one value per stimulus row."""
    by_number = {g.number: g for g in chunk.generations}
    rows = [by_number[s.generation] for s in chunk.stimuli]
    columns: dict[str, NDArray[Any]] = {
        "opened_at": np.array([_stamp(g.opened_at) for g in rows], dtype="datetime64[us]"),
        "closed_at": np.array([_stamp(g.closed_at) for g in rows], dtype="datetime64[us]"),
    }
    for key in keys:
        values = [(g.summary or {}).get(key) for g in rows]
        columns[f"optimizer.{key}"] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return columns


def _stimulus_columns(chunk: Chunk, session_id: str) -> dict[str, NDArray[Any]]:
    stimuli, responses = chunk.stimuli, [chunk.responses.get(s.stimulus_id) for s in chunk.stimuli]
    return {
        "session_id": np.array([session_id] * len(stimuli), dtype=np.str_),
        "generation": np.array([s.generation for s in stimuli], dtype=np.int64),
        "stimulus_id": np.array([s.stimulus_id for s in stimuli], dtype=np.str_),
        "kind": np.array([s.kind for s in stimuli], dtype=np.str_),
        "index": np.array([s.index for s in stimuli], dtype=np.int64),
        "reference_id": np.array([_reference_id(s) for s in stimuli], dtype=np.int64),
        "status": np.array([_status(r) for r in responses], dtype=np.str_),
        "score": np.array([_score(r) for r in responses], dtype=np.float64),
    }


def row_columns(chunk: Chunk, data: SessionData) -> dict[str, NDArray[Any]]:
    """The fixed-width columns of a chunk's rows: the stimulus's own and its generation's."""
    return {**_stimulus_columns(chunk, data.session.id), **_generation_columns(chunk, data.summary_keys)}


def ragged_columns(chunk: Chunk, channels: Sequence[str]) -> dict[str, list[list[float] | None]]:
    """``counts.<channel>`` and ``baseline.<channel>``: each row's repetitions, None where nothing was posted."""
    responses = [chunk.responses.get(s.stimulus_id) for s in chunk.stimuli]
    columns: dict[str, list[list[float] | None]] = {}
    for channel in channels:
        columns[f"counts.{channel}"] = [_reps(r.counts if r else None, channel) for r in responses]
        columns[f"baseline.{channel}"] = [_reps(r.baseline if r else None, channel) for r in responses]
    return columns


def codes_of(chunk: Chunk, latent_dim: int) -> FloatArray:
    if not chunk.stimuli:
        return np.empty((0, latent_dim), dtype=np.float64)
    return np.stack([np.asarray(s.code, dtype=np.float64) for s in chunk.stimuli])


@dataclass
class Table:
    """The fixed-width columns and the ragged ones of the rows read so far (codes are kept out: they stream)."""

    columns: dict[str, list[NDArray[Any]]]
    ragged: dict[str, list[list[float] | None]]

    @classmethod
    def read(cls, data: SessionData) -> Table:
        table = cls({}, {})
        for chunk in data.chunks():
            for name, values in row_columns(chunk, data).items():
                table.columns.setdefault(name, []).append(values)
            for name, rows in ragged_columns(chunk, data.channels).items():
                table.ragged.setdefault(name, []).extend(rows)
        return table

    def fixed(self) -> dict[str, NDArray[Any]]:
        return {name: np.concatenate(parts) for name, parts in self.columns.items()}


def padded(rows: Sequence[list[float] | None]) -> FloatArray:
    """Ragged repetitions -> (N, most repetitions), NaN where a row has fewer (counts are never NaN)."""
    width = max((len(r) for r in rows if r is not None), default=0)
    out = np.full((len(rows), width), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = row
    return out
