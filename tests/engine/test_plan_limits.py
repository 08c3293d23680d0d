"""Plans are bounded: at most max_operations_per_run operations (refused with the count
and the limit), committed PLAN_CHUNK operations per transaction when large."""

from __future__ import annotations

import pytest
from engine_world import World

from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine import planner
from conveyor.engine.leases import claim_next
from conveyor.store import engine as engine_store

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


def files(world: World, count: int) -> None:
    for i in range(count):
        world.write(f"in/f{i:02}.txt", f"file {i}")


def test_a_plan_over_the_cap_fails_with_the_count_and_the_cap(world: World) -> None:
    files(world, 3)
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["a/", "b/"])
    run_id = world.run(automation)
    world.worker("w1", max_operations_per_run=5).drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.FAILURE
    assert view.operations == []
    assert view.log[-1] == (
        "Planning failed: 3 files under 'in' match '*.txt', which makes 6 operations, more "
        "than the 5 one run may have (CONVEYOR_MAX_OPERATIONS_PER_RUN); narrow the "
        "automation's path or source, or split it. Run finished with status failure."
    )
    assert world.files("a") == {}


def test_a_large_plan_is_committed_in_chunks_and_runs_whole(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "PLAN_CHUNK", 2)
    files(world, 5)
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    world.worker().drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.run.successful_operations == 5
    assert world.files("out") == {f"out/f{i:02}.txt": f"file {i}".encode() for i in range(5)}
    assert view.log[1:7] == [
        "Plan: 5 files under 'in' match '*.txt'; copy each to 1 destination: 5 operations.",
        *(f"Planned #{i + 1}: copy in/f{i:02}.txt -> out/f{i:02}.txt." for i in range(5)),
    ]


def test_operations_an_interrupted_planning_saved_are_discarded(world: World) -> None:
    files(world, 2)
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    # What a planner that died after its first chunk leaves: the run in planning, under
    # its lease, with some operations saved.
    claim = claim_next(world.engine(), "dead")
    assert claim is not None and claim.stage is RunStage.PLANNING
    with world.db.write() as conn:
        engine_store.insert_operations(
            conn,
            run_id,
            [
                {
                    "seq": 1,
                    "kind": "copy",
                    "source": "in/old.txt",
                    "destination": "x",
                    "detail": None,
                }
            ],
        )
    world.clock.advance(world.settings.lease_seconds + 1)
    world.worker("w2").drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert [op[2] for op in view.operations] == ["in/f00.txt", "in/f01.txt"]
    assert (
        "The 1 operation an interrupted planning saved were discarded; the run is planned again."
    ) in view.log


def test_the_pause_between_chunks_outlasts_the_sleep_of_any_writer_that_waited(
    backend: str,
) -> None:
    """A writer that began waiting for SQLite's lock at any moment of a chunk's transaction
    (held for `held` seconds) looks again, in SQLite's busy handler, within the pause
    that follows, so it gets the lock before the next chunk."""
    sleeps = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50] + [100] * 40  # ms, in turn
    for held_ms in [0, 1, 4, 9, 17, 30, 52, 77, 102, 127, 177, 227, 228, 400, 1000, 2500]:
        pause = planner.chunk_pause(held_ms / 1000)
        assert pause >= 0.005
        for began in range(0, held_ms + 1, max(1, held_ms // 50)):
            looks = began
            for sleep in sleeps:
                looks += sleep
                if looks > held_ms:
                    break
            assert looks - held_ms < pause * 1000, (held_ms, began, pause)
