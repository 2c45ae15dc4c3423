"""Add sessions.updated_at (a session's last activity), backfilled from its generations' closing times.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # An existing session was last active when its latest generation closed, else when it was created (a stop or
    # resume before this revision left no time behind).
    sessions = sa.table("sessions", sa.column("id"), sa.column("created_at"), sa.column("updated_at"))
    generations = sa.table("generations", sa.column("session_id"), sa.column("closed_at"))
    latest = (
        sa.select(sa.func.max(generations.c.closed_at))
        .where(generations.c.session_id == sessions.c.id)
        .scalar_subquery()
    )
    op.execute(sessions.update().values(updated_at=sa.func.coalesce(latest, sessions.c.created_at)))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
