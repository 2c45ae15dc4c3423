"""The schema evostim had when migrations began (revision 0001): frozen, never edited.

A schema change is a new revision in ``versions/`` that alters these tables, never an edit here: revision 0001
creates exactly these tables, and a database made before migrations existed is compared with them before it is
adopted (stamped 0001) in place.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

__all__ = ["baseline_metadata"]


def baseline_metadata() -> MetaData:
    """A fresh MetaData holding the baseline's eight tables."""
    metadata = MetaData()
    Table(
        "sessions",
        metadata,
        Column("id", String(40), primary_key=True),
        Column("owner", String(64), nullable=False, index=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("config", JSON, nullable=False),
        Column("status", String(16), nullable=False),
        Column("generation", Integer, nullable=False),
        Column("best_score", Float, nullable=True),
        Column("best_stimulus", String(40), nullable=True),
    )
    Table(
        "generations",
        metadata,
        Column("session_id", String(40), ForeignKey("sessions.id"), primary_key=True),
        Column("number", Integer, primary_key=True),
        Column("opened_at", DateTime(timezone=True), nullable=False),
        Column("closed_at", DateTime(timezone=True), nullable=True),
        Column("order", JSON, nullable=False),
        Column("summary", JSON, nullable=True),
    )
    Table(
        "references",
        metadata,
        Column("session_id", String(40), ForeignKey("sessions.id"), primary_key=True),
        Column("index", Integer, primary_key=True),
        Column("code", LargeBinary, nullable=False),
    )
    Table(
        "stimuli",
        metadata,
        Column("session_id", String(40), ForeignKey("sessions.id"), primary_key=True),
        Column("stimulus_id", String(40), primary_key=True),
        Column("generation", Integer, nullable=False, index=True),
        Column("kind", String(16), nullable=False),
        Column("index", Integer, nullable=False),
        Column("candidate_id", Integer, nullable=True),
        Column("code", LargeBinary, nullable=False),
    )
    Table(
        "responses",
        metadata,
        Column("session_id", String(40), ForeignKey("sessions.id"), primary_key=True),
        Column("stimulus_id", String(40), primary_key=True),
        Column("generation", Integer, nullable=False, index=True),
        Column("missing", Boolean, nullable=False),
        Column("counts", JSON, nullable=True),
        Column("baseline", JSON, nullable=True),
        Column("score", Float, nullable=True),
    )
    Table(
        "optimizer_snapshots",
        metadata,
        Column("session_id", String(40), ForeignKey("sessions.id"), primary_key=True),
        Column("generation", Integer, primary_key=True),
        Column("state", LargeBinary, nullable=False),
    )
    Table(
        "idempotency_keys",
        metadata,
        Column("session_id", String(40), ForeignKey("sessions.id"), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("body", String, nullable=False),
    )
    Table(
        "creation_keys",
        metadata,
        Column("owner", String(128), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("session_id", String(40), ForeignKey("sessions.id"), nullable=False),
        Column("body", String, nullable=False),
    )
    return metadata
