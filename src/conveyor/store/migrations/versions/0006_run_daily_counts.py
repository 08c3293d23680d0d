"""Runs per automation, UTC day of created_at and status, kept current by the run lifecycle.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DAY_US = 86_400_000_000


def upgrade() -> None:
    op.create_table(
        "run_daily_counts",
        sa.Column("automation_id", ID, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    # created_at is a (positive) integer on both databases: "/" is integer division.
    op.execute(
        "INSERT INTO run_daily_counts (automation_id, day, status, count) "
        f"SELECT automation_id, created_at / {DAY_US}, status, COUNT(*) "
        f"FROM automation_runs GROUP BY automation_id, created_at / {DAY_US}, status"
    )


def downgrade() -> None:
    op.drop_table("run_daily_counts")
