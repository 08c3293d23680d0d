"""The full automation resource, engine leases and stage times on runs, planned operations.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_AUTOMATION_TEXT = (
    "description",
    "path",
    "source",
    "destinations",
    "destination_replace_from",
    "destination_replace_to",
    "exclude_pattern",
    "path_time_zone",
    "schedule_days_of_week",
    "schedule_times_of_day",
    "schedule_time_zone",
    "trigger_actions",
)
_AUTOMATION_FLAGS = (
    "overwrite_files",
    "always_overwrite_size_matching_files",
    "flatten_destination_structure",
)


def upgrade() -> None:
    with op.batch_alter_table("automations") as batch:
        for name in _AUTOMATION_TEXT:
            batch.add_column(sa.Column(name, sa.Text, nullable=False, server_default=""))
        for name in _AUTOMATION_FLAGS:
            batch.add_column(sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("interval", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recurring_day", sa.Integer, nullable=True))
        batch.add_column(sa.Column("webhook_secret", sa.String(64), nullable=True))
        batch.create_index("ix_automations_webhook_secret", ["webhook_secret"], unique=True)
    with op.batch_alter_table("automation_runs") as batch:
        batch.add_column(
            sa.Column("trigger", sa.String(16), nullable=False, server_default="manual")
        )
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("lease_losses", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("planning_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("queued_for_execution_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("executing_at", sa.BigInteger, nullable=True))
        batch.create_index("ix_runs_stage_id", ["run_stage", "id"])
    op.create_table(
        "run_operations",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", ID, sa.ForeignKey("automation_runs.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("destination", sa.Text, nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.UniqueConstraint("run_id", "seq", name="uq_run_operations_run_seq"),
    )
    op.create_index("ix_run_operations_run_state_seq", "run_operations", ["run_id", "state", "seq"])


def downgrade() -> None:
    op.drop_table("run_operations")
    with op.batch_alter_table("automation_runs") as batch:
        batch.drop_index("ix_runs_stage_id")
        for name in (
            "trigger",
            "lease_owner",
            "lease_expires_at",
            "lease_losses",
            "planning_at",
            "queued_for_execution_at",
            "executing_at",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("automations") as batch:
        batch.drop_index("ix_automations_webhook_secret")
        for name in (
            *_AUTOMATION_TEXT,
            *_AUTOMATION_FLAGS,
            "interval",
            "recurring_day",
            "webhook_secret",
        ):
            batch.drop_column(name)
