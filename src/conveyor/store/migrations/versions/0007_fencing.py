"""Fencing: a lease generation on each run, lease losses counted per operation.

`automation_runs.lease_generation` goes up by one with every claim; the
holder's writes are guarded on it (the fencing token). `run_operations.lease_losses`
counts the lease losses at which the operation was the one in flight
(poison detection per operation).

Revision ID: 0007_fencing
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_fencing"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, as 0005 does: a batch would copy and drop tables that other
    # tables' foreign keys point at, which SQLite refuses once runs exist.
    op.add_column(
        "automation_runs",
        sa.Column("lease_generation", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "run_operations",
        sa.Column("lease_losses", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("run_operations") as batch:
        batch.drop_column("lease_losses")
    with op.batch_alter_table("automation_runs") as batch:
        batch.drop_column("lease_generation")
