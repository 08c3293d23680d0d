"""A run's per-file log lines come from its operation rows (issue 17).

`run_operations` gains where each operation's two log lines stand in the
run's log: `planned_at` and `planned_after` (its `Planned #N` line: when, and
the id of the `run_messages` row it follows) and `logged_after` (its outcome
line, shown at `finished_at` after that message row). Rows written before
have them NULL: their lines are `run_messages` rows, read as before. Two
indexes read the lines in log order, as `ix_run_messages_run_id_id` reads
the messages.

Revision ID: 0015_log_rows
Revises: 0013_all_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_log_rows"
down_revision = "0013_all_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("run_operations", sa.Column("planned_at", sa.BigInteger, nullable=True))
    op.add_column("run_operations", sa.Column("planned_after", sa.BigInteger, nullable=True))
    op.add_column("run_operations", sa.Column("logged_after", sa.BigInteger, nullable=True))
    op.create_index(
        "ix_run_operations_run_planned_seq", "run_operations", ["run_id", "planned_after", "seq"]
    )
    op.create_index(
        "ix_run_operations_run_logged_seq", "run_operations", ["run_id", "logged_after", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_run_operations_run_logged_seq", "run_operations")
    op.drop_index("ix_run_operations_run_planned_seq", "run_operations")
    op.drop_column("run_operations", "logged_after")
    op.drop_column("run_operations", "planned_after")
    op.drop_column("run_operations", "planned_at")
