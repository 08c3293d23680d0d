"""Automatic retries (issue 15): the automation's two Files.com retry settings, each run's
attempt number along its retry chain, and the index the scheduler finds due retries by.

Revision ID: 0012_retries
Revises: 0011_rerun
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_retries"
down_revision = "0011_rerun"
branch_labels = None
depends_on = None

# Only runs still waiting for their retry: the index stays as small as the backlog.
_DUE = "retry_at IS NOT NULL AND retried_in_run_id IS NULL"


def upgrade() -> None:
    # Plain ADD COLUMN (a batch would copy tables the runs' foreign keys point at).
    op.add_column(
        "automations", sa.Column("retry_on_failure_number_of_attempts", sa.Integer, nullable=True)
    )
    op.add_column(
        "automations", sa.Column("retry_on_failure_interval_in_minutes", sa.Integer, nullable=True)
    )
    op.add_column(
        "automation_runs",
        sa.Column("retry_attempt", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_runs_retry_due",
        "automation_runs",
        ["retry_at", "id"],
        sqlite_where=sa.text(_DUE),
        postgresql_where=sa.text(_DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_retry_due", table_name="automation_runs")
    with op.batch_alter_table("automation_runs") as batch:
        batch.drop_column("retry_attempt")
    with op.batch_alter_table("automations") as batch:
        batch.drop_column("retry_on_failure_interval_in_minutes")
        batch.drop_column("retry_on_failure_number_of_attempts")
