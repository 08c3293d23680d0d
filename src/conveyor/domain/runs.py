"""What an AutomationRun is: stages, statuses and the lifecycle rules (SPEC 1.1).

Pure Python, no I/O. Every change of a run is decided here and applied by
`conveyor.store.runs`, which guards each UPDATE with the state this module
expected, so a rule cannot be bypassed by a race.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from conveyor.domain.errors import (
    AlreadyCompleted,
    IllegalTransition,
    RequestParamsInvalid,
    RunNotFinished,
)


class RunStage(enum.StrEnum):
    QUEUED_FOR_PLANNING = "queued_for_planning"
    PLANNING = "planning"
    QUEUED_FOR_EXECUTION = "queued_for_execution"
    EXECUTING = "executing"
    FINISHED = "finished"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL_FAILURE = "partial_failure"
    FAILURE = "failure"
    # Added by Files.com with run control (docs/api.md says when and what each means).
    QUEUED = "queued"
    SKIPPED = "skipped"
    CANCELED = "canceled"


class MessageLevel(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# The one table of allowed stage moves: forward one step, or any unfinished
# stage straight to finished (planning failed, run aborted).
_ORDER = list(RunStage)
TRANSITIONS: dict[RunStage, frozenset[RunStage]] = {
    stage: frozenset(
        {_ORDER[i + 1], RunStage.FINISHED} if stage is not RunStage.FINISHED else set()
    )
    for i, stage in enumerate(_ORDER)
}


@dataclass(frozen=True, slots=True)
class AutomationRun:
    """A run as stored. Times are integer microseconds since the Unix epoch, UTC."""

    id: int
    automation_id: int
    created_at: int
    runtime: int
    completed_at: int | None
    status: RunStatus
    run_stage: RunStage
    successful_operations: int
    failed_operations: int
    # Run control: who asked to cancel and when, and the rerun/retry lineage.
    cancel_requested_at: int | None = None
    cancel_requested_by: str | None = None
    rerun_of_run_id: int | None = None
    retry_of_run_id: int | None = None
    retried_in_run_id: int | None = None
    retry_at: int | None = None
    retried_at: int | None = None

    @property
    def finished(self) -> bool:
        return self.run_stage is RunStage.FINISHED


def check_transition(current: RunStage, target: RunStage) -> None:
    """Raise IllegalTransition unless `current -> target` is in TRANSITIONS."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"a run cannot move from {current} to {target}")


def final_status(successful: int, failed: int, planning_failed: bool = False) -> RunStatus:
    """The status a run finishes with (SPEC 1.1)."""
    if planning_failed:
        return RunStatus.FAILURE
    if failed == 0:
        return RunStatus.SUCCESS
    if successful == 0:
        return RunStatus.FAILURE
    return RunStatus.PARTIAL_FAILURE


def new_run(
    automation_id: int, now: int, runtime: int | None = None, *, serialized: bool = False
) -> AutomationRun:
    """A run as created by a trigger: queued for planning, running, no counts.

    A run of an `always_serialize_jobs` automation (`serialized`) is `queued`
    instead until a worker starts planning it, which it does only once every
    earlier run of its automation has finished (Files.com's `queued` status).
    `id` is 0 until the store assigns one.
    """
    return AutomationRun(
        id=0,
        automation_id=automation_id,
        created_at=now,
        runtime=now if runtime is None else runtime,
        completed_at=None,
        status=RunStatus.QUEUED if serialized else RunStatus.RUNNING,
        run_stage=RunStage.QUEUED_FOR_PLANNING,
        successful_operations=0,
        failed_operations=0,
    )


def advance(run: AutomationRun, target: RunStage) -> AutomationRun:
    """Move to the next stage (not to finished: use `finish`)."""
    if target is RunStage.FINISHED:
        raise IllegalTransition("use finish() to finish a run")
    check_transition(run.run_stage, target)
    if run.status is RunStatus.QUEUED:  # its wait is over: a worker took it
        return replace(run, run_stage=target, status=RunStatus.RUNNING)
    return replace(run, run_stage=target)


def count_operation(run: AutomationRun, succeeded: bool) -> AutomationRun:
    """Count one operation's outcome. Only an executing run performs operations."""
    return count_operations(run, 1 if succeeded else 0, 0 if succeeded else 1)


def count_operations(run: AutomationRun, succeeded: int, failed: int) -> AutomationRun:
    """Count several outcomes at once (a batch the engine commits together)."""
    if run.run_stage is not RunStage.EXECUTING:
        raise IllegalTransition(f"a run in {run.run_stage} cannot count operations")
    if succeeded < 0 or failed < 0:
        raise ValueError("operation counts only grow")
    return replace(
        run,
        successful_operations=run.successful_operations + succeeded,
        failed_operations=run.failed_operations + failed,
    )


def finish(run: AutomationRun, now: int, planning_failed: bool = False) -> AutomationRun:
    """Finish the run: final status from the counts, completed_at set exactly now."""
    check_transition(run.run_stage, RunStage.FINISHED)
    return replace(
        run,
        run_stage=RunStage.FINISHED,
        status=final_status(run.successful_operations, run.failed_operations, planning_failed),
        completed_at=now,
    )


# Files.com retries a run that ends with one of these (retry_on_failure_*).
RETRIED_STATUSES = frozenset({RunStatus.FAILURE, RunStatus.PARTIAL_FAILURE})
MINUTE_US = 60_000_000


def retry_allowed(attempt: int, attempts: int | None, *, disabled: bool, deleted: bool) -> bool:
    """May the run that is `attempt` of its chain (0: the original run, 1: its first
    retry ...) be retried, under an automation allowing `attempts` retries (None: off)?"""
    return attempts is not None and attempt < attempts and not disabled and not deleted


def retry_time(
    run: AutomationRun,
    attempt: int,
    attempts: int | None,
    interval_minutes: int | None,
    *,
    disabled: bool = False,
    deleted: bool = False,
) -> int | None:
    """When the finished `run` is to be retried (its `retry_at`), or None: only a run
    that ended failure or partial_failure, with retries left, `interval_minutes` after
    it ended."""
    if run.status not in RETRIED_STATUSES or run.completed_at is None:
        return None
    if interval_minutes is None:
        return None
    if not retry_allowed(attempt, attempts, disabled=disabled, deleted=deleted):
        return None
    return run.completed_at + interval_minutes * MINUTE_US


def check_can_log(run: AutomationRun) -> None:
    """A finished run never changes again, its log included."""
    if run.finished:
        raise IllegalTransition("a finished run's log is closed")


# ---------------------------------------------------------------- run control
#
# Cancel and rerun (issue 15; docs/api.md, docs/engine.md). Decided here, written
# by `conveyor.store.run_control`, which the API, bulk actions and web UI all call.

# The stages in which a run waits for a worker: a cancel ends it at once.
WAITING_STAGES = frozenset({RunStage.QUEUED_FOR_PLANNING, RunStage.QUEUED_FOR_EXECUTION})


def check_can_cancel(run: AutomationRun) -> None:
    """A finished run cannot be canceled (AlreadyCompleted names its status)."""
    if run.finished:
        raise AlreadyCompleted(
            f"Automation Run {run.id} already finished with status {run.status.value}; "
            "only a queued or running run can be canceled."
        )


def hold_for_serialization(run: AutomationRun) -> AutomationRun:
    """`always_serialize_jobs` was turned on: a run still waiting for a worker to plan
    it is `queued` from now on, as if it had been made after the change (a worker
    claims it only once every earlier run of its automation has finished, and the
    claim makes it `running`). Any other run is left as it is."""
    if run.run_stage is RunStage.QUEUED_FOR_PLANNING and run.status is RunStatus.RUNNING:
        return replace(run, status=RunStatus.QUEUED)
    return run


def request_cancel(run: AutomationRun, now: int, by: str) -> AutomationRun:
    """The run after a cancel request by the user named `by` at `now`.

    A run waiting for a worker (queued for planning or for execution) is
    canceled at once. A run being planned or executed records the request
    (`cancel_requested_at`, `cancel_requested_by`); its worker ends it at the
    next operation boundary, or the worker taking it over does. A second
    request while one is pending changes nothing: the first one stands.
    """
    check_can_cancel(run)
    if run.cancel_requested_at is not None:
        return run
    asked = replace(run, cancel_requested_at=now, cancel_requested_by=by)
    if run.run_stage in WAITING_STAGES:
        return finish_canceled(asked, now)
    return asked


def finish_canceled(run: AutomationRun, now: int) -> AutomationRun:
    """Finish a run whose cancel was requested: status `canceled`, completed now."""
    if run.cancel_requested_at is None:
        raise IllegalTransition("only a run whose cancel was requested ends canceled")
    check_transition(run.run_stage, RunStage.FINISHED)
    return replace(run, run_stage=RunStage.FINISHED, status=RunStatus.CANCELED, completed_at=now)


class RerunNode(enum.StrEnum):
    """The nodes of a Conveyor run, where a rerun starts (Files.com's `node_id`).

    A Conveyor run is two stages: `planning` (list the files, decide each
    operation) and `execution` (perform the operations). A rerun always plans
    again on the storage as it is now, with the original's runtime and trigger
    inputs; the node says which of the original's operations it keeps:
    `planning` everything the automation matches now (a full rerun),
    `execution` only the operations the original planned, `failed_operations`
    only those that failed in the original (Conveyor's `failed_only=true`).
    """

    PLANNING = "planning"
    EXECUTION = "execution"
    FAILED_OPERATIONS = "failed_operations"

    @property
    def kept_states(self) -> tuple[str, ...] | None:
        """The states of the original's operations the rerun keeps; None: no filter."""
        if self is RerunNode.EXECUTION:
            return ("pending", "done", "skipped", "failed", "abandoned")
        if self is RerunNode.FAILED_OPERATIONS:
            return ("failed",)
        return None


NODE_IDS = ", ".join(node.value for node in RerunNode)


def parse_rerun_node(node_id: object = None, failed_only: object = None) -> RerunNode:
    """The node a rerun request names: `node_id` (the official SDKs), `failed_only`
    (Conveyor's parameter, true or false), or neither (a full rerun). Both may be
    sent if they agree. RequestParamsInvalid names the field that is wrong."""
    node = None
    if node_id is not None:
        if not isinstance(node_id, str) or node_id not in RerunNode._value2member_map_:
            raise RequestParamsInvalid(
                f"node_id {str(node_id)[:60]!r} is not a node of a Conveyor run; "
                f"the nodes are {NODE_IDS}."
            )
        node = RerunNode(node_id)
    flag = None
    if failed_only is not None:
        flag = _boolean(failed_only)
        if flag is None:
            raise RequestParamsInvalid(
                f"failed_only must be true or false; got {str(failed_only)[:60]!r}."
            )
    if node is None:
        return RerunNode.FAILED_OPERATIONS if flag else RerunNode.PLANNING
    if flag is not None and flag != (node is RerunNode.FAILED_OPERATIONS):
        raise RequestParamsInvalid(
            f"failed_only={str(flag).lower()} contradicts node_id {node.value!r}; send one of them."
        )
    return node


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def check_can_rerun(run: AutomationRun, node: RerunNode, planned: int) -> None:
    """A rerun needs a finished original, and, from `execution` or
    `failed_operations`, something there to rerun (`planned`: the original's
    operations)."""
    if not run.finished:
        raise RunNotFinished(
            f"Automation Run {run.id} is {run.run_stage.value} (status {run.status.value}); "
            "only a finished run can be rerun."
        )
    if node is RerunNode.FAILED_OPERATIONS and run.failed_operations == 0:
        raise RequestParamsInvalid(
            f"node_id failed_operations (failed_only): Automation Run {run.id} has no failed "
            f"operations to rerun (status {run.status.value})."
        )
    if node is RerunNode.EXECUTION and planned == 0:
        raise RequestParamsInvalid(
            f"node_id execution: Automation Run {run.id} has no planned operations to rerun "
            f"(status {run.status.value}); rerun it from planning."
        )


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node of a run as Files.com's AutomationExecutionNode shows it (find_node)."""

    node_id: str
    node_type: str
    status: str
    run_stage: str
    successful_operations: int
    failed_operations: int
    started_at: int | None
    completed_at: int | None


def node_state(
    run: AutomationRun,
    node: RerunNode,
    *,
    planning_at: int | None,
    queued_for_execution_at: int | None,
    executing_at: int | None,
) -> NodeState:
    """Where one node of the run stands, from its stage and the stage start times.

    `planning` succeeded once its plan was queued for execution, and otherwise
    ends with the run (planning failed, nothing to do, canceled). `execution`
    and `failed_operations` are `pending` until the plan is made, `queued`,
    `running`, then the run's final status (`skipped` if it never executed,
    `canceled` if it was canceled before); `failed_operations` counts only the
    failures and ends `failure` if there were any.
    """
    stage = run.run_stage
    # Counted operations mean it executed (and so was planned) even where a stage
    # start time is missing (runs made before the engine stamped them).
    executed = executing_at is not None or run.successful_operations + run.failed_operations > 0
    planned = queued_for_execution_at is not None or executed
    if node is RerunNode.PLANNING:
        if stage is RunStage.QUEUED_FOR_PLANNING:
            status, started, completed = "queued", None, None
        elif stage is RunStage.PLANNING:
            status, started, completed = "running", planning_at, None
        elif planned:
            status, started, completed = "success", planning_at, queued_for_execution_at
        else:  # finished in planning
            status, started, completed = run.status.value, planning_at, run.completed_at
        waiting = stage in (RunStage.QUEUED_FOR_PLANNING, RunStage.PLANNING)
        return NodeState(
            node.value,
            "plan",
            status,
            (stage if waiting else RunStage.FINISHED).value,
            0,
            0,
            started,
            completed,
        )
    started, completed = executing_at, run.completed_at if executing_at is not None else None
    node_stage: RunStage
    if stage in (RunStage.QUEUED_FOR_PLANNING, RunStage.PLANNING):
        status, node_stage = "pending", RunStage.QUEUED_FOR_EXECUTION
    elif stage is RunStage.QUEUED_FOR_EXECUTION:
        status, node_stage = "queued", stage
    elif stage is RunStage.EXECUTING:
        status, node_stage = "running", stage
    elif not executed:
        status = "canceled" if run.status is RunStatus.CANCELED else "skipped"
        node_stage = RunStage.FINISHED
    else:
        status, node_stage = run.status.value, RunStage.FINISHED
    if node is RerunNode.EXECUTION:
        return NodeState(
            node.value,
            "execute",
            status,
            node_stage.value,
            run.successful_operations,
            run.failed_operations,
            started,
            completed,
        )
    if status in ("success", "partial_failure", "failure"):
        status = "failure" if run.failed_operations else "success"
    return NodeState(
        node.value,
        "operations",
        status,
        node_stage.value,
        0,
        run.failed_operations,
        started,
        completed,
    )
