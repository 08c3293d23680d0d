"""Folder permissions (Files.com's Permission resource).

What an upgraded installation's users get: every existing non-admin user is
given a recursive `full` permission on the storage root (path ""), so their
automations keep doing what they did before permissions existed; an admin can
narrow it with `conveyor permissions revoke` / `grant`. Users created after
this migration start with no permission and act only where an admin grants
them. Admins need no permission.

Revision ID: 0009_permissions
Revises: 0008_automation_settings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_permissions"
down_revision = "0008_automation_settings"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PATH = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "permissions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.Column("recursive", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("user_id", "path", "permission", name="uq_permissions_user_path"),
    )
    # Today's behaviour, made explicit: each existing non-admin keeps access to everything.
    op.execute(
        "INSERT INTO permissions (user_id, path, permission, recursive, created_at) "
        "SELECT id, '', 'full', true, created_at FROM users WHERE NOT is_admin"
    )


def downgrade() -> None:
    op.drop_table("permissions")
