"""The run lifecycle of SPEC 1.1 as decided by conveyor.domain.runs (no database)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.errors import IllegalTransition
from conveyor.domain.runs import (
    TRANSITIONS,
    AutomationRun,
    RunStage,
    RunStatus,
    advance,
    check_can_log,
    check_transition,
    count_operation,
    final_status,
    finish,
    new_run,
)

QFP, PLAN, QFE, EXEC, DONE = (
    RunStage.QUEUED_FOR_PLANNING,
    RunStage.PLANNING,
    RunStage.QUEUED_FOR_EXECUTION,
    RunStage.EXECUTING,
    RunStage.FINISHED,
)
# Written out by hand from SPEC 1.1, not derived from the code under test.
ALLOWED = {
    (QFP, PLAN),
    (QFP, DONE),
    (PLAN, QFE),
    (PLAN, DONE),
    (QFE, EXEC),
    (QFE, DONE),
    (EXEC, DONE),
}
T0 = 1_700_000_000_000_000


def run_in(stage: RunStage, ok: int = 0, failed: int = 0) -> AutomationRun:
    return replace(
        new_run(3, T0), id=11, run_stage=stage, successful_operations=ok, failed_operations=failed
    )


def test_a_new_run_is_queued_for_planning_and_running() -> None:
    assert new_run(3, T0) == AutomationRun(
        id=0,
        automation_id=3,
        created_at=T0,
        runtime=T0,
        completed_at=None,
        status=RunStatus.RUNNING,
        run_stage=QFP,
        successful_operations=0,
        failed_operations=0,
    )
    assert new_run(3, T0, runtime=T0 - 60_000_000).runtime == T0 - 60_000_000


def test_transitions_table_is_exactly_the_spec() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert TRANSITIONS[DONE] == frozenset()


@pytest.mark.parametrize("current", list(RunStage))
@pytest.mark.parametrize("target", list(RunStage))
def test_check_transition(current: RunStage, target: RunStage) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


@pytest.mark.parametrize("current", list(RunStage))
@pytest.mark.parametrize("target", [PLAN, QFE, EXEC, QFP])
def test_advance_moves_forward_one_stage_only(current: RunStage, target: RunStage) -> None:
    run = run_in(current)
    if (current, target) in ALLOWED:
        assert advance(run, target) == replace(run, run_stage=target)
    else:
        with pytest.raises(IllegalTransition):
            advance(run, target)


@pytest.mark.parametrize("current", list(RunStage))
def test_advance_never_finishes(current: RunStage) -> None:
    with pytest.raises(IllegalTransition):
        advance(run_in(current), DONE)


@pytest.mark.parametrize(
    ("ok", "failed", "planning_failed", "status"),
    [
        (0, 0, False, RunStatus.SUCCESS),  # zero operations is a success
        (4, 0, False, RunStatus.SUCCESS),
        (0, 1, False, RunStatus.FAILURE),  # nothing succeeded, something failed
        (0, 9, False, RunStatus.FAILURE),
        (1, 1, False, RunStatus.PARTIAL_FAILURE),
        (9, 1, False, RunStatus.PARTIAL_FAILURE),
        (0, 0, True, RunStatus.FAILURE),  # planning itself failed
        (3, 0, True, RunStatus.FAILURE),
        (3, 2, True, RunStatus.FAILURE),
    ],
)
def test_final_status(ok: int, failed: int, planning_failed: bool, status: RunStatus) -> None:
    assert final_status(ok, failed, planning_failed) is status
    run = run_in(EXEC, ok, failed)
    assert finish(run, T0 + 5, planning_failed).status is status


@pytest.mark.parametrize("current", [QFP, PLAN, QFE, EXEC])
def test_finish_from_any_unfinished_stage_sets_completed_at_exactly(current: RunStage) -> None:
    run = run_in(current, 2, 1)
    done = finish(run, T0 + 123)
    assert done == replace(
        run, run_stage=DONE, status=RunStatus.PARTIAL_FAILURE, completed_at=T0 + 123
    )


def test_a_finished_run_never_changes() -> None:
    done = finish(run_in(EXEC, 1, 0), T0 + 1)
    for target in RunStage:
        with pytest.raises(IllegalTransition):
            advance(done, target) if target is not DONE else finish(done, T0 + 2)
    for succeeded in (True, False):
        with pytest.raises(IllegalTransition):
            count_operation(done, succeeded)
    with pytest.raises(IllegalTransition):
        check_can_log(done)


@pytest.mark.parametrize("current", [QFP, PLAN, QFE])
def test_only_an_executing_run_counts_operations(current: RunStage) -> None:
    with pytest.raises(IllegalTransition):
        count_operation(run_in(current), True)


def test_counting_adds_one_to_the_right_count() -> None:
    run = run_in(EXEC, 2, 5)
    assert count_operation(run, True) == replace(run, successful_operations=3)
    assert count_operation(run, False) == replace(run, failed_operations=6)


@pytest.mark.parametrize("current", [QFP, PLAN, QFE, EXEC])
def test_an_unfinished_run_may_log(current: RunStage) -> None:
    check_can_log(run_in(current))


# A step of a random walk: ("advance", stage) | ("count", ok?) | ("finish", planning_failed?)
STEPS = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from(list(RunStage))),
    st.tuples(st.just("count"), st.booleans()),
    st.tuples(st.just("finish"), st.booleans()),
)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.lists(STEPS, max_size=40))
def test_any_sequence_of_changes_keeps_the_rules(steps: list[tuple[str, object]]) -> None:
    """Whatever is attempted, an applied change obeys SPEC 1.1 and a refused one changes nothing."""
    run = new_run(1, T0)
    now = T0
    for action, arg in steps:
        now += 1
        before = run
        permitted = not before.finished and (
            (action == "advance" and arg is not DONE and (before.run_stage, arg) in ALLOWED)
            or (action == "count" and before.run_stage is EXEC)
            or action == "finish"
        )
        try:
            if action == "advance":
                assert isinstance(arg, RunStage)
                run = advance(run, arg)
            elif action == "count":
                run = count_operation(run, bool(arg))
            else:
                run = finish(run, now, bool(arg))
        except IllegalTransition:
            assert not permitted
            assert run is before
            continue
        assert permitted
        assert (before.run_stage, run.run_stage) in ALLOWED | {(EXEC, EXEC)}
        assert run.successful_operations >= before.successful_operations
        assert run.failed_operations >= before.failed_operations
        assert (
            run.successful_operations
            + run.failed_operations
            - before.successful_operations
            - before.failed_operations
        ) == (1 if action == "count" else 0)
        assert (run.completed_at is not None) == run.finished
        if run.finished:
            assert run.completed_at == now
            assert run.status is final_status(
                run.successful_operations, run.failed_operations, bool(arg)
            )
        else:
            assert run.status is RunStatus.RUNNING
        assert (run.id, run.automation_id, run.created_at, run.runtime) == (0, 1, T0, T0)
