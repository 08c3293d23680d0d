"""Claims, lease expiry and takeover, the lease-loss bound, and guarded commits, on both databases.

A worker "dies" here by an exception from a hook: the worker leaves the run
as a killed process would (lease held, nothing released), and a ManualClock
moves past the lease instead of sleeping. Real SIGKILLs are in test_crash.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
import pytest
from engine_world import World
from sqlalchemy import select

from conveyor.clock import SystemClock
from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine import leases
from conveyor.engine.context import EngineContext
from conveyor.engine.executor import execute_run
from conveyor.engine.hooks import Hooks
from conveyor.engine.leases import Claim
from conveyor.engine.planner import plan_run
from conveyor.engine.wakeup import Wakeup
from conveyor.engine.worker import Worker
from conveyor.store import engine as engine_store
from conveyor.store.engine import LeaseLost, OperationOutcome
from conveyor.store.schema import run_operations


class Crash(Exception):
    """Stands for a worker process dying at this point."""


def crash_at_operation(seq: int) -> Hooks:
    def after_operation(_run_id: int, current: int) -> None:
        if current == seq:
            raise Crash(f"died after the file action of operation {seq}")

    return Hooks(after_operation=after_operation)


def crash_before_plan_commit() -> Hooks:
    def before_plan_commit(_run_id: int) -> None:
        raise Crash("died before committing the plan")

    return Hooks(before_plan_commit=before_plan_commit)


def copy_automation(world: World, count: int) -> int:
    for i in range(count):
        world.write(f"in/f{i:02}.txt", f"file {i} " * (i + 1))
    return world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])


def expected_out(count: int) -> dict[str, bytes]:
    return {f"out/f{i:02}.txt": (f"file {i} " * (i + 1)).encode() for i in range(count)}


def outcome_lines(log: list[str]) -> list[str]:
    return [line for line in log if line.startswith(("Copied ", "Skipped ", "Refused "))]


def stale_and_fresh(world: World, stage: RunStage) -> tuple[EngineContext, Claim, Claim]:
    """Worker "stale" claims the run, its lease runs out, worker "fresh" takes it over."""
    stale_engine = world.engine()
    stale = leases.claim_next(stale_engine, "stale")
    assert stale is not None and stale.stage is stage
    world.clock.advance(world.settings.lease_seconds + 1)
    fresh = leases.claim_next(world.engine(), "fresh")
    assert fresh is not None and fresh.resumed and fresh.stage is stage
    return stale_engine, stale, fresh


def test_planning_is_taken_over_and_redone_after_the_lease_runs_out(world: World) -> None:
    run_id = world.run(copy_automation(world, 3))
    dead = world.worker("dead", hooks=crash_before_plan_commit())
    assert dead.step()
    view = world.view(run_id)
    assert view.run.run_stage is RunStage.PLANNING
    assert view.lease.lease_owner == "dead"
    assert view.operations == []  # nothing of the plan was committed

    survivor = world.worker("w2")
    assert not survivor.step()  # the lease still holds
    world.clock.advance(world.settings.lease_seconds + 1)
    assert survivor.drain() == 2

    assert world.files("out") == expected_out(3)
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (3, 0)
    assert view.lease.lease_losses == 1
    assert view.log[:4] == [
        "Planning started (worker dead).",
        # The exception that stood for the crash, as the worker logs any it meets.
        "Worker dead stopped working on the run during planning: Crash: died before "
        "committing the plan; another worker takes over when its lease runs out.",
        "The lease of worker dead ran out 1.0 s ago during planning "
        "(lease loss 1 of at most 3); "
        "worker w2 takes over and plans again from scratch (nothing of the earlier plan "
        "was saved).",
        "Plan: 3 files under 'in' match '*.txt'; copy each to 1 destination: 3 operations.",
    ]
    assert view.levels[1:3] == ["error", "warning"]
    assert sum(line.startswith("Planned #") for line in view.log) == 3


def test_execution_resumes_with_only_the_pending_operations(world: World) -> None:
    run_id = world.run(copy_automation(world, 6))
    # Batches of 2: operations 1 and 2 commit together; 3 is copied but not committed.
    dead = world.worker("dead", hooks=crash_at_operation(3), outcome_batch_size=2)
    assert dead.step()  # plan
    assert dead.step()  # execute, until it dies after operation 3's copy
    view = world.view(run_id)
    assert view.run.run_stage is RunStage.EXECUTING
    assert (view.run.successful_operations, view.lease.lease_owner) == (2, "dead")
    assert [op[4] for op in view.operations] == ["done", "done"] + ["pending"] * 4
    assert (world.root / "out/f02.txt").exists()  # the uncommitted copy is on disk

    world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("w2").drain() == 1

    assert world.files("out") == expected_out(6)
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (6, 0)
    assert view.lease.lease_losses == 1
    outcomes = outcome_lines(view.log)
    assert outcomes == [
        f"Copied in/f{i:02}.txt to out/f{i:02}.txt ({len(expected_out(6)[f'out/f{i:02}.txt'])} "
        "bytes)."
        for i in range(6)
    ]
    assert (
        "The lease of worker dead ran out 1.0 s ago during executing (operation #3 was in "
        "flight at 1 of at most 3 lease losses); worker w2 takes over and resumes with the 4 "
        "operations not yet done."
    ) in view.log
    assert view.log[-1] == "Run finished with status success: 6 operations succeeded, 0 failed."


def test_a_run_that_keeps_losing_its_lease_fails_after_the_limit(world: World) -> None:
    run_id = world.run(copy_automation(world, 3))
    limit = 2
    assert world.worker("planner", max_lease_losses=limit).step()
    for attempt in range(limit + 1):
        worker = world.worker(
            f"doomed{attempt}", hooks=crash_at_operation(1), max_lease_losses=limit
        )
        assert worker.step()
        world.clock.advance(world.settings.lease_seconds + 1)
    # The claim that finds the limit passed ends the run, after looking at the disk.
    assert world.worker("last", max_lease_losses=limit).step() is True
    assert world.worker("last", max_lease_losses=limit).step() is False

    view = world.view(run_id)
    assert view.run.run_stage is RunStage.FINISHED
    assert view.run.status is RunStatus.FAILURE
    # Operation 1's copy was made every time, never recorded: the disk says it is done.
    assert (view.run.successful_operations, view.run.failed_operations) == (1, 0)
    assert view.lease.lease_losses == 3
    assert view.log[-2:] == [
        "Copied in/f00.txt to out/f00.txt (7 bytes) (found on disk when the run was ended).",
        "Run failed: the lease of worker doomed2 ran out during executing; operation #1 was in "
        "flight at 3 lease losses, more than the 2 takeovers allowed "
        "(CONVEYOR_MAX_LEASE_LOSSES), so the run is not retried again. 2 planned operations "
        "were not performed.",
    ]
    assert view.levels[-1] == "error"
    # Not performed: left pending in the finished run (docs/data-model.md).
    assert [op[4] for op in view.operations] == ["done", "pending", "pending"]
    # The AutomationLog entry of the operation found on disk has the same line.
    with world.db.read() as conn:
        detail = conn.execute(
            select(run_operations.c.detail).where(
                run_operations.c.run_id == run_id, run_operations.c.seq == 1
            )
        ).scalar_one()
    assert orjson.loads(detail)["message"] == view.log[-2]
    assert world.files("out") == {"out/f00.txt": b"file 0 "}  # no temp file left


def test_a_worker_that_lost_its_lease_cannot_record_or_finish(world: World) -> None:
    run_id = world.run(copy_automation(world, 2))
    assert world.worker("planner").step()
    stale_engine, stale, fresh = stale_and_fresh(world, RunStage.EXECUTING)

    with world.db.read() as conn:
        first = engine_store.pending_operations(conn, run_id)[0]
    with pytest.raises(LeaseLost), world.db.write() as conn:
        engine_store.complete_operations(
            conn,
            run_id,
            "stale",
            stale.token,
            world.clock.now() + 10**6,
            [OperationOutcome(first.id, "done", True, world.clock.now(), "should not appear")],
        )
    with world.db.write() as conn:
        assert not engine_store.extend_lease(conn, run_id, "stale", stale.token, world.clock.now())
        # The owner's name alone is not enough: the fencing token must be the current one.
        assert not engine_store.extend_lease(conn, run_id, "fresh", stale.token, world.clock.now())
    # The stale worker's whole execution changes no count and no log line.
    execute_run(stale_engine, stale)
    view = world.view(run_id)
    assert (view.run.successful_operations, view.run.failed_operations) == (0, 0)
    assert view.lease.lease_owner == "fresh"
    assert "should not appear" not in view.log

    execute_run(world.engine(), fresh)
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (2, 0)
    assert Counter(outcome_lines(view.log)) == Counter(
        {
            "Copied in/f00.txt to out/f00.txt (7 bytes).": 1,
            "Copied in/f01.txt to out/f01.txt (14 bytes).": 1,
        }
    )
    assert world.files("out") == expected_out(2)


def test_a_planner_that_lost_its_lease_commits_nothing(world: World) -> None:
    run_id = world.run(copy_automation(world, 2))
    stale_engine, stale, fresh = stale_and_fresh(world, RunStage.PLANNING)

    plan_run(stale_engine, stale)
    view = world.view(run_id)
    assert view.run.run_stage is RunStage.PLANNING
    assert view.operations == []
    assert view.log == [
        "Planning started (worker stale).",
        "The lease of worker stale ran out 1.0 s ago during planning (lease loss 1 of at most 3); "
        "worker fresh takes over and plans again from scratch (nothing of the earlier plan "
        "was saved).",
    ]
    assert view.lease.lease_owner == "fresh"

    plan_run(world.engine(), fresh)
    assert world.worker("fresh").drain() == 1
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert sum(line.startswith("Planned #") for line in view.log) == 2
    assert world.files("out") == expected_out(2)


def test_a_stopping_worker_releases_its_run_without_a_lease_loss(world: World) -> None:
    run_id = world.run(copy_automation(world, 4))
    engine = world.engine()

    def stop_after_two(_run_id: int, seq: int) -> None:
        if seq == 2:
            engine.stop.set()

    engine.hooks = Hooks(after_operation=stop_after_two)
    stopping = Worker(engine, "stopping")
    assert stopping.drain() == 2
    view = world.view(run_id)
    assert view.run.run_stage is RunStage.EXECUTING
    assert view.run.successful_operations == 2
    assert view.lease.lease_owner is None

    assert world.worker("next").drain() == 1  # no clock advance needed
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.lease.lease_losses == 0
    assert (
        "Worker next picks up the run its previous worker released and resumes with the "
        "2 operations not yet done."
    ) in view.log
    assert world.files("out") == expected_out(4)


def test_the_heartbeat_keeps_a_slow_operation_s_lease(world: World) -> None:
    """A real clock and a lease shorter than one operation: the heartbeat must keep it."""
    run_id = world.run(copy_automation(world, 2))
    lease = 1.5
    slow_engine = world.engine(
        Hooks(after_operation=lambda _run, seq: time.sleep(2 * lease) if seq == 1 else None),
        lease_seconds=lease,
    )
    slow_engine.clock = SystemClock()
    slow = Worker(slow_engine, "slow")
    assert slow.step()  # plan, which moves the run on to executing under the same lease
    claim, slow.next = slow.next, None
    assert claim is not None and claim.stage is RunStage.EXECUTING
    thread = threading.Thread(target=slow.work, args=(claim,))
    thread.start()
    rival_engine = world.engine(lease_seconds=lease)
    rival_engine.clock = SystemClock()
    rival = Worker(rival_engine, "rival")
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        assert rival.step() is False
        time.sleep(0.05)
    thread.join(timeout=5)
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.lease.lease_losses == 0
    assert not any("rival" in line for line in view.log)


@pytest.mark.parametrize(
    ("kind", "expected_log", "expected_files"),
    [
        (
            "move_file",
            [
                "Already moved: in/f00.txt is gone and out/f00.txt has the planned size (7 bytes).",
                "Moved in/f01.txt to out/f01.txt (14 bytes).",
            ],
            expected_out(2),
        ),
        ("delete_file", ["Already deleted: in/f00.txt was gone.", "Deleted in/f01.txt."], {}),
    ],
)
def test_an_action_done_but_not_committed_is_recognised_on_resume(
    world: World, kind: str, expected_log: list[str], expected_files: dict[str, bytes]
) -> None:
    for i in range(2):
        world.write(f"in/f{i:02}.txt", f"file {i} " * (i + 1))
    extra = {"destinations": ["out/"]} if kind == "move_file" else {}
    automation = world.automation(kind, path="in", source="*.txt", **extra)
    run_id = world.run(automation)
    dead = world.worker("dead", hooks=crash_at_operation(1))
    assert dead.drain() == 2  # planned, then died after operation 1's file action
    assert world.view(run_id).run.successful_operations == 0
    world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("w2").drain() == 1

    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (2, 0)
    assert view.log[-3:-1] == expected_log
    assert world.files() == expected_files


def test_a_batch_with_an_operation_already_recorded_records_nothing(world: World) -> None:
    """The pending guard holds for a whole batch: one outcome already recorded
    (by the worker that took over) rolls back all of them, counts and log lines."""
    run_id = world.run(copy_automation(world, 3))
    assert world.worker("planner").step()
    claim = leases.claim_next(world.engine(), "w1")
    assert claim is not None and claim.stage is RunStage.EXECUTING
    with world.db.read() as conn:
        first, second, _third = engine_store.pending_operations(conn, run_id)
    now = world.clock.now()
    with world.db.write() as conn:
        engine_store.complete_operations(
            conn,
            run_id,
            "w1",
            claim.token,
            now + 10**6,
            [OperationOutcome(second.id, "done", True, now, "two")],
        )
    with pytest.raises(LeaseLost, match="already recorded"), world.db.write() as conn:
        engine_store.complete_operations(
            conn,
            run_id,
            "w1",
            claim.token,
            now + 10**6,
            [
                OperationOutcome(first.id, "done", True, now, "one"),
                OperationOutcome(second.id, "failed", False, now, "two again"),
            ],
        )
    view = world.view(run_id)
    assert (view.run.successful_operations, view.run.failed_operations) == (1, 0)
    assert [op[4] for op in view.operations] == ["pending", "done", "pending"]
    assert "one" not in view.log and "two again" not in view.log
    assert view.log.count("two") == 1


def test_a_small_plan_goes_on_executing_under_the_planner_s_lease(world: World) -> None:
    run_id = world.run(copy_automation(world, 3))
    w1 = world.worker("w1", hand_off=True)
    assert w1.step()  # plan; the same commit moves the run on to executing
    view = world.view(run_id)
    assert view.run.run_stage is RunStage.EXECUTING
    assert (view.lease.lease_owner, view.lease.lease_generation) == ("w1", 1)
    assert view.lease.queued_for_execution_at == view.lease.executing_at
    assert world.worker("rival", hand_off=True).step() is False  # nothing to claim
    assert w1.step()  # executes with the claim its plan handed on, no claim of its own
    assert w1.step() is False
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.lease.lease_generation == 1
    assert view.log[0] == "Planning started (worker w1)."
    assert view.log[-5:] == [
        "Execution started (worker w1): 3 operations to perform.",
        "Copied in/f00.txt to out/f00.txt (7 bytes).",
        "Copied in/f01.txt to out/f01.txt (14 bytes).",
        "Copied in/f02.txt to out/f02.txt (21 bytes).",
        "Run finished with status success: 3 operations succeeded, 0 failed.",
    ]
    assert world.files("out") == expected_out(3)


def test_a_run_handed_on_to_execution_is_taken_over_when_its_worker_dies(world: World) -> None:
    run_id = world.run(copy_automation(world, 3))
    dead = world.worker("dead", hand_off=True)
    assert dead.step()  # planned and handed on; then the process dies before executing
    world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("w2", hand_off=True).drain() == 1
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.lease.lease_losses == 1
    assert (
        "The lease of worker dead ran out 1.0 s ago during executing (operation #1 was in "
        "flight at 1 of at most 3 lease losses); worker w2 takes over and resumes with the 3 "
        "operations not yet done."
    ) in view.log
    assert len(outcome_lines(view.log)) == 3
    assert world.files("out") == expected_out(3)


def test_a_worker_loop_stopped_during_planning_hands_back_the_planned_run(world: World) -> None:
    """The stop comes while the plan commits: the loop ends without another step, and
    the run its plan handed on must still be released (it used to keep the lease until
    it ran out, and the next worker counted a lease loss)."""
    run_id = world.run(copy_automation(world, 2))
    worker = world.worker("stopping", hand_off=True)
    worker.engine.hooks = Hooks(before_plan_commit=lambda _run: worker.engine.stop.set())
    worker.run(Wakeup())  # returns once stopped
    view = world.view(run_id)
    assert (view.run.run_stage, view.lease.lease_owner) == (RunStage.EXECUTING, None)
    assert world.worker("next", hand_off=True).drain() == 1
    view = world.view(run_id)
    assert (view.run.status, view.lease.lease_losses) == (RunStatus.SUCCESS, 0)


def test_a_stopping_worker_hands_back_the_run_its_plan_handed_on(world: World) -> None:
    run_id = world.run(copy_automation(world, 2))
    stopping = world.worker("stopping", hand_off=True)
    assert stopping.step()
    stopping.engine.stop.set()
    assert stopping.step() is False
    view = world.view(run_id)
    assert (view.run.run_stage, view.lease.lease_owner) == (RunStage.EXECUTING, None)
    assert world.worker("next", hand_off=True).drain() == 1
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.lease.lease_losses == 0
    assert (
        "Worker next picks up the run its previous worker released and resumes with the "
        "2 operations not yet done."
    ) in view.log
