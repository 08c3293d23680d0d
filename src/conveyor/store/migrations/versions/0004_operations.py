"""Operating Conveyor: worker heartbeats, rate-limit buckets, per-automation retention.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"])
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
    )
    with op.batch_alter_table("automations") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("automations") as batch:
        batch.drop_column("retention_days")
    op.drop_table("rate_limit_buckets")
    op.drop_index("ix_workers_heartbeat_at", table_name="workers")
    op.drop_table("workers")
