"""Run control: cancel, rerun and automatic retries (Files.com's AutomationRun fields).

Adds to automation_runs, all nullable so existing runs need no rewrite:
`cancel_requested_at` and `cancel_requested_by` (a cancel is a database fact a
worker taking over honours), `rerun_of_run_id` (the run this one reruns),
`retry_of_run_id` / `retried_in_run_id` (the retry chain, both ways) and
`retry_at` / `retried_at` (when a failed run is due to be, and was, retried).

Revision ID: 0010_run_control
Revises: 0009_permissions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_run_control"
down_revision = "0009_permissions"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = (
    ("cancel_requested_at", sa.BigInteger()),
    ("cancel_requested_by", sa.String(255)),
    ("rerun_of_run_id", ID),
    ("retry_of_run_id", ID),
    ("retried_in_run_id", ID),
    ("retry_at", sa.BigInteger()),
    ("retried_at", sa.BigInteger()),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("automation_runs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _type in reversed(COLUMNS):
        op.drop_column("automation_runs", name)
