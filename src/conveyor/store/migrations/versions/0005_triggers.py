"""Triggers: schedule slots on runs, run inputs, scheduler state, the watched-files snapshot.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Paths are compared by byte order (prefix ranges); PostgreSQL's default
# collation may not be, so its path columns use "C".
PATH = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    # ADD COLUMN and CREATE INDEX need no table rebuild on SQLite.
    op.add_column("automation_runs", sa.Column("schedule_slot", sa.BigInteger, nullable=True))
    op.create_index(
        "uq_runs_automation_slot",
        "automation_runs",
        ["automation_id", "schedule_slot"],
        unique=True,
    )
    op.create_table(
        "run_inputs",
        sa.Column(
            "run_id", ID, sa.ForeignKey("automation_runs.id"), primary_key=True, autoincrement=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "schedule_states",
        sa.Column(
            "automation_id",
            ID,
            sa.ForeignKey("automations.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("seen_modified_at", sa.BigInteger, nullable=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("next_slot", sa.BigInteger, nullable=True),
        sa.Column("last_slot", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_schedule_states_next_slot", "schedule_states", ["next_slot"])
    op.create_table(
        "watch_roots",
        sa.Column("path", PATH, primary_key=True),
        sa.Column("since", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "watched_files",
        sa.Column("path", PATH, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("inode", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("watched_files")
    op.drop_table("watch_roots")
    op.drop_index("ix_schedule_states_next_slot", table_name="schedule_states")
    op.drop_table("schedule_states")
    op.drop_table("run_inputs")
    op.drop_index("uq_runs_automation_slot", table_name="automation_runs")
    with op.batch_alter_table("automation_runs") as batch:
        batch.drop_column("schedule_slot")
