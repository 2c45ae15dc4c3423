"""Durable storage of sessions, generations, stimuli, responses and optimizer snapshots (SQLAlchemy 2).

SQLite (one WAL-mode file, synchronous=FULL) by default, Postgres by URL. Every method is one round trip: one
connection from the pool, one transaction (the image fetch's read, one statement, needs none); values go in and
come out as the frozen records of ``records``, never as live ORM objects (the tables are in ``tables``; the
engine, its pools and which failures mean "unavailable" in ``engine``). Session configurations and optimizer
states are opaque here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, text, true, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from evostim.server.storage import migrations
from evostim.server.storage.engine import POOL_SIZE, make_engine, unavailable_as_error
from evostim.server.storage.errors import GenerationAlreadyClosed, IdempotencyKeyTaken, UnstorableValue
from evostim.server.storage.records import (
    ANY_OWNER,
    GenerationRecord,
    IdempotencyRecord,
    PostInputs,
    ReferenceRecord,
    ResponseRecord,
    SessionRecord,
    StimulusRecord,
)
from evostim.server.storage.tables import (
    CreationKeyRow,
    GenerationRow,
    IdempotencyRow,
    ResponseRow,
    SessionRow,
    SnapshotRow,
    StimulusRow,
    code_bytes,
    generation_record,
    idempotency_record,
    json_dumps,
    now,
    response_record,
    schema_metadata,
    session_record,
    stimulus_record,
)

# The records are the store's vocabulary: importable from here, where the service finds the store.
__all__ = [
    "ANY_OWNER",
    "GenerationRecord",
    "IdempotencyRecord",
    "PostInputs",
    "ReferenceRecord",
    "ResponseRecord",
    "SessionRecord",
    "StimulusRecord",
    "Store",
    "schema_metadata",
]


class Store:
    """All SQL of the service lives here."""

    def __init__(self, url: str, *, connections: int = POOL_SIZE) -> None:
        """``connections``: the most this store holds to Postgres at once (SQLite's are its own, 40 + 10)."""
        self._engine = make_engine(url, connections)
        try:
            migrations.upgrade(self._engine)  # create, adopt or upgrade the tables (Alembic revisions)
        except BaseException:
            self._engine.dispose()  # a refused database leaves no connection open
            raise
        self._maker = sessionmaker(self._engine, expire_on_commit=False)
        # One statement outside a transaction reads one snapshot: no BEGIN and no ROLLBACK round trips around it.
        self._autocommit = sessionmaker(self._engine.execution_options(isolation_level="AUTOCOMMIT"))

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
            query = select(func.count()).select_from(SessionRow).where(SessionRow.status == status)
            return int(tx.scalar(query) or 0)

    @contextmanager
    def _sessions(self, *, autocommit: bool = False) -> Iterator[Session]:
        try:
            with unavailable_as_error(), (self._autocommit if autocommit else self._maker)() as session:
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
        stimuli: Sequence[StimulusRecord],
        order: list[str],
        snapshot: bytes,
        creation_key: IdempotencyRecord | None = None,
    ) -> None:
        """Session, generation 0, the first optimizer snapshot and the creation's key, atomically.

        Raises IdempotencyKeyTaken if a concurrent creation committed the same key first.
        """
        with self._transaction() as tx:
            tx.add(
                SessionRow(
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
            self._add_generation(tx, session.id, session.generation, stimuli, order)
            tx.add(SnapshotRow(session_id=session.id, generation=session.generation, state=snapshot))
            if creation_key is not None:
                tx.add(
                    CreationKeyRow(
                        owner=session.owner,
                        key=creation_key.key,
                        request_hash=creation_key.request_hash,
                        session_id=session.id,
                        body=json_dumps(creation_key.body),
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
        tx.add(GenerationRow(session_id=session_id, number=number, opened_at=now(), order=order))
        tx.add_all(
            StimulusRow(
                session_id=session_id,
                stimulus_id=s.stimulus_id,
                generation=number,
                kind=s.kind,
                index=s.index,
                candidate_id=s.candidate_id,
                code=code_bytes(s.code),
            )
            for s in stimuli
        )

    def set_status(self, session_id: str, status: str, *, allowed_from: Sequence[str]) -> SessionRecord | None:
        """Change a session's status if it is one of ``allowed_from`` (atomic); the session as it is then (None:
        no such session)."""
        with self._transaction() as tx:
            tx.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.status.in_(list(allowed_from)))
                .values(status=status, updated_at=now())
            )
            row = tx.get(SessionRow, session_id)
            return None if row is None else session_record(row)

    def update_config(
        self, session_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> SessionRecord | None:
        """Replace a session's stored configuration by ``change(stored)``, the row locked from read to write (so a
        concurrent change from another server process is applied after, never lost); the session as it is then
        (None: no such session). An exception from ``change`` writes nothing."""
        with self._transaction() as tx:
            row = tx.scalars(select(SessionRow).where(SessionRow.id == session_id).with_for_update()).first()
            if row is None:
                return None
            row.config = change(dict(row.config))
            tx.flush()
            return session_record(row)

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
        best_mean: tuple[float, int] | None = None,
    ) -> None:
        """Close generation ``closed`` with its responses and open the next one, atomically, ``at`` (default now);
        ``best_mean`` (value, generation) is the session's running summary after it (None: left as it is).

        Raises GenerationAlreadyClosed if another writer closed it first (the conditional update is the lock
        that also holds across server processes sharing one Postgres).
        """
        moment = at or now()
        with self._transaction() as tx:
            self._advance_session(tx, session_id, closed, best, best_mean, status, bool(next_stimuli), moment)
            tx.execute(
                update(GenerationRow)
                .where(GenerationRow.session_id == session_id, GenerationRow.number == closed)
                .values(closed_at=moment, summary=summary)
            )
            tx.add_all(
                ResponseRow(
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
                self._add_generation(tx, session_id, closed + 1, next_stimuli, next_order)
            if snapshot is not None:
                tx.add(SnapshotRow(session_id=session_id, generation=closed + 1, state=snapshot))
            if idempotency is not None:
                tx.add(
                    IdempotencyRow(
                        session_id=session_id,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                        status_code=idempotency.status_code,
                        body=json_dumps(idempotency.body),
                    )
                )
            try:
                tx.flush()
            except IntegrityError as error:  # the same idempotency key committed concurrently
                raise IdempotencyKeyTaken(
                    "a concurrent request with the same Idempotency-Key was accepted first"
                ) from error

    @staticmethod
    def _advance_session(
        tx: Session,
        session_id: str,
        closed: int,
        best: tuple[float, str] | None,
        best_mean: tuple[float, int] | None,
        status: str,
        opens_next: bool,
        moment: datetime,
    ) -> None:
        """The session's row after generation ``closed``, if that generation is still its open one."""
        values: dict[str, Any] = {"status": status, "generation": closed + 1 if opens_next else closed}
        values["updated_at"] = moment
        if best is not None:
            values["best_score"], values["best_stimulus"] = best
        if best_mean is not None:
            values["best_mean"], values["best_mean_generation"] = best_mean
        result = tx.execute(
            update(SessionRow)
            .where(SessionRow.id == session_id, SessionRow.generation == closed, SessionRow.status == "running")
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise GenerationAlreadyClosed(f"generation {closed} was closed by another request", generation=closed)

    # -- reads -----------------------------------------------------------------------------------
    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._sessions() as tx:
            row = tx.get(SessionRow, session_id)
            return None if row is None else session_record(row)

    def get_post_inputs(self, session_id: str, number: int, idempotency_key: str | None) -> PostInputs | None:
        """The session, the stimuli of ``number`` if it is the open generation, and the answer stored under
        ``idempotency_key`` (then no stimuli: the post is a replay) in one round trip; None: no such session."""
        with self._sessions() as tx:
            row = tx.get(SessionRow, session_id)
            if row is None:
                return None
            replay = None if idempotency_key is None else tx.get(IdempotencyRow, (session_id, idempotency_key))
            stimuli = (
                [] if replay is not None or number != row.generation else self._stimuli(tx, session_id, number, number)
            )
            stored = None if replay is None else idempotency_record(replay, replay.status_code)
            return PostInputs(session_record(row), stimuli, stored)

    def list_sessions(self, owner: str, *, limit: int, offset: int) -> tuple[list[SessionRecord], int]:
        """A page of ``owner``'s sessions, newest first (``ANY_OWNER``: everyone's)."""
        mine = true() if owner == ANY_OWNER else SessionRow.owner == owner
        with self._sessions() as tx:
            total = tx.scalar(select(func.count()).select_from(SessionRow).where(mine)) or 0
            if offset >= total:  # and no LIMIT/OFFSET beyond the 32/64-bit ranges of the databases
                return [], total
            rows = tx.scalars(
                select(SessionRow)
                .where(mine)
                .order_by(SessionRow.created_at.desc(), SessionRow.id)
                .limit(min(limit, total - offset))
                .offset(offset)
            )
            return [session_record(row) for row in rows], total

    def get_generation(self, session_id: str, number: int) -> GenerationRecord | None:
        with self._sessions() as tx:
            row = tx.get(GenerationRow, (session_id, number))
            return None if row is None else generation_record(row)

    def list_generations(self, session_id: str) -> list[GenerationRecord]:
        with self._sessions() as tx:
            rows = tx.scalars(
                select(GenerationRow).where(GenerationRow.session_id == session_id).order_by(GenerationRow.number)
            )
            return [generation_record(r) for r in rows]

    def get_stimuli(self, session_id: str, first: int, last: int | None = None) -> list[StimulusRecord]:
        """Stimuli of generations first..last (inclusive), by generation, then evolved before reference."""
        with self._sessions() as tx:
            return self._stimuli(tx, session_id, first, first if last is None else last)

    @staticmethod
    def _stimuli(tx: Session, session_id: str, first: int, last: int) -> list[StimulusRecord]:
        rows = tx.scalars(
            select(StimulusRow)
            .where(
                StimulusRow.session_id == session_id,
                StimulusRow.generation >= first,
                StimulusRow.generation <= last,
            )
            .order_by(StimulusRow.generation, StimulusRow.kind, StimulusRow.index)
        )
        return [stimulus_record(row) for row in rows]

    def get_image_source(self, session_id: str, stimulus_id: str) -> tuple[SessionRecord, StimulusRecord | None] | None:
        """The session and its stimulus ``stimulus_id`` (None: it has none), in one statement: every image fetch
        reads this, so it is one round trip to the database, not a transaction; None: no such session."""
        query = (
            select(SessionRow, StimulusRow)
            .outerjoin(
                StimulusRow, and_(StimulusRow.session_id == SessionRow.id, StimulusRow.stimulus_id == stimulus_id)
            )
            .where(SessionRow.id == session_id)
        )
        with self._sessions(autocommit=True) as tx:
            row = tx.execute(query).first()
            if row is None:
                return None
            return session_record(row[0]), None if row[1] is None else stimulus_record(row[1])

    def get_responses(self, session_id: str, first: int, last: int) -> list[ResponseRecord]:
        """Responses of generations first..last (inclusive)."""
        with self._sessions() as tx:
            rows = tx.scalars(
                select(ResponseRow)
                .where(
                    ResponseRow.session_id == session_id,
                    ResponseRow.generation >= first,
                    ResponseRow.generation <= last,
                )
                .order_by(ResponseRow.generation, ResponseRow.stimulus_id)
            )
            return [response_record(r) for r in rows]

    def latest_snapshot(self, session_id: str, at_most: int) -> tuple[int, bytes] | None:
        with self._sessions() as tx:
            row = tx.scalars(
                select(SnapshotRow)
                .where(SnapshotRow.session_id == session_id, SnapshotRow.generation <= at_most)
                .order_by(SnapshotRow.generation.desc())
                .limit(1)
            ).first()
            return None if row is None else (row.generation, row.state)

    def get_creation_key(self, owner: str, key: str) -> IdempotencyRecord | None:
        with self._sessions() as tx:
            row = tx.get(CreationKeyRow, (owner, key))
            return None if row is None else idempotency_record(row, 201)
