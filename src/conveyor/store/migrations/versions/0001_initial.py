"""Users, API keys, automations, automation runs and their status messages.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "automations",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("automation", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_modified_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_automations_user_id", "automations", ["user_id"])
    op.create_table(
        "automation_runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("automation_id", ID, sa.ForeignKey("automations.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("runtime", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_stage", sa.String(24), nullable=False),
        sa.Column("successful_operations", sa.BigInteger, nullable=False),
        sa.Column("failed_operations", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_runs_automation_id_id", "automation_runs", ["automation_id", "id"])
    op.create_index(
        "ix_runs_automation_created", "automation_runs", ["automation_id", "created_at", "id"]
    )
    op.create_index(
        "ix_runs_automation_status_id", "automation_runs", ["automation_id", "status", "id"]
    )
    op.create_index(
        "ix_runs_automation_status_created",
        "automation_runs",
        ["automation_id", "status", "created_at", "id"],
    )
    op.create_table(
        "run_messages",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", ID, sa.ForeignKey("automation_runs.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_run_messages_run_id_id", "run_messages", ["run_id", "id"])


def downgrade() -> None:
    for table in (
        "run_messages",
        "automation_runs",
        "automations",
        "api_keys",
        "users",
        "settings",
    ):
        op.drop_table(table)
