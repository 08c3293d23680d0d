"""Cancel and rerun in the database: the one place the API, bulk actions, web UI
and engine change a run for them (decisions in `conveyor.domain.runs`).

Every function works in the caller's transaction and checks nothing about
who asks: the caller has already found the run visible to its user.

- `request_cancel`: a queued run finishes `canceled` at once (its planned
  operations, if any, stay pending: not performed); a run being planned or executed
  records the request, which its worker honours at the next operation
  boundary (`finish_canceled`), or the worker taking it over does.
- `create_rerun`: a new run of the same automation with the same runtime and
  trigger inputs, linked by `rerun_of_run_id`, starting from a node of the
  original (`rerun_from_node_id`); `rerun_scope` is what its planner keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from conveyor.clock import to_rfc3339
from conveyor.domain import errors
from conveyor.domain import runs as lifecycle
from conveyor.domain.runs import AutomationRun, MessageLevel, RerunNode
from conveyor.store import engine as engine_store
from conveyor.store import runs as run_store
from conveyor.store import triggers
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import run_operations as ops_t


def _existing(conn: Connection, run_id: int) -> AutomationRun:
    run = run_store.get_run(conn, run_id, for_update=True)
    if run is None:
        raise errors.NotFound(f"Automation Run {run_id} not found.")
    return run


def _plural(count: int, word: str) -> str:
    return f"1 {word}" if count == 1 else f"{count} {word}s"


def request_cancel(conn: Connection, run_id: int, *, by: str, now: int) -> AutomationRun:
    """Cancel the run for the user named `by` (see the module docstring); the run after.

    NotFound if it does not exist; AlreadyCompleted (nothing changed) if it
    finished. A repeated request while one is pending returns the run as it is.
    """
    current = _existing(conn, run_id)
    before, after = run_store.change_run(
        conn, run_id, lambda run: lifecycle.request_cancel(run, now, by)
    )
    if after == before:
        return after
    when = to_rfc3339(now)
    if after.finished:
        abandoned = engine_store.not_performed(conn, run_id)
        engine_store.clear_lease(conn, run_id)
        rest = f" {_plural(abandoned, 'planned operation')} not performed." if abandoned else ""
        text = (
            f"Run canceled by {by} at {when} while {current.run_stage.value}: "
            f"it finished with status canceled.{rest}"
        )
        level = MessageLevel.WARNING
    else:
        text = (
            f"Cancel requested by {by} at {when} during {current.run_stage.value}: the run "
            "stops at the next operation boundary."
        )
        level = MessageLevel.INFO
    engine_store.insert_messages(conn, run_id, now, [(level, text)])
    return after


def finish_canceled(conn: Connection, run_id: int, now: int, where: str) -> AutomationRun:
    """Finish a run whose cancel was requested (the engine, at an operation boundary):
    what is still pending stays pending (not performed: the run is finished, and
    touching each such operation would make the finish cost in proportion to what
    is left), the counts stay as committed, and the last log line says who
    canceled it, when, and `where` the worker stopped.

    The caller guards the transaction on its lease (and ends the lease)."""
    abandoned = engine_store.not_performed(conn, run_id)
    _, run = run_store.change_run(conn, run_id, lambda run: lifecycle.finish_canceled(run, now))
    text = (
        f"Run canceled by {run.cancel_requested_by} (requested at "
        f"{to_rfc3339(run.cancel_requested_at)}); {where}: "
        f"{_plural(run.successful_operations, 'operation')} succeeded, "
        f"{run.failed_operations} failed, {abandoned} not performed. "
        "Run finished with status canceled."
    )
    engine_store.insert_messages(conn, run_id, now, [(MessageLevel.WARNING, text)])
    return run


def create_rerun(
    conn: Connection,
    run_id: int,
    *,
    by: str,
    now: int,
    failed_only: bool = False,
    node: RerunNode | None = None,
) -> AutomationRun:
    """A new run rerunning the finished run `run_id`, for the user named `by`.

    `node` is where it starts (domain.runs.RerunNode); without it, `failed_only`
    picks `failed_operations` (true) or `planning` (false, a full rerun). The new
    run has the original's automation, runtime, trigger and trigger inputs
    (file-event files, webhook or manual values); it has no schedule slot, so it
    never collides with the slot's own run.

    NotFound if the original does not exist; RunNotFinished if it has not
    finished; RequestParamsInvalid if the node has nothing to rerun;
    AutomationCannotBeRunManually if the automation was deleted or disabled.
    """
    if node is None:
        node = RerunNode.FAILED_OPERATIONS if failed_only else RerunNode.PLANNING
    elif failed_only and node is not RerunNode.FAILED_OPERATIONS:
        raise errors.RequestParamsInvalid(
            f"failed_only=true contradicts node_id {node.value!r}; send one of them."
        )
    original = _existing(conn, run_id)
    planned = engine_store.count_operations(conn, run_id) if node is RerunNode.EXECUTION else 0
    lifecycle.check_can_rerun(original, node, planned)
    automation = conn.execute(
        select(automations_t.c.deleted, automations_t.c.disabled).where(
            automations_t.c.id == original.automation_id
        )
    ).first()
    if automation is None or automation.deleted:
        raise errors.AutomationCannotBeRunManually(
            f"Automation {original.automation_id} was deleted; its runs cannot be rerun."
        )
    if automation.disabled:
        raise errors.AutomationCannotBeRunManually(
            f"Automation {original.automation_id} is disabled; enable it before rerunning its runs."
        )
    trigger = conn.execute(select(runs_t.c.trigger).where(runs_t.c.id == run_id)).scalar_one()
    created = run_store.create_run(
        conn,
        original.automation_id,
        now,
        original.runtime,
        trigger=trigger,
        rerun_of_run_id=run_id,
        rerun_from_node_id=node.value,
    )
    triggers.copy_run_input(conn, run_id, created.id)
    keeps = {
        RerunNode.PLANNING: "everything the automation matches now",
        RerunNode.EXECUTION: "only the operations it planned",
        RerunNode.FAILED_OPERATIONS: (
            f"only the {_plural(original.failed_operations, 'operation')} that failed in it"
        ),
    }[node]
    text = (
        f"Rerun of run {run_id} from node {node.value}, requested by {by} at "
        f"{to_rfc3339(now)}: same runtime and trigger inputs; it plans {keeps}."
    )
    engine_store.insert_messages(conn, created.id, now, [(MessageLevel.INFO, text)])
    rerun = run_store.get_run(conn, created.id)
    assert rerun is not None
    return rerun


@dataclass(frozen=True, slots=True)
class RerunScope:
    """What the planner of a rerun keeps: the original's operations, by (source,
    destination), in the states its node keeps."""

    original_id: int
    node: RerunNode
    pairs: frozenset[tuple[str | None, str | None]]

    @property
    def sources(self) -> list[str]:
        """The files the kept operations act on (the planner lists only these)."""
        return sorted({source for source, _ in self.pairs if source is not None})


def rerun_scope(conn: Connection, run_id: int) -> RerunScope | None:
    """The scope of a rerun that keeps only some of its original's operations; None
    for any other run (and for a rerun from `planning`, which keeps everything)."""
    row = conn.execute(
        select(runs_t.c.rerun_of_run_id, runs_t.c.rerun_from_node_id).where(runs_t.c.id == run_id)
    ).first()
    if row is None or row.rerun_of_run_id is None or row.rerun_from_node_id is None:
        return None
    node = RerunNode(row.rerun_from_node_id)
    states = node.kept_states
    if states is None:
        return None
    pairs = conn.execute(
        select(ops_t.c.source, ops_t.c.destination).where(
            ops_t.c.run_id == row.rerun_of_run_id, ops_t.c.state.in_(states)
        )
    )
    return RerunScope(row.rerun_of_run_id, node, frozenset((s, d) for s, d in pairs))


@dataclass(frozen=True, slots=True)
class NodeData:
    """What find_node shows of a run's items beyond its counts (each an index range
    count over the run's operations, or the trigger's stored inputs)."""

    planned: int  # operations in the plan
    not_performed: int  # still pending (in a finished run: never performed)
    refused: int  # failed because planned only to fail (kind `refuse`)
    trigger_kind: str | None  # run_inputs.kind: files, webhook, manual; None: nothing handed
    trigger_payload: dict[str, Any] | None


def node_data(conn: Connection, run_id: int) -> NodeData:
    refused = conn.execute(
        select(func.count())
        .select_from(ops_t)
        .where(ops_t.c.run_id == run_id, ops_t.c.state == "failed", ops_t.c.kind == "refuse")
    ).scalar_one()
    handed = triggers.run_input(conn, run_id)
    return NodeData(
        planned=engine_store.count_operations(conn, run_id),
        not_performed=engine_store.not_performed(conn, run_id),
        refused=int(refused),
        trigger_kind=None if handed is None else handed[0],
        trigger_payload=None if handed is None else handed[1],
    )
