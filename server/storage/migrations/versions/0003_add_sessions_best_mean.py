"""Add sessions.best_mean and sessions.best_mean_generation: the plateau rule's running summary (the best mean
evolved score of a closed generation, and the first generation that reached it), backfilled from the generations'
summaries, so that a post no longer reads every generation to apply the rule.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("best_mean", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("best_mean_generation", sa.Integer(), nullable=True))
    generations = sa.table(
        "generations",
        sa.column("session_id"),
        sa.column("number"),
        sa.column("closed_at"),
        sa.column("summary", sa.JSON),
    )
    closed = (
        sa.select(generations.c.session_id, generations.c.number, generations.c.summary)
        .where(generations.c.closed_at.is_not(None))
        .order_by(generations.c.session_id, generations.c.number)
    )
    best: dict[str, tuple[float, int]] = {}
    for session_id, number, summary in op.get_bind().execute(closed):
        _keep_best(best, session_id, number, summary)
    sessions = sa.table("sessions", sa.column("id"), sa.column("best_mean"), sa.column("best_mean_generation"))
    for session_id, (value, number) in best.items():
        op.execute(
            sessions.update().where(sessions.c.id == session_id).values(best_mean=value, best_mean_generation=number)
        )


def _keep_best(best: dict[str, tuple[float, int]], session_id: str, number: int, summary: Any) -> None:
    """The running summary as posts keep it: a mean replaces the best only when it is strictly higher."""
    mean = summary.get("evolved_mean") if isinstance(summary, dict) else None
    if mean is None:
        return
    if session_id not in best or mean > best[session_id][0]:
        best[session_id] = (float(mean), int(number))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("best_mean_generation")
        batch_op.drop_column("best_mean")
