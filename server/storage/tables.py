"""The tables (SQLAlchemy models of the newest migration revision) and the conversions between rows and records.

Postgres refuses what SQLite stores silently: text with NUL characters or longer than its column, integers beyond
32 bits, NaN and Infinity in JSON. The column types here refuse them on every backend, before any row is written, so
a value a lab's Postgres would refuse (a 500 there) is a named error on the SQLite of a laptop and its tests too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, MetaData, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from evostim.server.storage.errors import UnstorableValue
from evostim.server.storage.records import (
    GenerationRecord,
    IdempotencyRecord,
    ResponseRecord,
    SessionRecord,
    StimulusRecord,
)

__all__ = [
    "CreationKeyRow",
    "GenerationRow",
    "IdempotencyRow",
    "ResponseRow",
    "SessionRow",
    "SnapshotRow",
    "StimulusRow",
    "code_bytes",
    "generation_record",
    "idempotency_record",
    "json_dumps",
    "now",
    "response_record",
    "schema_metadata",
    "session_record",
    "stimulus_record",
]

_INT_RANGE = (-(2**31), 2**31 - 1)


class _Text(TypeDecorator[str]):
    """VARCHAR that refuses NUL characters and text longer than the column."""

    impl = String
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and "\x00" in value:
            raise UnstorableValue("text with a NUL character cannot be stored")
        if value is not None and self.length is not None and len(value) > self.length:
            raise UnstorableValue(f"text of {len(value)} characters cannot be stored where {self.length} fit")
        return value


class _Int(TypeDecorator[int]):
    """INTEGER that refuses numbers beyond 32 bits (SQLite would store them, Postgres would not)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is not None and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise UnstorableValue(f"the integer {value} is beyond the stored range {_INT_RANGE[0]}..{_INT_RANGE[1]}")
        return value


def json_dumps(value: Any) -> str:
    """JSON without NaN or Infinity, which Postgres's json type refuses (and JSON itself has no words for)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError as error:
        raise UnstorableValue("a number that is not finite (NaN or Infinity) cannot be stored in JSON") from error


class _Base(DeclarativeBase):
    pass


class SessionRow(_Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(_Text(40), primary_key=True)
    owner: Mapped[str] = mapped_column(_Text(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(_Text(16))
    generation: Mapped[int] = mapped_column(_Int())
    best_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_stimulus: Mapped[str | None] = mapped_column(_Text(40), nullable=True)
    # the last change: creation, a generation closed, stopped or resumed (revision 0002; null in no row after it)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the plateau rule's running summary (revision 0003): null until a generation closes
    best_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_mean_generation: Mapped[int | None] = mapped_column(_Int(), nullable=True)


class GenerationRow(_Base):
    __tablename__ = "generations"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    number: Mapped[int] = mapped_column(_Int(), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    order: Mapped[list[str]] = mapped_column(JSON)
    summary: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)


class StimulusRow(_Base):
    __tablename__ = "stimuli"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    stimulus_id: Mapped[str] = mapped_column(_Text(40), primary_key=True)
    generation: Mapped[int] = mapped_column(_Int(), index=True)
    kind: Mapped[str] = mapped_column(_Text(16))
    index: Mapped[int] = mapped_column(_Int())
    candidate_id: Mapped[int | None] = mapped_column(_Int(), nullable=True)
    code: Mapped[bytes] = mapped_column(LargeBinary)


class ResponseRow(_Base):
    __tablename__ = "responses"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    stimulus_id: Mapped[str] = mapped_column(_Text(40), primary_key=True)
    generation: Mapped[int] = mapped_column(_Int(), index=True)
    missing: Mapped[bool] = mapped_column(Boolean)
    counts: Mapped[dict[str, list[float]] | None] = mapped_column(JSON, nullable=True)
    baseline: Mapped[dict[str, list[float]] | None] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)


class SnapshotRow(_Base):
    __tablename__ = "optimizer_snapshots"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(_Int(), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotencyRow(_Base):
    __tablename__ = "idempotency_keys"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    key: Mapped[str] = mapped_column(_Text(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(_Text(64))
    status_code: Mapped[int] = mapped_column(_Int())
    body: Mapped[str] = mapped_column(_Text())


class CreationKeyRow(_Base):
    """The Idempotency-Key of a session creation or fork, scoped to its owner: a retry replays the answer."""

    __tablename__ = "creation_keys"
    owner: Mapped[str] = mapped_column(_Text(128), primary_key=True)
    key: Mapped[str] = mapped_column(_Text(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(_Text(64))
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"))
    body: Mapped[str] = mapped_column(_Text())


def schema_metadata() -> MetaData:
    """The tables the models describe: what the newest migration revision must have made (autogenerate's target)."""
    return _Base.metadata


def code_bytes(code: NDArray[np.float64]) -> bytes:
    return np.ascontiguousarray(code, dtype="<f8").tobytes()


def _code_array(raw: bytes) -> NDArray[np.float64]:
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


def now() -> datetime:
    return datetime.now(UTC)


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
def _utc(moment: datetime | None) -> datetime | None:
    """In UTC: SQLite hands back naive datetimes (every stored one is UTC), Postgres its server's time zone."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def session_record(row: SessionRow) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        owner=row.owner,
        created_at=_utc(row.created_at),
        config=row.config,
        status=row.status,
        generation=row.generation,
        best_score=row.best_score,
        best_stimulus=row.best_stimulus,
        updated_at=_utc(row.updated_at or row.created_at),
        best_mean=row.best_mean,
        best_mean_generation=row.best_mean_generation,
    )


def generation_record(row: GenerationRow) -> GenerationRecord:
    closed = row.closed_at is not None
    return GenerationRecord(row.number, row.order, closed, row.summary, _utc(row.opened_at), _utc(row.closed_at))


def stimulus_record(row: StimulusRow) -> StimulusRecord:
    return StimulusRecord(row.stimulus_id, row.generation, row.kind, row.index, row.candidate_id, _code_array(row.code))


def response_record(row: ResponseRow) -> ResponseRecord:
    return ResponseRecord(row.stimulus_id, row.generation, row.missing, row.counts, row.score, row.baseline)


def idempotency_record(row: IdempotencyRow | CreationKeyRow, status_code: int) -> IdempotencyRecord:
    return IdempotencyRecord(row.key, row.request_hash, status_code, json.loads(row.body))
