"""What an AutomationRun is: stages, statuses and the lifecycle rules (SPEC 1.1).

Pure Python, no I/O. Every change of a run is decided here and applied by
`conveyor.store.runs`, which guards each UPDATE with the state this module
expected, so a rule cannot be bypassed by a race.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from conveyor.domain.errors import IllegalTransition


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


def new_run(automation_id: int, now: int, runtime: int | None = None) -> AutomationRun:
    """A run as created by a trigger: queued for planning, running, no counts.

    `id` is 0 until the store assigns one.
    """
    return AutomationRun(
        id=0,
        automation_id=automation_id,
        created_at=now,
        runtime=now if runtime is None else runtime,
        completed_at=None,
        status=RunStatus.RUNNING,
        run_stage=RunStage.QUEUED_FOR_PLANNING,
        successful_operations=0,
        failed_operations=0,
    )


def advance(run: AutomationRun, target: RunStage) -> AutomationRun:
    """Move to the next stage (not to finished: use `finish`)."""
    if target is RunStage.FINISHED:
        raise IllegalTransition("use finish() to finish a run")
    check_transition(run.run_stage, target)
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


def check_can_log(run: AutomationRun) -> None:
    """A finished run never changes again, its log included."""
    if run.finished:
        raise IllegalTransition("a finished run's log is closed")
