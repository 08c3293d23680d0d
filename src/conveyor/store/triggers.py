"""Trigger queries: the scheduler's pass, webhook lookups, run inputs, the watched-files snapshot.

Every write that could be made by two processes at once is decided by the
database, not by the caller: a scheduled run is inserted with ON CONFLICT DO
NOTHING on (automation_id, schedule_slot), and a file change is claimed by
an upsert or delete that returns only the rows it actually changed, so two
watchers that see the same change create one run between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, delete, literal, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from conveyor.domain import runs as lifecycle
from conveyor.domain.automations import Automation, Trigger
from conveyor.domain.runs import MessageLevel
from conveyor.domain.schedules import SCHEDULED_TRIGGERS, ScheduleState
from conveyor.store import runs as run_store
from conveyor.store.automations import SELECT_COLUMNS, automation_from_row
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import run_inputs, schedule_states, watch_roots, watched_files
from conveyor.store.schema import run_messages as messages_t

# The engine listens on this channel (store.runs.create_run notifies it per run).
NOTIFY_CHANNEL = "conveyor_runs"
# Rows per multi-row statement: keeps SQLite under its bound-parameter limit.
CHUNK = 1000


def _insert(conn: Connection) -> Any:
    return sqlite_insert if conn.dialect.name == "sqlite" else pg_insert


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------ schedules

_STATE_COLUMNS = (
    schedule_states.c.fingerprint,
    schedule_states.c.seen_modified_at,
    schedule_states.c.since,
    schedule_states.c.next_slot,
    schedule_states.c.last_slot,
)


def _candidate_scope(now: int) -> list[ColumnElement[bool]]:
    state = schedule_states.c
    return [
        automations_t.c.trigger.in_([t.value for t in SCHEDULED_TRIGGERS]),
        automations_t.c.deleted.is_(False),
        or_(
            state.automation_id.is_(None),
            state.seen_modified_at != automations_t.c.last_modified_at,
            state.next_slot <= now,
        ),
    ]


def _with_state() -> Any:
    return automations_t.outerjoin(
        schedule_states, schedule_states.c.automation_id == automations_t.c.id
    )


def any_schedule_candidate(conn: Connection, now: int) -> bool:
    """Has a pass anything to do? One cheap query: most passes stop here."""
    query = select(automations_t.c.id).select_from(_with_state()).where(*_candidate_scope(now))
    return conn.execute(query.limit(1)).first() is not None


def schedule_candidates(
    conn: Connection, now: int, *, lock: bool = False
) -> list[tuple[Automation, ScheduleState | None]]:
    """Scheduled automations a pass must look at: due, changed since last seen, or never seen.

    One query, whatever the number of automations. `lock` (PostgreSQL) holds
    a share lock on the automations until commit, so an automation disabled
    concurrently is disabled either before this pass reads it or after the
    pass's runs exist, never in between.
    """
    query = (
        select(*SELECT_COLUMNS, *_STATE_COLUMNS)
        .select_from(_with_state())
        .where(*_candidate_scope(now))
        .order_by(automations_t.c.id)
    )
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update(read=True, of=automations_t)
    width = len(SELECT_COLUMNS)
    found = []
    for row in conn.execute(query):
        automation = automation_from_row(row[:width])
        fingerprint, seen, since, next_slot, last_slot = row[width:]
        remembered = None
        if fingerprint is not None:
            remembered = ScheduleState(fingerprint, seen, since, next_slot, last_slot)
        found.append((automation, remembered))
    return found


def schedule_state(conn: Connection, automation_id: int) -> ScheduleState | None:
    row = conn.execute(
        select(*_STATE_COLUMNS).where(schedule_states.c.automation_id == automation_id)
    ).first()
    return None if row is None else ScheduleState(*row)


@dataclass(frozen=True, slots=True)
class SlotRun:
    automation_id: int
    slot: int
    trigger: str
    message: str
    serialized: bool = False  # always_serialize_jobs: created `queued` (domain.runs.new_run)


def create_slot_runs(conn: Connection, now: int, wanted: Sequence[SlotRun]) -> list[int]:
    """Insert one run per (automation, slot) unless it exists; the ids of the new runs.

    Conflicts are skipped by the unique index, and only runs this call
    inserted get their first log line. Both are one statement executed for
    many rows: SQLAlchemy sends the rows in batches of 1,000 per round trip
    ("insertmanyvalues"), compiling the statement once.
    """
    if not wanted:
        return []
    text_of = {(item.automation_id, item.slot): item.message for item in wanted}
    rows = []
    for item in wanted:
        run = lifecycle.new_run(item.automation_id, now, item.slot, serialized=item.serialized)
        rows.append(
            {
                "automation_id": run.automation_id,
                "created_at": run.created_at,
                "runtime": run.runtime,
                "completed_at": None,
                "status": run.status.value,
                "run_stage": run.run_stage.value,
                "successful_operations": 0,
                "failed_operations": 0,
                "trigger": item.trigger,
                "schedule_slot": item.slot,
            }
        )
    statement = (
        _insert(conn)(runs_t)
        .on_conflict_do_nothing(index_elements=["automation_id", "schedule_slot"])
        .returning(runs_t.c.id, runs_t.c.automation_id, runs_t.c.schedule_slot)
    )
    created = []
    messages = []
    fresh: list[tuple[lifecycle.AutomationRun, dict[str, Any]]] = []
    trigger_of = {(item.automation_id, item.slot): item.trigger for item in wanted}
    serialized = {item.automation_id for item in wanted if item.serialized}
    for run_id, automation_id, slot in conn.execute(statement, rows):
        created.append(run_id)
        run = lifecycle.new_run(automation_id, now, slot, serialized=automation_id in serialized)
        run = replace(run, id=run_id)
        fresh.append((run, {"trigger": trigger_of[(automation_id, slot)], "schedule_slot": slot}))
        messages.append(
            {
                "run_id": run_id,
                "created_at": now,
                "level": MessageLevel.INFO.value,
                "message": text_of[(automation_id, slot)],
            }
        )
    if messages:
        conn.execute(messages_t.insert(), messages)
        run_store.record_created(conn, fresh)
        notify_new_runs(conn, created[-1])
    return sorted(created)


def notify_new_runs(conn: Connection, run_id: int) -> None:
    """Wake the engine's listeners in other processes (PostgreSQL), delivered at commit."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sql_text("SELECT pg_notify(:channel, :id)"),
            {"channel": NOTIFY_CHANNEL, "id": str(run_id)},
        )


_STATE_FIELDS = ("fingerprint", "seen_modified_at", "since", "next_slot", "last_slot", "updated_at")


def save_schedule_states(
    conn: Connection, now: int, states: Sequence[tuple[int, ScheduleState]]
) -> None:
    """Upsert the scheduler's memory for these automations: one statement, many rows,
    in id order (so concurrent schedulers lock rows in the same order)."""
    if not states:
        return
    statement = _insert(conn)(schedule_states)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["automation_id"],
        set_={name: excluded[name] for name in _STATE_FIELDS},
    )
    conn.execute(
        statement,
        [
            {
                "automation_id": automation_id,
                "fingerprint": state.fingerprint,
                "seen_modified_at": state.seen_modified_at,
                "since": state.since,
                "next_slot": state.next_slot,
                "last_slot": state.last_slot,
                "updated_at": now,
            }
            for automation_id, state in sorted(states, key=lambda item: item[0])
        ],
    )


# ------------------------------------------------------------- triggered runs


def find_webhook_automation(conn: Connection, secret: str) -> Automation | None:
    """The live webhook automation with this secret (not deleted); None if there is none."""
    row = conn.execute(
        select(*SELECT_COLUMNS).where(
            automations_t.c.webhook_secret == secret,
            automations_t.c.trigger == Trigger.WEBHOOK.value,
            automations_t.c.deleted.is_(False),
        )
    ).first()
    return None if row is None else automation_from_row(row)


def create_triggered_run(
    conn: Connection,
    automation_id: int,
    now: int,
    *,
    trigger: str,
    kind: str,
    payload: dict[str, Any],
    messages: Sequence[str],
) -> int:
    """A run with what its trigger handed it (`run_inputs`) and its first log lines."""
    run = run_store.create_run(conn, automation_id, now, trigger=trigger)
    conn.execute(
        run_inputs.insert().values(run_id=run.id, kind=kind, payload=orjson.dumps(payload).decode())
    )
    if messages:
        conn.execute(
            messages_t.insert().values(
                [
                    {"run_id": run.id, "created_at": now, "level": "info", "message": text}
                    for text in messages
                ]
            )
        )
    return run.id


def run_input(conn: Connection, run_id: int) -> tuple[str, dict[str, Any]] | None:
    """(kind, payload) that the run's trigger stored, or None (manual and scheduled runs)."""
    row = conn.execute(_RUN_INPUT, {"run_id": run_id}).first()
    if row is None:
        return None
    payload: dict[str, Any] = orjson.loads(row.payload)
    return row.kind, payload


# Built once: every claim for planning reads it.
_RUN_INPUT = select(run_inputs.c.kind, run_inputs.c.payload).where(
    run_inputs.c.run_id == bindparam("run_id", type_=run_inputs.c.run_id.type)
)


def copy_run_input(conn: Connection, from_run_id: int, to_run_id: int) -> None:
    """Give `to_run_id` the trigger inputs of `from_run_id` (its webhook values or
    event files), if it had any: the new run plans on the same inputs."""
    conn.execute(
        run_inputs.insert().from_select(
            ["run_id", "kind", "payload"],
            select(
                literal(to_run_id, type_=run_inputs.c.run_id.type),
                run_inputs.c.kind,
                run_inputs.c.payload,
            ).where(run_inputs.c.run_id == from_run_id),
        )
    )


def run_files(conn: Connection, run_id: int) -> list[str] | None:
    """The files a file-event run acts on (paths from the storage root); None for other runs.

    The planner plans on exactly these files (those still matching the
    automation's source) instead of listing the automation's folder.
    """
    found = run_input(conn, run_id)
    if found is None or found[0] != "files":
        return None
    return [entry["path"] for entry in found[1]["files"]]


# ------------------------------------------------------------------ file watch


@dataclass(frozen=True, slots=True)
class FileState:
    """A file as last seen: path from the storage root, size, mtime and inode.

    `inode` is stored as a signed 64-bit value (the watcher wraps large ones).
    """

    path: str
    size: int
    mtime_ns: int
    inode: int


def action_automations(conn: Connection) -> list[Automation]:
    """Enabled, not deleted automations with trigger `action`."""
    rows = conn.execute(
        select(*SELECT_COLUMNS)
        .where(
            automations_t.c.trigger == Trigger.ACTION.value,
            automations_t.c.deleted.is_(False),
            automations_t.c.disabled.is_(False),
        )
        .order_by(automations_t.c.id)
    )
    return [automation_from_row(row) for row in rows]


def list_watch_roots(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute(select(watch_roots.c.path))]


def _under(prefix: str) -> Any:
    """Rows at `prefix` or below it, as index ranges ('/' + 1 == '0' in byte order)."""
    column = watched_files.c.path
    if prefix == "":
        return column.is_not(None)
    return or_(column == prefix, and_(column >= prefix + "/", column < prefix + "0"))


def _read_files(conn: Connection, condition: Any) -> dict[str, FileState]:
    t = watched_files.c
    rows = conn.execute(select(t.path, t.size, t.mtime_ns, t.inode).where(condition))
    return {row.path: FileState(row.path, row.size, row.mtime_ns, row.inode) for row in rows}


def watched_under(conn: Connection, prefix: str) -> dict[str, FileState]:
    """The snapshot of the file or folder at `prefix` and everything below it."""
    return _read_files(conn, _under(prefix))


def watched_exact(conn: Connection, paths: Sequence[str]) -> dict[str, FileState]:
    """The snapshot of exactly these paths (those recorded)."""
    found: dict[str, FileState] = {}
    for chunk in _chunks(list(paths)):
        found.update(_read_files(conn, watched_files.c.path.in_(chunk)))
    return found


def _file_rows(files: Iterable[FileState], now: int) -> list[dict[str, Any]]:
    return [
        {"path": f.path, "size": f.size, "mtime_ns": f.mtime_ns, "inode": f.inode, "seen_at": now}
        for f in files
    ]


def add_watch_root(conn: Connection, root: str, files: Sequence[FileState], now: int) -> None:
    """Start watching `root` from the files on disk now (no events for them)."""
    insert = _insert(conn)
    conn.execute(
        insert(watch_roots)
        .values(path=root, since=now)
        .on_conflict_do_nothing(index_elements=["path"])
    )
    if files:
        statement = insert(watched_files).on_conflict_do_nothing(index_elements=["path"])
        conn.execute(statement, _file_rows(files, now))


def covers(outer: str, inner: str) -> bool:
    """Is the path `inner` at or below the folder `outer` ("" is the storage root)?"""
    return outer == "" or inner == outer or inner.startswith(outer + "/")


def drop_watch_root(conn: Connection, root: str, remaining: Sequence[str]) -> None:
    """Stop watching `root`; forget its files except those still under a remaining root."""
    conn.execute(delete(watch_roots).where(watch_roots.c.path == root))
    if any(covers(other, root) for other in remaining):
        return
    condition = _under(root)
    for other in remaining:
        if covers(root, other):
            condition = and_(condition, ~_under(other))
    conn.execute(delete(watched_files).where(condition))


def claim_present(conn: Connection, files: Sequence[FileState], now: int) -> set[str]:
    """Record these files as seen; the paths whose row this call inserted or changed.

    A path already recorded with the same size, mtime and inode is not
    returned: another watcher got there first, or nothing changed.
    """
    unique = list({f.path: f for f in files}.values())
    if not unique:
        return set()
    statement = _insert(conn)(watched_files)
    new = statement.excluded
    current = watched_files.c
    statement = statement.on_conflict_do_update(
        index_elements=["path"],
        set_={name: new[name] for name in ("size", "mtime_ns", "inode", "seen_at")},
        where=or_(
            current.size != new.size,
            current.mtime_ns != new.mtime_ns,
            current.inode != new.inode,
        ),
    ).returning(current.path)
    return {row[0] for row in conn.execute(statement, _file_rows(unique, now))}


def claim_absent(conn: Connection, paths: Sequence[str]) -> set[str]:
    """Forget these paths; the ones this call actually removed."""
    claimed: set[str] = set()
    for chunk in _chunks(sorted(set(paths))):
        result = conn.execute(
            delete(watched_files)
            .where(watched_files.c.path.in_(chunk))
            .returning(watched_files.c.path)
        )
        claimed.update(row[0] for row in result)
    return claimed
