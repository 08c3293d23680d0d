"""More Files.com automation settings: recurring_days, holiday_region, always_serialize_jobs,
value.limit.

Revision ID: 0008_automation_settings
Revises: 0007_fencing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_automation_settings"
down_revision = "0007_fencing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (both databases support it with a constant default): a batch
    # would copy and drop `automations`, which the runs' foreign keys forbid on SQLite.
    op.add_column(
        "automations", sa.Column("recurring_days", sa.Text, nullable=False, server_default="")
    )
    op.add_column(
        "automations", sa.Column("holiday_region", sa.Text, nullable=False, server_default="")
    )
    op.add_column(
        "automations",
        sa.Column("always_serialize_jobs", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("automations", sa.Column("value_limit", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("automations") as batch:
        batch.drop_column("value_limit")
        batch.drop_column("always_serialize_jobs")
        batch.drop_column("holiday_region")
        batch.drop_column("recurring_days")
