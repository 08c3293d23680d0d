"""Cancel during a 2,000-file copy, at random moments, both databases (issue 15).

Twenty moments per database: twelve in one worker's run (eight inside a batch,
two at a batch's end, the first and the last operation), six at takeovers, two
in planning.

The cancel is requested through `store.run_control.request_cancel` (what the API
calls) from inside the worker's own step, right after the file action of
operation K and before its outcome is committed: inside a batch, at a batch's
last operation, after the very last operation. Takeovers: the worker dies
(an exception from a hook, as in test_batches.py) with the cancel requested
before or after its death, and a second worker takes the run over.

What must hold each time: the run ends `canceled` (finished, completed_at set,
the day's count moved from running to canceled); the operations done are
exactly the first M, each counted and logged once; no destination exists for
the others and none is partial (no temp file left); M is the operation at
which the worker committed after the request, so nothing after that boundary
was performed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from engine_world import World
from sqlalchemy import select

from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine.hooks import Hooks
from conveyor.store import run_control
from conveyor.store.schema import run_daily_counts

FILES = 2000
BATCH = 64  # outcome_batch_size for these runs: 31 batches and a short one
# Seeded, so every run of the suite checks the same points.
_PICK = random.Random(15)
# Inside a batch (not its last operation), at a batch's last operation, the first
# and the very last operation (the cancel then comes before the finish commits).
INSIDE = sorted(_PICK.sample([k for k in range(2, FILES) if k % BATCH], 8))
BOUNDARY = sorted(_PICK.sample(range(BATCH, FILES, BATCH), 2))
POINTS = [1, *INSIDE, *BOUNDARY, FILES]


class Crash(Exception):
    """Stands for a worker process dying at this point."""


@dataclass
class Copy:
    automation: int
    run: int


def copy_run(world: World, name: str) -> Copy:
    """An automation copying the 2,000 files of in/ to out-NAME/, and a run of it, planned."""
    automation = world.automation(
        "copy_file", path="in", source="*.txt", destinations=[f"out-{name}/"]
    )
    run = world.run(automation)
    assert world.worker("planner").step()
    assert world.view(run).run.run_stage is RunStage.QUEUED_FOR_EXECUTION
    return Copy(automation, run)


@pytest.fixture
def sources(world: World) -> dict[str, bytes]:
    data = {f"f{i:04}.txt": f"{i}:".encode() * (1 + i % 7) for i in range(FILES)}
    for name, content in data.items():
        world.write(f"in/{name}", content)
    return data


def cancel_at(world: World, k: int) -> Hooks:
    def after_operation(run_id: int, seq: int) -> None:
        if seq == k:
            with world.db.write() as conn:
                run_control.request_cancel(conn, run_id, by="alice", now=world.clock.now())

    return Hooks(after_operation=after_operation)


def check_canceled(world: World, copy: Copy, sources: dict[str, bytes], name: str) -> int:
    """Everything that must hold of a canceled copy; returns M, the operations done."""
    view = world.view(copy.run)
    run = view.run
    assert (run.status, run.run_stage) == (RunStatus.CANCELED, RunStage.FINISHED)
    assert run.completed_at is not None and run.cancel_requested_by == "alice"
    states = [op[4] for op in view.operations]
    done = states.count("done")
    # The first M operations are done; the rest stay pending in the finished run (not
    # performed): none failed.
    assert states == ["done"] * done + ["pending"] * (FILES - done)
    assert (run.successful_operations, run.failed_operations) == (done, 0)
    copied = [line for line in view.log if line.startswith("Copied ")]
    assert len(copied) == len(set(copied)) == done  # each counted and logged once
    # On disk: exactly the done operations' destinations, complete; no temp files.
    names = sorted(sources)
    assert world.files(f"out-{name}") == {f"out-{name}/{n}": sources[n] for n in names[:done]}
    assert view.log[-1].startswith("Run canceled by alice (requested at ")
    assert view.log[-1].endswith(
        f"{FILES - done} not performed. Run finished with status canceled."
    )
    with world.db.read() as conn:
        counts = dict(
            conn.execute(
                select(run_daily_counts.c.status, run_daily_counts.c.count).where(
                    run_daily_counts.c.automation_id == copy.automation,
                    run_daily_counts.c.count != 0,
                )
            ).all()
        )
    assert counts == {"canceled": 1}
    assert view.lease.lease_owner is None
    return done


def test_cancel_at_random_moments_of_a_2000_file_copy(
    world: World, sources: dict[str, bytes]
) -> None:
    for k in POINTS:
        copy = copy_run(world, str(k))
        # Batches by size only (no commit on time), so where a batch ends is known.
        worker = world.worker(
            "w1",
            hooks=cancel_at(world, k),
            outcome_batch_size=BATCH,
            outcome_batch_seconds=3600.0,
        )
        assert worker.step()
        done = check_canceled(world, copy, sources, str(k))
        # It stopped at the first commit after the request: the end of K's batch (K's
        # file action was already done), and performed nothing after it.
        assert done == min(FILES, -(-k // BATCH) * BATCH), (k, done)


@pytest.mark.parametrize("died_before_cancel", [False, True])
def test_cancel_honoured_by_the_worker_that_takes_over(
    world: World, sources: dict[str, bytes], died_before_cancel: bool
) -> None:
    """The first worker dies inside a batch (its last operations performed, not
    committed); the cancel was requested before it died, or while its lease was
    running out. The worker taking over looks at the disk, records what was done
    (counted once), and finishes the run as canceled without performing more."""
    for k, death in ((5, 40), (705, 730), (1990, 1999)):  # each pair in one batch
        name = f"{k}-{death}-{died_before_cancel}"
        copy = copy_run(world, name)

        def after_operation(run_id: int, seq: int, k: int = k, death: int = death) -> None:
            if seq == k and not died_before_cancel:
                with world.db.write() as conn:
                    run_control.request_cancel(conn, run_id, by="alice", now=world.clock.now())
            if seq == death:
                raise Crash(f"died after the file action of operation {seq}")

        dead = world.worker(
            "dead",
            hooks=Hooks(after_operation=after_operation),
            outcome_batch_size=BATCH,
            outcome_batch_seconds=3600.0,  # commits only when a batch is full
        )
        assert dead.step()
        view = world.view(copy.run)
        assert view.run.run_stage is RunStage.EXECUTING  # left as a killed process leaves it
        if died_before_cancel:
            with world.db.write() as conn:
                run_control.request_cancel(conn, copy.run, by="alice", now=world.clock.now())
        world.clock.advance(world.settings.lease_seconds + 1)
        assert world.worker("w2", outcome_batch_size=BATCH).step()
        done = check_canceled(world, copy, sources, name)
        assert done == death  # what the dead worker did is kept; nothing after it
        assert "worker w2 took the run over and stopped it" in world.view(copy.run).log[-1]


def test_cancel_during_planning_and_at_a_planning_takeover(
    world: World, sources: dict[str, bytes]
) -> None:
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["o/"])

    def ask(run_id: int) -> None:
        with world.db.write() as conn:
            run_control.request_cancel(conn, run_id, by="alice", now=world.clock.now())

    # The request comes while the plan is made: the plan is not saved.
    run = world.run(automation)
    assert world.worker("w1", hooks=Hooks(before_plan_commit=ask)).step()
    view = world.view(run)
    assert (view.run.status, view.operations) == (RunStatus.CANCELED, [])
    assert "stopped at the end of planning; the plan was not saved" in view.log[-1]

    # The planner dies after the request; the next worker ends the run at its claim.
    def ask_and_die(run_id: int) -> None:
        ask(run_id)
        raise Crash("died before committing the plan")

    run = world.run(automation)
    assert world.worker("dead", hooks=Hooks(before_plan_commit=ask_and_die)).step()
    assert world.view(run).run.run_stage is RunStage.PLANNING
    world.clock.advance(world.settings.lease_seconds + 1)
    assert not world.worker("w2").step()  # nothing left to work on once it is canceled
    view = world.view(run)
    assert (view.run.status, view.run.run_stage) == (RunStatus.CANCELED, RunStage.FINISHED)
    assert "worker w2 took the run over during planning and stopped it" in view.log[-1]
    assert world.files("o") == {}
