"""Drop the references table: written at creation and never read. A session's reference codes are its reference
stimuli (``g<n>-r<index>``, the same codes in every generation), kept in ``stimuli``; downgrading rebuilds the table
from generation 0's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_table("references")


def downgrade() -> None:
    op.create_table(
        "references",
        sa.Column("session_id", sa.String(length=40), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("code", sa.LargeBinary(), nullable=False),
    )
    references = sa.table("references", sa.column("session_id"), sa.column("index"), sa.column("code"))
    stimuli = sa.table(
        "stimuli", sa.column("session_id"), sa.column("generation"), sa.column("kind"), sa.column("index"),
        sa.column("code"),
    )  # fmt: skip
    reference_stimuli = sa.select(stimuli.c.session_id, stimuli.c.index, stimuli.c.code).where(
        stimuli.c.generation == 0, stimuli.c.kind == "reference"
    )
    op.execute(references.insert().from_select(["session_id", "index", "code"], reference_stimuli))
