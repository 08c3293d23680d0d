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
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
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
    # Files.com fields; lists are JSON text. Added by migration 0002.
    *(
        Column(name, Text, nullable=False, server_default="")
        for name in (
            "description",
            "path",
            "source",
            "destinations",
            "destination_replace_from",
            "destination_replace_to",
            "exclude_pattern",
            "path_time_zone",
            "schedule_days_of_week",
            "schedule_times_of_day",
            "schedule_time_zone",
            "trigger_actions",
        )
    ),
    *(
        Column(name, Boolean, nullable=False, server_default=false())
        for name in (
            "overwrite_files",
            "always_overwrite_size_matching_files",
            "flatten_destination_structure",
        )
    ),
    Column("interval", String(16), nullable=True),
    Column("recurring_day", Integer, nullable=True),
    Column("webhook_secret", String(64), nullable=True),
    # Migration 0008: more Files.com settings (recurring_days is JSON text).
    Column("recurring_days", Text, nullable=False, server_default=""),
    Column("holiday_region", Text, nullable=False, server_default=""),
    Column("always_serialize_jobs", Boolean, nullable=False, server_default=false()),
    Column("value_limit", Integer, nullable=True),
    Index("ix_automations_webhook_secret", "webhook_secret", unique=True),
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
    # Engine bookkeeping (migration 0002): what created the run, the worker's
    # lease, and when each stage began (the stage timeline).
    Column("trigger", String(16), nullable=False, server_default="manual"),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("lease_losses", Integer, nullable=False, server_default="0"),
    Column("planning_at", BigInteger, nullable=True),
    Column("queued_for_execution_at", BigInteger, nullable=True),
    Column("executing_at", BigInteger, nullable=True),
    # The fencing token (migration 0007): one more with every claim; every write
    # the lease holder makes is guarded on it.
    Column("lease_generation", BigInteger, nullable=False, server_default="0"),
    # Run control (migration 0010): a requested cancel, and the rerun and retry
    # lineage (Files.com's AutomationRun fields).
    Column("cancel_requested_at", BigInteger, nullable=True),
    Column("cancel_requested_by", String(255), nullable=True),
    Column("rerun_of_run_id", ID, nullable=True),
    Column("retry_of_run_id", ID, nullable=True),
    Column("retried_in_run_id", ID, nullable=True),
    Column("retry_at", BigInteger, nullable=True),
    Column("retried_at", BigInteger, nullable=True),
    Index("ix_runs_automation_id_id", "automation_id", "id"),
    Index("ix_runs_automation_created", "automation_id", "created_at", "id"),
    Index("ix_runs_automation_status_id", "automation_id", "status", "id"),
    Index("ix_runs_automation_status_created", "automation_id", "status", "created_at", "id"),
    Index("ix_runs_stage_id", "run_stage", "id"),
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

# The operations a run's planning produced, persisted before execution starts;
# each is done at most once: its outcome is committed with the run's count.
run_operations = Table(
    "run_operations",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("automation_runs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=True),
    Column("destination", Text, nullable=True),
    Column("state", String(12), nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("detail", Text, nullable=True),
    # Lease losses at which this operation was the one in flight (migration 0007).
    Column("lease_losses", Integer, nullable=False, server_default="0"),
    # Where its two log lines stand in the run's log (migration 0015): its
    # "Planned #N" line at planned_at after the run_messages row planned_after,
    # its outcome line at finished_at after the row logged_after. NULL: none from
    # this row (older rows' lines are run_messages rows). store.run_log reads them.
    Column("planned_at", BigInteger, nullable=True),
    Column("planned_after", BigInteger, nullable=True),
    Column("logged_after", BigInteger, nullable=True),
    UniqueConstraint("run_id", "seq", name="uq_run_operations_run_seq"),
    Index("ix_run_operations_run_state_seq", "run_id", "state", "seq"),
    Index("ix_run_operations_run_planned_seq", "run_id", "planned_after", "seq"),
    Index("ix_run_operations_run_logged_seq", "run_id", "logged_after", "seq"),
)

# Web UI sign-ins (migration 0003): the cookie holds a random token, the table
# only its SHA-256, so a copy of the database cannot be used to sign in. A
# session dies with its API key (revoked keys are checked on every request).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("csrf_token", String(64), nullable=False),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("api_key_id", ID, ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_web_sessions_expires_at", "expires_at"),
)

# Operating Conveyor (migration 0004). Each engine process beats here, so
# /readyz can tell whether any worker is alive, even an idle one.
workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Index("ix_workers_heartbeat_at", "heartbeat_at"),
)

# One token bucket per API key (keyed by the key's SHA-256, as api_keys stores
# it), shared by every API process on the database; `allowed` is the decision
# of the last UPDATE, read back with RETURNING.
rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("allowed", Boolean, nullable=False),
)

# Per-automation retention override in days (NULL: CONVEYOR_RETENTION_DAYS; 0: keep forever).
automations.append_column(Column("retention_days", Integer, nullable=True))

# Triggers (migration 0005). A scheduled run carries its slot; the unique index
# makes a second run for the same (automation, slot) impossible, so any number
# of schedulers can race. Other runs leave it NULL, which never conflicts.
automation_runs.append_column(Column("schedule_slot", BigInteger, nullable=True))
Index(
    "uq_runs_automation_slot",
    automation_runs.c.automation_id,
    automation_runs.c.schedule_slot,
    unique=True,
)

# Reruns (migration 0011): the node of the original a rerun starts from
# (conveyor.domain.runs.RerunNode); NULL for runs that are not reruns.
automation_runs.append_column(Column("rerun_from_node_id", String(32), nullable=True))

# What a trigger handed to a run: a webhook's request, or the files a file
# event run acts on (JSON in `payload`).
run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, ForeignKey("automation_runs.id"), primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("payload", Text, nullable=False),
)

# The scheduler's memory per scheduled automation (conveyor.domain.schedules.ScheduleState).
schedule_states = Table(
    "schedule_states",
    metadata,
    Column(
        "automation_id", ID, ForeignKey("automations.id"), primary_key=True, autoincrement=False
    ),
    Column("fingerprint", Text, nullable=False),
    Column("seen_modified_at", BigInteger, nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("next_slot", BigInteger, nullable=True),
    Column("last_slot", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_schedule_states_next_slot", "next_slot"),
)

# Paths compare by byte order for prefix ranges; PostgreSQL needs the "C" collation for that.
PATH = Text().with_variant(Text(collation="C"), "postgresql")

# The file watcher's last-seen snapshot: the folders it watches (`path` "" is
# the whole storage root) and every file under them, so changes made while no
# watcher ran are found on start-up by comparing the disk with this.
watch_roots = Table(
    "watch_roots",
    metadata,
    Column("path", PATH, primary_key=True),
    Column("since", BigInteger, nullable=False),
)
watched_files = Table(
    "watched_files",
    metadata,
    Column("path", PATH, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
)

# Runs per (automation, UTC day of created_at, status), kept current in the
# transactions that create and finish runs and prune them (store.runs,
# store.retention), so the automation page's chart reads at most 120 rows
# instead of counting every run of 30 days. Rows may hold 0 (readers skip them).
run_daily_counts = Table(
    "run_daily_counts",
    metadata,
    Column("automation_id", ID, primary_key=True, autoincrement=False),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Folder permissions (Files.com's Permission resource): `path` "" is the storage
# root; one row per (user, path, permission). Migration 0009 gave every
# non-admin user of an existing installation `full` on the root.
permissions = Table(
    "permissions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("path", PATH, nullable=False),
    Column("permission", String(16), nullable=False),
    Column("recursive", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("user_id", "path", "permission", name="uq_permissions_user_path"),
)

# Automatic retries (migration 0012): the automation's Files.com settings, and
# each run's attempt along its retry chain (0: not a retry). The scheduler
# finds due retries by ix_runs_retry_due, which holds only runs still waiting
# for theirs (retry_at and retried_in_run_id come with migration 0010).
automations.append_column(Column("retry_on_failure_number_of_attempts", Integer, nullable=True))
automations.append_column(Column("retry_on_failure_interval_in_minutes", Integer, nullable=True))
automation_runs.append_column(Column("retry_attempt", Integer, nullable=False, server_default="0"))
_RETRY_DUE = text("retry_at IS NOT NULL AND retried_in_run_id IS NULL")
Index(
    "ix_runs_retry_due",
    automation_runs.c.retry_at,
    automation_runs.c.id,
    sqlite_where=_RETRY_DUE,
    postgresql_where=_RETRY_DUE,
)

# The operator's view of all runs (migration 0013, docs/indexes.md): runs across
# automations in created_at order, optionally of some statuses and triggers, each
# (trigger, status) an ordered range merged with the others.
Index("ix_runs_created", automation_runs.c.created_at, automation_runs.c.id)
Index(
    "ix_runs_trigger_status_created",
    automation_runs.c.trigger,
    automation_runs.c.status,
    automation_runs.c.created_at,
    automation_runs.c.id,
)

# Bulk cancel and rerun (api/bulk.py): one row per (user, Idempotency-Key), written
# in the transaction that acts, so a repeated request answers the stored result
# and acts on nothing twice; `request_hash` is what the key was first used for.
bulk_requests = Table(
    "bulk_requests",
    metadata,
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("idempotency_key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("result", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
