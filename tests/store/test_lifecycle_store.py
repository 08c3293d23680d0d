"""The lifecycle as the store applies it, on SQLite and PostgreSQL: exact rows, refused
changes that leave no trace, and two connections racing for the same change."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from conveyor.domain.errors import IllegalTransition
from conveyor.domain.runs import AutomationRun, MessageLevel, RunStage, RunStatus
from conveyor.store import runs
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

T0 = 1_700_000_000_000_000


def state(conn: Connection, run_id: int) -> tuple[AutomationRun | None, list[Any]]:
    """Everything a change could touch: the run's row and its log."""
    return runs.get_run(conn, run_id), [tuple(m) for m in runs.read_messages(conn, run_id)]


def test_a_run_through_its_whole_life(db: Database, seed: Seeder) -> None:
    automation = seed.automation(seed.account("alice"))
    with db.write() as conn:
        run = runs.create_run(conn, automation, T0, runtime=T0 - 3_600_000_000)
        assert runs.get_run(conn, run.id) == run
        assert (run.run_stage, run.status, run.completed_at) == (
            RunStage.QUEUED_FOR_PLANNING,
            RunStatus.RUNNING,
            None,
        )
        runs.append_message(conn, run.id, T0 + 1, "planned 3 operations")
        for stage in (RunStage.PLANNING, RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING):
            assert runs.advance_stage(conn, run.id, stage).run_stage is stage
        runs.record_operation(conn, run.id, True, T0 + 2, "copied a.txt")
        runs.record_operation(conn, run.id, False, T0 + 3, "b.txt: permission denied")
        runs.record_operation(conn, run.id, True, T0 + 4)
        done = runs.finish_run(conn, run.id, T0 + 9, message="done")
    with db.read() as conn:
        row, log = state(conn, run.id)
    expected = AutomationRun(
        id=run.id,
        automation_id=automation,
        created_at=T0,
        runtime=T0 - 3_600_000_000,
        completed_at=T0 + 9,
        status=RunStatus.PARTIAL_FAILURE,
        run_stage=RunStage.FINISHED,
        successful_operations=2,
        failed_operations=1,
    )
    assert done == row == expected
    assert [entry[1:] for entry in log] == [
        (T0 + 1, "info", "planned 3 operations"),
        (T0 + 2, "info", "copied a.txt"),
        (T0 + 3, "error", "b.txt: permission denied"),
        (T0 + 9, "info", "done"),
    ]


@pytest.mark.parametrize(
    ("stage", "planning_failed", "status"),
    [
        (RunStage.QUEUED_FOR_PLANNING, True, RunStatus.FAILURE),
        (RunStage.PLANNING, True, RunStatus.FAILURE),
        (RunStage.QUEUED_FOR_EXECUTION, False, RunStatus.SUCCESS),
        (RunStage.EXECUTING, False, RunStatus.SUCCESS),
    ],
)
def test_any_unfinished_stage_may_finish(
    db: Database, seed: Seeder, stage: RunStage, planning_failed: bool, status: RunStatus
) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation, stage=stage)
    with db.write() as conn:
        runs.finish_run(conn, run.id, T0, planning_failed=planning_failed, level=MessageLevel.ERROR)
        assert runs.get_run(conn, run.id) == replace(
            run, run_stage=RunStage.FINISHED, status=status, completed_at=T0
        )


# Every store change, each given a run id: all must be refused on a finished run.
CHANGES: dict[str, Callable[[Connection, int], object]] = {
    **{
        f"advance to {stage}": (lambda conn, run_id, s=stage: runs.advance_stage(conn, run_id, s))
        for stage in RunStage
    },
    "record a success": lambda conn, run_id: runs.record_operation(conn, run_id, True, T0, "ok"),
    "record a failure": lambda conn, run_id: runs.record_operation(conn, run_id, False, T0, "no"),
    "finish again": lambda conn, run_id: runs.finish_run(conn, run_id, T0, message="again"),
    "finish as planning failure": lambda conn, run_id: runs.finish_run(
        conn, run_id, T0, planning_failed=True
    ),
    "append a message": lambda conn, run_id: runs.append_message(conn, run_id, T0, "late"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_finished_run_never_changes(db: Database, seed: Seeder, change: str) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation, outcome=(2, 1), messages=["planned"])
    with db.read() as conn:
        before = state(conn, run.id)
    assert before[0] is not None and before[0].status is RunStatus.PARTIAL_FAILURE
    with db.write() as conn:
        with pytest.raises(IllegalTransition):
            CHANGES[change](conn, run.id)
        # Nothing was written before the refusal, not even within the transaction.
        assert state(conn, run.id) == before
    with db.read() as conn:
        assert state(conn, run.id) == before


@pytest.mark.parametrize(
    ("stage", "change"),
    [
        (RunStage.QUEUED_FOR_PLANNING, "advance to executing"),
        (RunStage.QUEUED_FOR_PLANNING, "advance to queued_for_planning"),
        (RunStage.PLANNING, "advance to queued_for_planning"),
        (RunStage.PLANNING, "advance to executing"),
        (RunStage.EXECUTING, "advance to planning"),
        (RunStage.EXECUTING, "advance to finished"),  # finishing goes through finish_run
        (RunStage.QUEUED_FOR_PLANNING, "record a success"),
        (RunStage.QUEUED_FOR_EXECUTION, "record a failure"),
    ],
)
def test_illegal_changes_of_an_unfinished_run(
    db: Database, seed: Seeder, stage: RunStage, change: str
) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation, stage=stage)
    with db.write() as conn:
        before = state(conn, run.id)
        with pytest.raises(IllegalTransition):
            CHANGES[change](conn, run.id)
        assert state(conn, run.id) == before


@pytest.mark.parametrize("change", ["advance to planning", "record a success", "finish again"])
def test_changing_a_run_that_does_not_exist(db: Database, change: str) -> None:
    with db.write() as conn, pytest.raises(IllegalTransition):
        CHANGES[change](conn, 987_654)


# ------------------------------------------------------------------ two writers


def wait_until_waiting_for_a_lock(db: Database) -> None:
    """Block until another session of this PostgreSQL database waits for a lock."""
    deadline = time.monotonic() + 60
    with db.engine.connect() as probe:
        while True:
            waiting = probe.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).scalar_one()
            probe.commit()  # statistics are a snapshot per transaction
            if waiting:
                return
            if time.monotonic() > deadline:
                raise AssertionError("the second writer never waited for the first")
            time.sleep(0.01)


def race(
    db: Database, backend: str, run_id: int, change: Callable[[Connection, int], object]
) -> tuple[object, Any]:
    """Apply `change` in a first transaction and, while it is still open, start the
    same change in a second connection; return the first result and the second's
    outcome (its result or the exception it raised).

    On PostgreSQL the second connection is seen waiting on the first's row lock
    (get_run(for_update=True)) before the first commits. On SQLite the second
    cannot even begin its write transaction (BEGIN IMMEDIATE) until the first ends.
    """

    def second() -> object:
        with db.write() as conn:
            return change(conn, run_id)

    with ThreadPoolExecutor(max_workers=1) as pool:
        with db.write() as conn:
            first = change(conn, run_id)
            pending = pool.submit(second)
            if backend == "postgresql":
                wait_until_waiting_for_a_lock(db)
        try:
            outcome: Any = pending.result(timeout=60)
        except IllegalTransition as exc:
            outcome = exc
    return first, outcome


def test_two_connections_making_the_same_move_the_second_fails(
    db: Database, seed: Seeder, backend: str
) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation)
    first, second = race(db, backend, run.id, CHANGES["advance to planning"])
    assert isinstance(first, AutomationRun) and first.run_stage is RunStage.PLANNING
    assert isinstance(second, IllegalTransition)
    assert "from planning to planning" in str(second)
    with db.read() as conn:
        assert runs.get_run(conn, run.id) == first


def test_two_connections_finishing_the_same_run_the_second_fails(
    db: Database, seed: Seeder, backend: str
) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation, stage=RunStage.EXECUTING)
    first, second = race(db, backend, run.id, CHANGES["finish again"])
    assert isinstance(second, IllegalTransition)
    with db.read() as conn:
        row, log = state(conn, run.id)
    assert row == first
    assert [entry[3] for entry in log] == ["again"]


def test_two_connections_counting_at_once_lose_no_count(
    db: Database, seed: Seeder, backend: str
) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation, stage=RunStage.EXECUTING)
    first, second = race(db, backend, run.id, CHANGES["record a success"])
    assert isinstance(first, AutomationRun) and first.successful_operations == 1
    assert isinstance(second, AutomationRun) and second.successful_operations == 2
    with db.read() as conn:
        row, log = state(conn, run.id)
    assert row == second
    assert [entry[3] for entry in log] == ["ok", "ok"]
