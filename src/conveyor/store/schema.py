"""Table definitions (SQLAlchemy Core). Migrations create them; queries use them.

Times are BIGINT microseconds since the Unix epoch, UTC (see conveyor.clock).
The indexes on automation_runs are chosen so that every allowed list query
(SPEC 2.1: one automation, optional status filter, one sort field, id
tie-break) is an index range scan; docs/indexes.md maps query to index.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY is the rowid.
ID = BigInteger().with_variant(Integer(), "sqlite")

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

automations = Table(
    "automations",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False, default=""),
    Column("automation", String(32), nullable=False, default="create_folder"),
    Column("trigger", String(32), nullable=False, default="manual"),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_modified_at", BigInteger, nullable=False),
)

automation_runs = Table(
    "automation_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("automation_id", ID, ForeignKey("automations.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("runtime", BigInteger, nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("run_stage", String(24), nullable=False),
    Column("successful_operations", BigInteger, nullable=False, default=0),
    Column("failed_operations", BigInteger, nullable=False, default=0),
    Index("ix_runs_automation_id_id", "automation_id", "id"),
    Index("ix_runs_automation_created", "automation_id", "created_at", "id"),
    Index("ix_runs_automation_status_id", "automation_id", "status", "id"),
    Index("ix_runs_automation_status_created", "automation_id", "status", "created_at", "id"),
)

run_messages = Table(
    "run_messages",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("automation_runs.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_run_messages_run_id_id", "run_id", "id"),
)
