"""Planning: expand a run's automation into its list of operations and commit it in one transaction.

The plan, its log lines and the move to `queued_for_execution` commit
together, so a planner that dies leaves nothing behind and the next one
plans again from scratch.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from conveyor.domain.automations import Automation, AutomationType, check_path
from conveyor.domain.errors import ConveyorError
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.engine.context import EngineContext
from conveyor.engine.leases import Claim
from conveyor.engine.operations import NO_FILE, Action, Kind, Operation
from conveyor.engine.patterns import compile_glob, format_date_pattern
from conveyor.engine.storage import PathEscape, Storage, identity_of
from conveyor.store import automations as automation_store
from conveyor.store import engine as engine_store
from conveyor.store import runs as run_store
from conveyor.store import triggers as trigger_store
from conveyor.store.engine import LeaseLost

log = logging.getLogger("conveyor.engine")


class PlanningFailed(Exception):
    """The automation cannot be planned; the message says why, for the run's log."""


@dataclass(frozen=True, slots=True)
class Plan:
    operations: list[Operation]
    # Log lines before the per-operation listing: what was matched and why.
    summary: list[str]


def _where(path: str) -> str:
    return f"'{path}'" if path else "the storage root"


def _plural(count: int, word: str) -> str:
    return f"1 {word}" if count == 1 else f"{count} {word}s"


def make_plan(
    automation: Automation, runtime: int, storage: Storage, only: list[str] | None = None
) -> Plan:
    """The operations `automation` performs at `runtime` on the storage as it is now.

    `only` (a file-event run's files, from the storage root) replaces the listing
    of `path`: the run acts on those of them that still exist and match `source`."""
    try:
        destinations = [
            format_date_pattern(d, runtime, automation.path_time_zone)
            for d in automation.destinations
        ]
    except ConveyorError as exc:
        raise PlanningFailed(exc.message) from None
    if automation.automation is AutomationType.CREATE_FOLDER:
        return _plan_folders(destinations)
    return _plan_files(automation, destinations, storage, only)


def _plan_folders(destinations: list[str]) -> Plan:
    ops = []
    for seq, raw in enumerate(destinations, start=1):
        folder = raw.rstrip("/")
        try:
            check_path(folder, "destination")
        except ConveyorError as exc:
            ops.append(Operation(seq, Kind.REFUSE, destination=raw, reason=exc.message.rstrip(".")))
            continue
        ops.append(Operation(seq, Kind.CREATE_FOLDER, destination=folder))
    return Plan(ops, [f"Plan: create {_plural(len(ops), 'folder')}."])


def _listed(only: list[str], base: str, storage: Storage) -> list[str]:
    """The listed paths under `base` that are files now (a destroyed one is not)."""
    found = []
    for path in sorted({p for p in only if not base or p.startswith(base + "/")}):
        try:
            if storage.size(path) is not None:
                found.append(path)
        except PathEscape:  # a link out of the root: never acted on, like a missing file
            continue
    return found


def _matching_files(
    automation: Automation, storage: Storage, only: list[str] | None = None
) -> tuple[list[str], int]:
    """Files under `path` matching `source` (relative to `path`), minus exclusions."""
    source = compile_glob(automation.source)
    exclude = compile_glob(automation.exclude_pattern) if automation.exclude_pattern else None
    base = automation.path
    start = "/".join(part for part in (base, source.prefix) if part)
    matched: list[str] = []
    excluded = 0
    listing = storage.walk(start, source.depth) if only is None else _listed(only, base, storage)
    for path in listing:
        relative = path[len(base) + 1 :] if base else path
        if not source.matches(relative):
            continue
        # A pattern without a folder part excludes by file name at any depth.
        name = relative.rpartition("/")[2]
        if exclude is not None and (
            exclude.matches(relative) or ("/" not in exclude.text and exclude.matches(name))
        ):
            excluded += 1
            continue
        matched.append(relative)
    matched.sort()
    return matched, excluded


def _target(destination: str, relative: str, automation: Automation) -> str:
    """Where a file (at `relative` under `path`) goes for one destination."""
    if destination.endswith("/"):
        tail = relative.rpartition("/")[2] if automation.flatten_destination_structure else relative
        target = destination + tail
    else:
        target = destination
    if automation.destination_replace_from:
        folder, slash, name = target.rpartition("/")
        name = name.replace(automation.destination_replace_from, automation.destination_replace_to)
        target = folder + slash + name
    return target


def _plan_files(
    automation: Automation, destinations: list[str], storage: Storage, only: list[str] | None
) -> Plan:
    try:
        matched, excluded = _matching_files(automation, storage, only)
    except PathEscape as exc:
        raise PlanningFailed(f"the automation's path {exc}") from None
    kind = automation.automation
    summary = (
        f"{_plural(len(matched), 'file')} under {_where(automation.path)} "
        f"match{'es' if len(matched) == 1 else ''} '{automation.source}'"
    )
    if excluded:
        summary += f" ({excluded} more excluded by '{automation.exclude_pattern}')"
    if kind is AutomationType.DELETE_FILE:
        base = automation.path
        seen: dict[str, str] = {}  # real paths of the folders looked at, for this plan
        ops = [
            _delete_operation(seq, f"{base}/{rel}" if base else rel, storage, seen)
            for seq, rel in enumerate(matched, start=1)
        ]
        return Plan(ops, [f"Plan: {summary}; delete {_plural(len(ops), 'file')}."])

    ops = []
    taken: dict[str, str] = {}
    folders: dict[str, str] = {}  # real paths of the folders looked at, for this plan
    for relative in matched:
        source = f"{automation.path}/{relative}" if automation.path else relative
        for index, destination in enumerate(destinations):
            # A move sends the file to its last destination and copies it to the others.
            last = index == len(destinations) - 1
            op_kind = Kind.MOVE if kind is AutomationType.MOVE_FILE and last else Kind.COPY
            target = _target(destination, relative, automation)
            ops.append(
                _file_operation(
                    len(ops) + 1, op_kind, source, target, automation, storage, taken, folders
                )
            )
    verb = "move" if kind is AutomationType.MOVE_FILE else "copy"
    return Plan(
        ops,
        [
            f"Plan: {summary}; {verb} each to {_plural(len(destinations), 'destination')}: "
            f"{_plural(len(ops), 'operation')}."
        ],
    )


def _delete_operation(
    seq: int, source: str, storage: Storage, folders: dict[str, str]
) -> Operation:
    """A delete, with the identity of the file it may remove (fencing)."""
    try:
        found = storage.lookup(source, folders, follow=False)
    except PathEscape:
        found = None  # refused when performed, as the path is checked again then
    return Operation(
        seq, Kind.DELETE, source=source, source_id=NO_FILE if found is None else identity_of(found)
    )


def _file_operation(
    seq: int,
    kind: Kind,
    source: str,
    target: str,
    automation: Automation,
    storage: Storage,
    taken: dict[str, str],
    folders: dict[str, str],
) -> Operation:
    """One copy or move, with the skip/overwrite decision taken from what is on disk now."""

    def refuse(reason: str) -> Operation:
        return Operation(seq, Kind.REFUSE, source=source, destination=target, reason=reason)

    try:
        check_path(target, "destination")
    except ConveyorError as exc:
        return refuse(exc.message.rstrip("."))
    if target == source:
        return refuse("the destination is the source file itself")
    if target in taken:
        return refuse(f"{taken[target]} already goes to {target} in this run")
    taken[target] = source
    try:
        found = storage.lookup(source, folders)
        existing = storage.lookup(target, folders)
    except PathEscape as exc:
        return refuse(str(exc))
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        return refuse("a folder exists at the destination")
    size = found.st_size if found is not None and stat.S_ISREG(found.st_mode) else None
    old_size = existing.st_size if existing is not None and stat.S_ISREG(existing.st_mode) else None
    if size is None:
        return refuse(f"{source} disappeared while the run was being planned")
    if old_size is None:
        action = Action.WRITE
    elif old_size == size and not (
        automation.overwrite_files and automation.always_overwrite_size_matching_files
    ):
        action = Action.SKIP
    else:
        action = Action.OVERWRITE
    # Fencing: the files this operation may remove or replace, as they are now.
    entry = storage.lookup(source, folders, follow=False) if kind is Kind.MOVE else None
    source_id = identity_of(entry) if entry is not None else None
    old_id = identity_of(existing) if existing is not None and action is Action.OVERWRITE else None
    return Operation(
        seq,
        kind,
        source=source,
        destination=target,
        action=action,
        size=size,
        old_size=old_size,
        source_id=source_id,
        old_id=old_id,
    )


# ------------------------------------------------------------------ the stage


def _gone_reason(automation: Automation | None, automation_id: int) -> str | None:
    if automation is None or automation.deleted:
        return f"Run failed: automation {automation_id} was deleted before the run started."
    if automation.disabled:
        return f"Run failed: automation {automation_id} was disabled before the run started."
    return None


def check_automation(engine: EngineContext, claim: Claim) -> Automation | None:
    """The claim's automation; if it was deleted or disabled, finish the run as failure."""
    with engine.db.read() as conn:
        automation = automation_store.get_automation(conn, claim.automation_id)
    reason = _gone_reason(automation, claim.automation_id)
    if reason is None:
        return automation

    def abort(conn: Connection) -> None:
        now = engine.clock.now()
        engine_store.hold_lease(
            conn, claim.run_id, claim.worker_id, claim.token, now + engine.lease_us
        )
        engine_store.abort_run(conn, claim.run_id, now, reason)

    try:
        engine.db.run_write(abort)
    except LeaseLost:
        log.warning("automation run %s: lease lost before it could be failed", claim.run_id)
    return None


def plan_run(engine: EngineContext, claim: Claim) -> None:
    """The planning stage for a claimed run: plan, then commit plan and stage change at once."""
    with engine.heartbeat(claim):
        automation = check_automation(engine, claim)
        if automation is None:
            return
        with engine.db.read() as conn:
            run = run_store.get_run(conn, claim.run_id)
            only = trigger_store.run_files(conn, claim.run_id)
        assert run is not None
        try:
            plan: Plan | None = make_plan(automation, run.runtime, engine.storage, only)
            failure = None
        except PlanningFailed as exc:
            plan, failure = None, f"Planning failed: {exc}."
        except OSError as exc:
            plan, failure = None, f"Planning failed: could not list files: {exc.strerror}."
        engine.hooks.before_plan_commit(claim.run_id)
        try:
            engine.db.run_write(lambda conn: _commit(conn, engine, claim, plan, failure))
        except LeaseLost:
            log.warning("automation run %s: lease lost during planning; plan dropped", claim.run_id)


def _commit(
    conn: Connection, engine: EngineContext, claim: Claim, plan: Plan | None, failure: str | None
) -> None:
    now = engine.clock.now()
    run_id = claim.run_id
    worker = claim.worker_id
    if plan is None:
        run_store.finish_run(
            conn,
            run_id,
            now,
            planning_failed=True,
            message=f"{failure} Run finished with status failure.",
            level=MessageLevel.ERROR,
        )
        engine_store.end_lease(conn, run_id, worker, claim.token)
        return
    lines = [(MessageLevel.INFO, text) for text in plan.summary]
    if not plan.operations:
        lines.append((MessageLevel.INFO, "Nothing to do: no files matched."))
        engine_store.insert_messages(conn, run_id, now, lines)
        run_store.finish_run(
            conn, run_id, now, message="Run finished with status success: 0 operations."
        )
        engine_store.end_lease(conn, run_id, worker, claim.token)
        return
    lines += [(MessageLevel.INFO, f"Planned #{op.seq}: {op.describe()}.") for op in plan.operations]
    engine_store.insert_operations(
        conn,
        run_id,
        [
            {
                "seq": op.seq,
                "kind": op.kind.value,
                "source": op.source,
                "destination": op.destination,
                "detail": op.detail(),
            }
            for op in plan.operations
        ],
    )
    engine_store.insert_messages(conn, run_id, now, lines)
    run_store.advance_stage(conn, run_id, RunStage.QUEUED_FOR_EXECUTION)
    # Stamped after the plan's rows are written: the run waits for a worker from
    # (about) here, not from the start of this transaction.
    queued_at = engine.clock.now()
    engine_store.end_lease(
        conn, run_id, worker, claim.token, RunStage.QUEUED_FOR_EXECUTION, queued_at
    )
