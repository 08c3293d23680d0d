"""Planning: expand a run's automation into its list of operations and commit it.

A plan has at most `max_operations_per_run` operations
(CONVEYOR_MAX_OPERATIONS_PER_RUN); a larger one fails planning with the count
and the limit, before the operations are built. A plan of up to PLAN_CHUNK
operations, its log lines and the move to `queued_for_execution` commit
together. A larger plan commits PLAN_CHUNK operations (and their log lines)
per transaction, each guarded on the lease, and the move in the last one; on
SQLite it pauses between chunks for longer than a writer that began waiting
during the chunk sleeps in SQLite's busy handler (`chunk_pause`), so no other
writer waits for more than about one chunk. A
planner that dies mid-plan leaves the run in `planning`; the next one
discards the operations saved so far and plans again from scratch.
"""

from __future__ import annotations

import logging
import stat
import time
from dataclasses import dataclass, replace
from datetime import UTC

from sqlalchemy.engine import Connection

from conveyor.domain.automations import (
    Automation,
    AutomationType,
    Trigger,
    check_path,
    resolve_time_zone,
)
from conveyor.domain.destinations import (
    Context,
    Piece,
    RenderError,
    check_parameters,
    climb,
    parse,
    render,
    split_relative,
    uses,
    webhook_params,
)
from conveyor.domain.errors import ConveyorError
from conveyor.domain.permissions import automation_refusal
from conveyor.domain.runs import AutomationRun, MessageLevel, RerunNode, RunStage
from conveyor.engine import access
from conveyor.engine.context import EngineContext
from conveyor.engine.leases import Claim, Loaded, execution_started
from conveyor.engine.operations import NO_FILE, Action, Kind, Operation
from conveyor.engine.patterns import compile_glob
from conveyor.engine.storage import PathEscape, Storage, identity_of, is_utf8, shown
from conveyor.store import engine as engine_store
from conveyor.store import run_control, run_log
from conveyor.store import runs as run_store
from conveyor.store.engine import LeaseLost

log = logging.getLogger("conveyor.engine")
_GLOB_CHARS = frozenset("*?[")
# Operations committed per transaction of a large plan (see the module docstring and
# bench/plan_commit.py for the writer waits it gives).
PLAN_CHUNK = 2000
# On SQLite, the pause after each chunk is longer than a writer that began waiting for
# the database lock during the chunk's transaction sleeps before it looks again, so it
# gets its turn: SQLite's busy handler sleeps these many milliseconds in turn
# (sqliteDefaultBusyCallback), then 100 ms at a time.
_BUSY_SLEEPS_MS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50)
_BUSY_SLEEP_AFTER_MS = 100


def chunk_pause(held: float) -> float:
    """The pause after a write transaction that kept the database `held` seconds: the
    sleep of SQLite's busy handler for a writer that has waited that long (the longest
    any writer that began waiting during it can be in), plus a tenth and at least 5 ms
    for its wakeup to be late. 0.11 s after a transaction of 0.23 s or more."""
    waited = 0
    sleep = _BUSY_SLEEP_AFTER_MS
    for ms in _BUSY_SLEEPS_MS:
        if (waited + ms) / 1000 > held:
            sleep = ms
            break
        waited += ms
    return sleep / 1000 + max(0.005, sleep / 10_000)


class PlanningFailed(Exception):
    """The automation cannot be planned; the message says why, for the run's log."""


@dataclass(frozen=True, slots=True)
class Plan:
    operations: list[Operation]
    # Log lines before the per-operation listing: what was matched and why.
    summary: list[str]


def describe_error(exc: BaseException) -> str:
    """An unexpected exception, for a run's log: its type and (bounded) message."""
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _where(path: str) -> str:
    return f"'{path}'" if path else "the storage root"


def _plural(count: int, word: str) -> str:
    return f"1 {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True, slots=True)
class _Template:
    """A destination as parsed once per plan: how far up it climbs (None: absolute), its tokens."""

    text: str
    ups: int | None
    pieces: tuple[Piece, ...]


def _templates(automation: Automation) -> tuple[list[_Template], tuple[Piece, ...]]:
    templates = []
    for text in automation.destinations:
        ups, rest = split_relative(text)
        templates.append(_Template(text, ups, parse(rest)))
    replace_to = parse(automation.destination_replace_to, "destination_replace_to")
    return templates, replace_to


def make_plan(
    automation: Automation,
    runtime: int,
    storage: Storage,
    only: list[str] | None = None,
    params: dict[str, str] | None = None,
    *,
    max_operations: int | None = None,
) -> Plan:
    """The operations `automation` performs at `runtime` on the storage as it is now.

    `only` (a file-event run's files, from the storage root) replaces the listing
    of `path`: the run acts on those of them that still exist and match `source`.
    `params` are a webhook run's parameters, for `%u-NAME` tokens."""
    try:
        zone = resolve_time_zone(automation.path_time_zone) if automation.path_time_zone else UTC
        templates, replace_to = _templates(automation)
        used = [name for t in templates for name in uses(t.pieces, "param")]
        used += uses(replace_to, "param")
        if params is not None and used:
            check_parameters(params, used)
    except ConveyorError as exc:
        raise PlanningFailed(exc.message.rstrip(".")) from None
    except RenderError as exc:
        raise PlanningFailed(exc.message) from None
    base = Context(runtime=runtime, zone=zone, params=params)
    if automation.automation is AutomationType.CREATE_FOLDER:
        return _plan_folders(automation, templates, base, storage)
    return _plan_files(automation, templates, replace_to, base, storage, only, max_operations)


def _base_folders(automation: Automation, storage: Storage) -> list[str]:
    """The folders `path` names: itself, or every existing folder its glob matches.

    PlanningFailed when there is none: a run whose folder is missing is not a
    green run with nothing to do.
    """
    path = automation.path
    if not _GLOB_CHARS & set(path):
        if path and not storage.is_folder(path):
            raise PlanningFailed(f"the folder '{path}' (the automation's path) does not exist")
        return [path]
    glob = compile_glob(path)
    found = [f for f in storage.walk_folders(glob.prefix, glob.depth) if glob.matches(f)]
    if not found:
        raise PlanningFailed(f"no folder matches the automation's path '{path}'")
    return found


def _plan_folders(
    automation: Automation, templates: list[_Template], base: Context, storage: Storage
) -> Plan:
    """create_folder: each destination, under each folder `path` names (the root if empty)."""
    glob = _GLOB_CHARS & set(automation.path)
    try:
        parents = _base_folders(automation, storage) if glob else [automation.path]
    except PathEscape as exc:
        raise PlanningFailed(f"the automation's path {exc}") from None
    ops: list[Operation] = []
    for parent in parents:
        for template in templates:
            seq = len(ops) + 1
            try:
                placed = _place(template, base, parent)
                if template.ups is None and parent:
                    placed = f"{parent}/{placed}"  # `path` is the parent of the folders made
                folder = placed.rstrip("/")
                check_path(folder, "destination")
            except RenderError as exc:
                ops.append(_refused(seq, None, template.text, exc.message))
                continue
            except ConveyorError as exc:
                ops.append(_refused(seq, None, template.text, exc.message.rstrip(".")))
                continue
            ops.append(Operation(seq, Kind.CREATE_FOLDER, destination=folder))
    where = f" under {_plural(len(parents), 'folder')} matching '{automation.path}'" if glob else ""
    return Plan(ops, [f"Plan: create {_plural(len(ops), 'folder')}{where}."])


def _rerun_plan(plan: Plan, scope: run_control.RerunScope) -> Plan:
    """Keep the operations planned now that the rerun's original had in the states its
    node keeps (same source and destination), numbered again from 1."""
    kept = [op for op in plan.operations if (op.source, op.destination) in scope.pairs]
    operations = [replace(op, seq=seq) for seq, op in enumerate(kept, start=1)]
    what = "failed in" if scope.node is RerunNode.FAILED_OPERATIONS else "were planned by"
    gone = len(scope.pairs) - len(kept)
    text = (
        f"Rerun of run {scope.original_id} from node {scope.node.value}: "
        f"{len(kept)} of the {_plural(len(plan.operations), 'operation')} planned now "
        f"{what} run {scope.original_id}; only those are performed."
    )
    if gone > 0:
        text += (
            f" {_plural(gone, 'operation')} of run {scope.original_id} "
            "have no counterpart now (the file is gone or no longer matches)."
        )
    return Plan(operations, [*plan.summary, text])


def _refused(seq: int, source: str | None, destination: str, reason: str) -> Operation:
    return Operation(seq, Kind.REFUSE, source=source, destination=destination, reason=reason)


def _place(template: _Template, context: Context, folder: str) -> str:
    """The rendered destination: relative ones joined to `folder`, absolute ones as they are."""
    rendered = render(template.pieces, context)
    if template.ups is None:
        return rendered
    start = climb(folder, template.ups, template.text)
    if not rendered:
        return start + "/" if start else ""
    return f"{start}/{rendered}" if start else rendered


def _in_base(path: str, automation: Automation) -> tuple[str, str] | None:
    """For a file-event run's file: (the folder of `path` it is under, the rest), or None."""
    if not _GLOB_CHARS & set(automation.path):
        base = automation.path
        if base and not path.startswith(base + "/"):
            return None
        return base, path[len(base) + 1 :] if base else path
    glob = compile_glob(automation.path)
    parts = path.split("/")
    for cut in range(1, len(parts)):
        folder = "/".join(parts[:cut])
        if glob.matches(folder):
            return folder, "/".join(parts[cut:])
    return None


def _listed(only: list[str], automation: Automation, storage: Storage) -> list[tuple[str, str]]:
    """The listed paths under `path` that are files now (a destroyed one is not)."""
    found = []
    for path in sorted(set(only)):
        placed = _in_base(path, automation)
        if placed is None:
            continue
        try:
            if storage.size(path) is not None:
                found.append(placed)
        except PathEscape:  # a link out of the root: never acted on, like a missing file
            continue
    return found


def _matching_files(
    automation: Automation, storage: Storage, only: list[str] | None = None
) -> tuple[list[tuple[str, str]], int, list[str]]:
    """(folder, path relative to it) of the files under `path` matching `source`, minus
    exclusions; how many were excluded; the matching paths skipped for a name that is
    not valid UTF-8."""
    source = compile_glob(automation.source)
    exclude = compile_glob(automation.exclude_pattern) if automation.exclude_pattern else None
    if only is None:
        listing = []
        for base in _base_folders(automation, storage):
            start = "/".join(part for part in (base, source.prefix) if part)
            listing += [
                (base, path[len(base) + 1 :] if base else path)
                for path in storage.walk(start, source.depth)
            ]
    else:
        listing = _listed(only, automation, storage)
    matched: list[tuple[str, str]] = []
    excluded = 0
    unreadable: list[str] = []
    for base, relative in listing:
        if not source.matches(relative):
            continue
        if not is_utf8(relative) or not is_utf8(base):  # never acted on; the plan says so
            unreadable.append(f"{base}/{relative}" if base else relative)
            continue
        # A pattern without a folder part excludes by file name at any depth.
        name = relative.rpartition("/")[2]
        if exclude is not None and (
            exclude.matches(relative) or ("/" not in exclude.text and exclude.matches(name))
        ):
            excluded += 1
            continue
        matched.append((base, relative))
    matched.sort()
    return matched, excluded, unreadable


def _newest(
    matched: list[tuple[str, str]], limit: int, storage: Storage, folders: dict[str, str]
) -> list[tuple[str, str]]:
    """value.limit: the `limit` most recently modified files (ties: by path), in path order."""
    if len(matched) <= limit:
        return matched
    stamped = []
    for base, relative in matched:
        source = f"{base}/{relative}" if base else relative
        try:
            info = storage.lookup(source, folders)
        except PathEscape:
            info = None
        stamped.append((-(info.st_mtime_ns if info is not None else 0), source, (base, relative)))
    stamped.sort()
    return sorted(item for _, _, item in stamped[:limit])


def _target(
    template: _Template,
    replace_to: tuple[Piece, ...],
    base: str,
    relative: str,
    automation: Automation,
    context: Context,
) -> str:
    """Where a file (at `relative` under the folder `base`) goes for one destination."""
    source = f"{base}/{relative}" if base else relative
    here = Context(
        runtime=context.runtime,
        zone=context.zone,
        params=context.params,
        trigger_path=source if automation.trigger is Trigger.ACTION else None,
        source_path=source,
    )
    destination = _place(template, here, source.rpartition("/")[0])
    if destination.endswith("/"):
        tail = relative.rpartition("/")[2] if automation.flatten_destination_structure else relative
        target = destination + tail
    else:
        target = destination
    if automation.destination_replace_from:
        folder, slash, name = target.rpartition("/")
        name = name.replace(automation.destination_replace_from, render(replace_to, here))
        target = folder + slash + name
    return target


def _plan_files(
    automation: Automation,
    templates: list[_Template],
    replace_to: tuple[Piece, ...],
    context: Context,
    storage: Storage,
    only: list[str] | None,
    max_operations: int | None = None,
) -> Plan:
    try:
        matched, excluded, unreadable = _matching_files(automation, storage, only)
    except PathEscape as exc:
        raise PlanningFailed(f"the automation's path {exc}") from None
    kind = automation.automation
    summary = (
        f"{_plural(len(matched), 'file')} under {_where(automation.path)} "
        f"match{'es' if len(matched) == 1 else ''} '{automation.source}'"
    )
    if excluded:
        summary += f" ({excluded} more excluded by '{automation.exclude_pattern}')"
    if unreadable:
        names = ", ".join(shown(p) for p in sorted(unreadable)[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        summary += (
            f" ({_plural(len(unreadable), 'more file')} skipped: the name is not valid UTF-8: "
            f"{names}{more})"
        )
    folders: dict[str, str] = {}  # real paths of the folders looked at, for this plan
    limit = automation.value_limit
    if limit is not None and len(matched) > limit:
        matched = _newest(matched, limit, storage, folders)
        summary += f"; value.limit {limit}: the newest {_plural(limit, 'file')} only"
    count = len(matched) * (1 if kind is AutomationType.DELETE_FILE else len(templates))
    if max_operations is not None and count > max_operations:
        raise PlanningFailed(
            f"{_plural(len(matched), 'file')} under {_where(automation.path)} match "
            f"'{automation.source}', which makes {count:,} operations, more than the "
            f"{max_operations:,} one run may have (CONVEYOR_MAX_OPERATIONS_PER_RUN); "
            "narrow the automation's path or source, or split it"
        )
    if kind is AutomationType.DELETE_FILE:
        ops = [
            _delete_operation(seq, f"{base}/{rel}" if base else rel, storage, folders)
            for seq, (base, rel) in enumerate(matched, start=1)
        ]
        return Plan(ops, [f"Plan: {summary}; delete {_plural(len(ops), 'file')}."])

    ops = []
    taken: dict[str, str] = {}
    for base, relative in matched:
        source = f"{base}/{relative}" if base else relative
        for index, template in enumerate(templates):
            # A move sends the file to its last destination and copies it to the others.
            last = index == len(templates) - 1
            op_kind = Kind.MOVE if kind is AutomationType.MOVE_FILE and last else Kind.COPY
            seq = len(ops) + 1
            try:
                target = _target(template, replace_to, base, relative, automation, context)
            except RenderError as exc:
                ops.append(_refused(seq, source, template.text, exc.message))
                continue
            ops.append(
                _file_operation(seq, op_kind, source, target, automation, storage, taken, folders)
            )
    verb = "move" if kind is AutomationType.MOVE_FILE else "copy"
    return Plan(
        ops,
        [
            f"Plan: {summary}; {verb} each to {_plural(len(templates), 'destination')}: "
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
    elif not automation.overwrite_files or (
        old_size == size and not automation.always_overwrite_size_matching_files
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
    """The claim's automation (read by the claim); if it was deleted or disabled,
    finish the run as failure."""
    assert claim.loaded is not None
    automation = claim.loaded.automation
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


def plan_run(engine: EngineContext, claim: Claim, *, hand_off: bool = False) -> Claim | None:
    """The planning stage for a claimed run: plan, then commit plan and stage change at once.

    With `hand_off`, a plan committed in one transaction also moves the run on to
    executing under the same lease: the claim for its execution is returned, for this
    worker to execute the run straight away (None when the run finished, was queued
    for execution, or was left to others)."""
    with engine.heartbeat(claim):
        automation = check_automation(engine, claim)
        if automation is None:
            return None
        assert claim.loaded is not None
        run, inputs, grants = claim.loaded.run, claim.loaded.inputs, claim.loaded.grants
        scope = claim.loaded.scope
        assert run is not None
        kind, payload = inputs if inputs is not None else (None, {})
        only = [entry["path"] for entry in payload["files"]] if kind == "files" else None
        if scope is not None:  # a rerun keeping some of its original's operations
            wanted = set(scope.sources)
            only = scope.sources if only is None else [p for p in only if p in wanted]
        params = webhook_params(payload) if kind == "webhook" else None
        if kind == "manual":
            params = dict(payload["values"])
        try:
            plan: Plan | None = make_plan(
                automation,
                run.runtime,
                engine.storage,
                only,
                params,
                max_operations=engine.settings.max_operations_per_run,
            )
            failure = None
            if grants is not None and plan is not None:  # a non-admin's: folder permissions
                denied = automation_refusal(automation, grants)
                if denied is not None:
                    raise PlanningFailed(f"permission denied: {denied}")
                plan = Plan(access.restrict(plan.operations, grants), plan.summary)
            if scope is not None and plan is not None:
                plan = _rerun_plan(plan, scope)
        except PlanningFailed as exc:
            plan, failure = None, f"Planning failed: {exc}."
        except OSError as exc:
            plan, failure = None, f"Planning failed: could not list files: {exc.strerror}."
        except Exception as exc:  # a bug or a file it did not expect: say what, once
            log.exception("automation run %s: planning failed unexpectedly", claim.run_id)
            plan, failure = None, f"Planning failed unexpectedly: {describe_error(exc)}."
        engine.hooks.before_plan_commit(claim.run_id)
        try:
            if plan is None or len(plan.operations) <= PLAN_CHUNK:
                return engine.db.run_write(
                    lambda conn: _commit(conn, engine, claim, plan, failure, hand_off)
                )
            _commit_in_chunks(engine, claim, plan)
        except LeaseLost:
            log.warning("automation run %s: lease lost during planning; plan dropped", claim.run_id)
        return None


def _canceled(
    conn: Connection,
    engine: EngineContext,
    claim: Claim,
    now: int,
    run: AutomationRun | None = None,
) -> bool:
    """If the run's cancel was requested, finish it as canceled instead of saving the
    plan (dropping what earlier chunks saved) and end the lease; True if so. `run`: the
    run as this transaction read it (else it is read)."""
    if run is None:
        run = run_store.get_run(conn, claim.run_id)
    if run is None or run.cancel_requested_at is None:
        return False
    engine_store.discard_operations(conn, claim.run_id)
    where = f"worker {claim.worker_id} stopped at the end of planning; the plan was not saved"
    run_control.finish_canceled(conn, claim.run_id, now, where)
    engine_store.end_lease(conn, claim.run_id, claim.worker_id, claim.token)
    return True


def _commit(
    conn: Connection,
    engine: EngineContext,
    claim: Claim,
    plan: Plan | None,
    failure: str | None,
    hand_off: bool,
) -> Claim | None:
    """Commit the plan; with `hand_off` a plan with operations moves on to executing
    under this lease, and the claim for that is returned, else it is queued."""
    now = engine.clock.now()
    run_id = claim.run_id
    worker = claim.worker_id
    run = run_store.get_run(conn, run_id, for_update=True)
    if _canceled(conn, engine, claim, now, run):
        return None
    if claim.resumed:  # only a planner that died mid-plan can have left operations
        earlier: list[tuple[MessageLevel, str]] = []
        _discard_earlier(conn, run_id, now, earlier)
        if earlier:
            engine_store.insert_messages(conn, run_id, now, earlier)
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
        return None
    lines = [(MessageLevel.INFO, text) for text in plan.summary]
    if not plan.operations:
        lines.append((MessageLevel.INFO, "Nothing to do: no files matched."))
        engine_store.insert_messages(conn, run_id, now, lines)
        run_store.finish_run(
            conn, run_id, now, message="Run finished with status success: 0 operations."
        )
        engine_store.end_lease(conn, run_id, worker, claim.token)
        return None
    if not hand_off:
        _insert_chunk(conn, run_id, now, plan.operations, lines)
        _queue(conn, engine, claim)
        return None
    started = (MessageLevel.INFO, execution_started(worker, len(plan.operations)))
    _insert_chunk(conn, run_id, now, plan.operations, lines, [started])
    return _start_execution(conn, engine, claim, run)


def _commit_in_chunks(engine: EngineContext, claim: Claim, plan: Plan) -> None:
    """A large plan: PLAN_CHUNK operations per transaction, each guarded on the lease;
    the last one also queues the run for execution."""
    operations = plan.operations
    for start in range(0, len(operations), PLAN_CHUNK):
        chunk = operations[start : start + PLAN_CHUNK]
        first = start == 0
        last = start + PLAN_CHUNK >= len(operations)

        def work(
            conn: Connection, chunk: list[Operation] = chunk, first: bool = first, last: bool = last
        ) -> bool:
            now = engine.clock.now()
            engine_store.hold_lease(
                conn, claim.run_id, claim.worker_id, claim.token, now + engine.lease_us
            )
            if _canceled(conn, engine, claim, now):
                return True
            lines: list[tuple[MessageLevel, str]] = []
            if first:
                lines = [(MessageLevel.INFO, text) for text in plan.summary]
                _discard_earlier(conn, claim.run_id, now, lines)
            _insert_chunk(conn, claim.run_id, now, chunk, lines)
            if last:
                _queue(conn, engine, claim)
            return False

        started = time.monotonic()
        if engine.db.run_write(work):
            return
        if not last and engine.db.is_sqlite:
            time.sleep(chunk_pause(time.monotonic() - started))


def _discard_earlier(
    conn: Connection, run_id: int, now: int, lines: list[tuple[MessageLevel, str]]
) -> None:
    """Remove what a planner that died mid-plan saved of its plan, saying so in the log."""
    discarded = engine_store.discard_operations(conn, run_id)
    if discarded:
        lines.insert(
            0,
            (
                MessageLevel.WARNING,
                f"The {_plural(discarded, 'operation')} an interrupted planning saved "
                "were discarded; the run is planned again.",
            ),
        )


def _insert_chunk(
    conn: Connection,
    run_id: int,
    now: int,
    operations: list[Operation],
    lines: list[tuple[MessageLevel, str]],
    after: list[tuple[MessageLevel, str]] | None = None,
) -> None:
    """Save operations with the log lines before them and `after` them; each
    operation's own `Planned #N` line is its row, placed after the run's last message
    row at this point (store.run_log), so `after` lines follow the Planned lines."""
    engine_store.insert_messages(conn, run_id, now, lines)
    anchor = run_log.anchor(conn, run_id)
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
                "planned_at": now,
                "planned_after": anchor,
            }
            for op in operations
        ],
    )
    if after:
        engine_store.insert_messages(conn, run_id, now, after)


def _start_execution(
    conn: Connection, engine: EngineContext, claim: Claim, run: AutomationRun | None
) -> Claim:
    """Move the planned run on to executing, keeping this worker's lease (same fencing
    token): one transaction less than queueing it for execution and claiming it again,
    and no wait for a worker. Its log line is written with the plan's, before this.

    What the claim for execution would read, the caller has: the automation and
    grants from the claim for planning (this transaction's, a plan ago), and the
    operations just inserted, read back last (a plain statement, so a worker stalled
    before its commit is cut off by idle_in_transaction_session_timeout)."""
    assert claim.loaded is not None
    run_store.advance_stages(
        conn, claim.run_id, (RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING), current=run
    )
    now = engine.clock.now()
    until = now + engine.lease_us
    engine_store.keep_lease_to_execute(conn, claim.run_id, claim.worker_id, claim.token, now, until)
    rows = engine_store.pending_operations(conn, claim.run_id)
    return replace(
        claim,
        stage=RunStage.EXECUTING,
        resumed=False,  # a fresh execution, whatever happened to the planning
        lost=False,
        expires_at=until,
        loaded=Loaded(claim.loaded.automation, claim.loaded.grants, pending=rows),
    )


def _queue(conn: Connection, engine: EngineContext, claim: Claim) -> None:
    run_id = claim.run_id
    worker = claim.worker_id
    run_store.advance_stage(conn, run_id, RunStage.QUEUED_FOR_EXECUTION)
    # Stamped after the plan's rows are written: the run waits for a worker from
    # (about) here, not from the start of this transaction.
    queued_at = engine.clock.now()
    engine_store.end_lease(
        conn, run_id, worker, claim.token, RunStage.QUEUED_FOR_EXECUTION, queued_at
    )
