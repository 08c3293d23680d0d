"""The operator's view of all runs and bulk actions (issue 15).

Two indexes on `automation_runs` serve the list across automations by
created_at (docs/indexes.md): all runs, and runs of some triggers and
statuses. `bulk_requests` remembers each bulk cancel or rerun
by its Idempotency-Key, so a repeated request acts on nothing twice.

Revision ID: 0013_all_runs
Revises: 0012_retries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_all_runs"
down_revision = "0012_retries"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_runs_created", "automation_runs", ["created_at", "id"])
    op.create_index(
        "ix_runs_trigger_status_created",
        "automation_runs",
        ["trigger", "status", "created_at", "id"],
    )
    op.create_table(
        "bulk_requests",
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True, autoincrement=False),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bulk_requests")
    op.drop_index("ix_runs_trigger_status_created", "automation_runs")
    op.drop_index("ix_runs_created", "automation_runs")
