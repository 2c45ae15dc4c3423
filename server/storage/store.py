"""Durable storage of sessions, generations, stimuli, responses and optimizer snapshots (SQLAlchemy 2).

SQLite (one WAL-mode file, synchronous=FULL) by default, Postgres by URL. Every write method is one
transaction; values go in and come out as frozen dataclasses, never as live ORM objects. Optimizer
state is an opaque blob here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    create_engine,
    event,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from evostim.server.storage import migrations
from evostim.server.storage.errors import GenerationAlreadyClosed, IdempotencyKeyTaken, UnstorableValue

__all__ = [
    "ANY_OWNER",
    "GenerationRecord",
    "IdempotencyRecord",
    "ReferenceRecord",
    "ResponseRecord",
    "SessionRecord",
    "StimulusRecord",
    "Store",
    "schema_metadata",
]


# The owner a lab-wide viewer (a read-only token) reads as: every session, whoever made it. Owner ids are hex
# digests or "anonymous", so no real owner is ever "*".
ANY_OWNER = "*"


# Postgres refuses what SQLite stores silently: text with NUL characters or longer than its column, integers beyond
# 32 bits, NaN and Infinity in JSON. The column types below refuse them on every backend, before any row is written,
# so a value a lab's Postgres would refuse (a 500 there) is a named error on the SQLite of a laptop and its tests too.
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


def _json_dumps(value: Any) -> str:
    """JSON without NaN or Infinity, which Postgres's json type refuses (and JSON itself has no words for)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError as error:
        raise UnstorableValue("a number that is not finite (NaN or Infinity) cannot be stored in JSON") from error


class _Base(DeclarativeBase):
    pass


class _SessionRow(_Base):
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


class _GenerationRow(_Base):
    __tablename__ = "generations"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    number: Mapped[int] = mapped_column(_Int(), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    order: Mapped[list[str]] = mapped_column(JSON)
    summary: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)


class _ReferenceRow(_Base):
    __tablename__ = "references"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    index: Mapped[int] = mapped_column(_Int(), primary_key=True)
    code: Mapped[bytes] = mapped_column(LargeBinary)


class _StimulusRow(_Base):
    __tablename__ = "stimuli"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    stimulus_id: Mapped[str] = mapped_column(_Text(40), primary_key=True)
    generation: Mapped[int] = mapped_column(_Int(), index=True)
    kind: Mapped[str] = mapped_column(_Text(16))
    index: Mapped[int] = mapped_column(_Int())
    candidate_id: Mapped[int | None] = mapped_column(_Int(), nullable=True)
    code: Mapped[bytes] = mapped_column(LargeBinary)


class _ResponseRow(_Base):
    __tablename__ = "responses"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    stimulus_id: Mapped[str] = mapped_column(_Text(40), primary_key=True)
    generation: Mapped[int] = mapped_column(_Int(), index=True)
    missing: Mapped[bool] = mapped_column(Boolean)
    counts: Mapped[dict[str, list[float]] | None] = mapped_column(JSON, nullable=True)
    baseline: Mapped[dict[str, list[float]] | None] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)


class _SnapshotRow(_Base):
    __tablename__ = "optimizer_snapshots"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(_Int(), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class _IdempotencyRow(_Base):
    __tablename__ = "idempotency_keys"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    key: Mapped[str] = mapped_column(_Text(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(_Text(64))
    status_code: Mapped[int] = mapped_column(_Int())
    body: Mapped[str] = mapped_column(_Text())


class _CreationKeyRow(_Base):
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


def _code_bytes(code: NDArray[np.float64]) -> bytes:
    return np.ascontiguousarray(code, dtype="<f8").tobytes()


def _code_array(raw: bytes) -> NDArray[np.float64]:
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


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


def _now() -> datetime:
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


def _generation_record(row: _GenerationRow) -> GenerationRecord:
    closed = row.closed_at is not None
    return GenerationRecord(row.number, row.order, closed, row.summary, _utc(row.opened_at), _utc(row.closed_at))


class Store:
    """All SQL of the service lives here."""

    def __init__(self, url: str) -> None:
        self._engine = self._make_engine(url)
        try:
            migrations.upgrade(self._engine)  # create, adopt or upgrade the tables (Alembic revisions)
        except BaseException:
            self._engine.dispose()  # a refused database leaves no connection open
            raise
        self._maker = sessionmaker(self._engine, expire_on_commit=False)

    @staticmethod
    def _make_engine(url: str) -> Engine:
        if not url.startswith("sqlite"):
            return create_engine(url, pool_pre_ping=True, json_serializer=_json_dumps)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_json_dumps
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives a power cut too
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine

    def close(self) -> None:
        self._engine.dispose()

    def schema_revision(self) -> str | None:
        """The database's migration revision: ``migrations.head()`` once the store has opened it."""
        with self._engine.connect() as connection:
            return migrations.current_revision(connection)

    def ping(self) -> None:
        """One round trip to the database (readiness); raises the driver's error when it does not answer."""
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def count_sessions(self, status: str) -> int:
        """How many sessions have ``status`` (running, stopped, finished), whoever owns them."""
        with self._sessions() as tx:
            query = select(func.count()).select_from(_SessionRow).where(_SessionRow.status == status)
            return int(tx.scalar(query) or 0)

    @contextmanager
    def _sessions(self) -> Iterator[Session]:
        try:
            with self._maker() as session:
                yield session
        except StatementError as error:  # SQLAlchemy wraps what a column type refused; raise it as it is
            if isinstance(error.orig, UnstorableValue):
                raise error.orig from None
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- writes ----------------------------------------------------------------------------------
    def create_session(
        self,
        session: SessionRecord,
        references: Sequence[ReferenceRecord],
        stimuli: Sequence[StimulusRecord],
        order: list[str],
        snapshot: bytes,
        creation_key: IdempotencyRecord | None = None,
    ) -> None:
        """Session, its references, generation 0, the first optimizer snapshot and the creation's key, atomically.

        Raises IdempotencyKeyTaken if a concurrent creation committed the same key first.
        """
        with self._transaction() as tx:
            tx.add(
                _SessionRow(
                    id=session.id,
                    owner=session.owner,
                    created_at=session.created_at,
                    config=session.config,
                    status=session.status,
                    generation=session.generation,
                    best_score=None,
                    best_stimulus=None,
                    updated_at=session.created_at,
                )
            )
            tx.flush()
            tx.add_all(
                _ReferenceRow(session_id=session.id, index=r.index, code=_code_bytes(r.code)) for r in references
            )
            self._add_generation(tx, session.id, session.generation, stimuli, order)
            tx.add(_SnapshotRow(session_id=session.id, generation=session.generation, state=snapshot))
            if creation_key is not None:
                tx.add(
                    _CreationKeyRow(
                        owner=session.owner,
                        key=creation_key.key,
                        request_hash=creation_key.request_hash,
                        session_id=session.id,
                        body=_json_dumps(creation_key.body),
                    )
                )
            try:
                tx.flush()
            except IntegrityError as error:
                raise IdempotencyKeyTaken("a concurrent creation with the same Idempotency-Key came first") from error

    @staticmethod
    def _add_generation(
        tx: Session, session_id: str, number: int, stimuli: Sequence[StimulusRecord], order: list[str]
    ) -> None:
        tx.add(_GenerationRow(session_id=session_id, number=number, opened_at=_now(), order=order))
        tx.add_all(
            _StimulusRow(
                session_id=session_id,
                stimulus_id=s.stimulus_id,
                generation=number,
                kind=s.kind,
                index=s.index,
                candidate_id=s.candidate_id,
                code=_code_bytes(s.code),
            )
            for s in stimuli
        )

    def set_status(self, session_id: str, status: str, *, allowed_from: Sequence[str]) -> bool:
        """Change a session's status if it is one of ``allowed_from`` (atomic); False if it was not."""
        with self._transaction() as tx:
            result = tx.execute(
                update(_SessionRow)
                .where(_SessionRow.id == session_id, _SessionRow.status.in_(list(allowed_from)))
                .values(status=status, updated_at=_now())
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def commit_generation(
        self,
        *,
        session_id: str,
        closed: int,
        responses: Sequence[ResponseRecord],
        summary: dict[str, float],
        best: tuple[float, str] | None,
        status: str,
        next_stimuli: Sequence[StimulusRecord],
        next_order: list[str],
        snapshot: bytes | None,
        idempotency: IdempotencyRecord | None,
        at: datetime | None = None,
    ) -> None:
        """Close generation ``closed`` with its responses and open the next one, atomically, ``at`` (default now).

        Raises GenerationAlreadyClosed if another writer closed it first (the conditional update is the lock
        that also holds across server processes sharing one Postgres).
        """
        opened = closed + 1
        moment = at or _now()
        with self._transaction() as tx:
            values: dict[str, Any] = {
                "status": status,
                "generation": opened if next_stimuli else closed,
                "updated_at": moment,
            }
            if best is not None:
                values["best_score"], values["best_stimulus"] = best
            result = tx.execute(
                update(_SessionRow)
                .where(_SessionRow.id == session_id, _SessionRow.generation == closed, _SessionRow.status == "running")
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise GenerationAlreadyClosed(f"generation {closed} was closed by another request", generation=closed)
            tx.execute(
                update(_GenerationRow)
                .where(_GenerationRow.session_id == session_id, _GenerationRow.number == closed)
                .values(closed_at=moment, summary=summary)
            )
            tx.add_all(
                _ResponseRow(
                    session_id=session_id,
                    stimulus_id=r.stimulus_id,
                    generation=closed,
                    missing=r.missing,
                    counts=r.counts,
                    baseline=r.baseline,
                    score=r.score,
                )
                for r in responses
            )
            if next_stimuli:
                self._add_generation(tx, session_id, opened, next_stimuli, next_order)
            if snapshot is not None:
                tx.add(_SnapshotRow(session_id=session_id, generation=opened, state=snapshot))
            if idempotency is not None:
                tx.add(
                    _IdempotencyRow(
                        session_id=session_id,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                        status_code=idempotency.status_code,
                        body=_json_dumps(idempotency.body),
                    )
                )
            try:
                tx.flush()
            except IntegrityError as error:  # the same idempotency key committed concurrently
                raise IdempotencyKeyTaken(
                    "a concurrent request with the same Idempotency-Key was accepted first"
                ) from error

    # -- reads -----------------------------------------------------------------------------------
    @staticmethod
    def _session_record(row: _SessionRow) -> SessionRecord:
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
        )

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._sessions() as tx:
            row = tx.get(_SessionRow, session_id)
            return None if row is None else self._session_record(row)

    def list_sessions(self, owner: str, *, limit: int, offset: int) -> tuple[list[SessionRecord], int]:
        """A page of ``owner``'s sessions, newest first (``ANY_OWNER``: everyone's)."""
        mine = true() if owner == ANY_OWNER else _SessionRow.owner == owner
        with self._sessions() as tx:
            total = tx.scalar(select(func.count()).select_from(_SessionRow).where(mine)) or 0
            if offset >= total:  # and no LIMIT/OFFSET beyond the 32/64-bit ranges of the databases
                return [], total
            rows = tx.scalars(
                select(_SessionRow)
                .where(mine)
                .order_by(_SessionRow.created_at.desc(), _SessionRow.id)
                .limit(min(limit, total - offset))
                .offset(offset)
            )
            return [self._session_record(row) for row in rows], total

    def get_generation(self, session_id: str, number: int) -> GenerationRecord | None:
        with self._sessions() as tx:
            row = tx.get(_GenerationRow, (session_id, number))
            return None if row is None else _generation_record(row)

    def list_generations(self, session_id: str) -> list[GenerationRecord]:
        with self._sessions() as tx:
            rows = tx.scalars(
                select(_GenerationRow).where(_GenerationRow.session_id == session_id).order_by(_GenerationRow.number)
            )
            return [_generation_record(r) for r in rows]

    @staticmethod
    def _stimulus_record(row: _StimulusRow) -> StimulusRecord:
        return StimulusRecord(
            row.stimulus_id, row.generation, row.kind, row.index, row.candidate_id, _code_array(row.code)
        )

    def get_stimuli(self, session_id: str, first: int, last: int | None = None) -> list[StimulusRecord]:
        """Stimuli of generations first..last (inclusive), by generation, then evolved before reference."""
        last = first if last is None else last
        with self._sessions() as tx:
            rows = tx.scalars(
                select(_StimulusRow)
                .where(
                    _StimulusRow.session_id == session_id,
                    _StimulusRow.generation >= first,
                    _StimulusRow.generation <= last,
                )
                .order_by(_StimulusRow.generation, _StimulusRow.kind, _StimulusRow.index)
            )
            return [self._stimulus_record(row) for row in rows]

    def get_stimulus(self, session_id: str, stimulus_id: str) -> StimulusRecord | None:
        with self._sessions() as tx:
            row = tx.get(_StimulusRow, (session_id, stimulus_id))
            return None if row is None else self._stimulus_record(row)

    def get_references(self, session_id: str) -> list[ReferenceRecord]:
        with self._sessions() as tx:
            rows = tx.scalars(
                select(_ReferenceRow).where(_ReferenceRow.session_id == session_id).order_by(_ReferenceRow.index)
            )
            return [ReferenceRecord(row.index, _code_array(row.code)) for row in rows]

    def get_responses(self, session_id: str, first: int, last: int) -> list[ResponseRecord]:
        """Responses of generations first..last (inclusive)."""
        with self._sessions() as tx:
            rows = tx.scalars(
                select(_ResponseRow)
                .where(
                    _ResponseRow.session_id == session_id,
                    _ResponseRow.generation >= first,
                    _ResponseRow.generation <= last,
                )
                .order_by(_ResponseRow.generation, _ResponseRow.stimulus_id)
            )
            return [ResponseRecord(r.stimulus_id, r.generation, r.missing, r.counts, r.score, r.baseline) for r in rows]

    def latest_snapshot(self, session_id: str, at_most: int) -> tuple[int, bytes] | None:
        with self._sessions() as tx:
            row = tx.scalars(
                select(_SnapshotRow)
                .where(_SnapshotRow.session_id == session_id, _SnapshotRow.generation <= at_most)
                .order_by(_SnapshotRow.generation.desc())
                .limit(1)
            ).first()
            return None if row is None else (row.generation, row.state)

    def get_creation_key(self, owner: str, key: str) -> IdempotencyRecord | None:
        with self._sessions() as tx:
            row = tx.get(_CreationKeyRow, (owner, key))
            if row is None:
                return None
            return IdempotencyRecord(row.key, row.request_hash, 201, json.loads(row.body))

    def get_idempotency(self, session_id: str, key: str) -> IdempotencyRecord | None:
        with self._sessions() as tx:
            row = tx.get(_IdempotencyRow, (session_id, key))
            if row is None:
                return None
            return IdempotencyRecord(row.key, row.request_hash, row.status_code, json.loads(row.body))
