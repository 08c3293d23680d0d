"""Reruns: the node of the original run a rerun starts from.

Adds `automation_runs.rerun_from_node_id` (nullable): for a rerun, which of
the original's operations it keeps (`planning`: all the automation matches
now; `execution`: those the original planned; `failed_operations`: those that
failed in the original), read by the planner. Files.com's AutomationRun field
of the same name. NULL for every run that is not a rerun.

Revision ID: 0011_rerun
Revises: 0010_run_control
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_rerun"
down_revision = "0010_run_control"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("automation_runs", sa.Column("rerun_from_node_id", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("automation_runs", "rerun_from_node_id")
