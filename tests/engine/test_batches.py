"""Outcomes committed in batches: what a crash inside a batch redoes, exact counts and log,
failures inside a batch, when a batch must commit early, durable writes before the commit.

A worker "dies" by an exception from a hook, as in test_leases.py: the run
is left as a killed process leaves it (lease held, the batch in hand not
committed), and a ManualClock moves past the lease.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_world import World
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from conveyor.domain.runs import RunStatus
from conveyor.engine.hooks import Hooks
from conveyor.engine.storage import Storage
from conveyor.engine.worker import Worker
from conveyor.store.schema import automation_runs as runs_t

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


class Crash(Exception):
    """Stands for a worker process dying at this point."""


def crash_at(seq: int) -> Hooks:
    def after_operation(_run_id: int, current: int) -> None:
        if current == seq:
            raise Crash(f"died after the file action of operation {seq}")

    return Hooks(after_operation=after_operation)


def sources(world: World, count: int, folder: str = "in") -> dict[str, bytes]:
    data = {f"f{i:02}.txt": f"file {i} ".encode() * (i + 1) for i in range(count)}
    for name, content in data.items():
        world.write(f"{folder}/{name}", content)
    return data


def copied_lines(log: list[str]) -> list[str]:
    return [line for line in log if line.startswith("Copied ")]


def test_a_crash_inside_a_batch_redoes_only_the_uncommitted_batch(world: World) -> None:
    data = sources(world, 8)
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    # Batches of 3: operations 1-3 commit together; 4 and 5 are copied, then it dies.
    dead = world.worker("dead", hooks=crash_at(5), outcome_batch_size=3)
    assert dead.drain() == 2
    view = world.view(run_id)
    assert view.run.successful_operations == 3
    assert [op[4] for op in view.operations] == ["done"] * 3 + ["pending"] * 5
    assert (world.root / "out/f04.txt").exists()  # performed, not committed
    # A temp file an interrupted copy of operation 6 would have left behind.
    world.write(f"out/.conveyor-r{run_id}-o6-deadbeef.tmp", "half a file")

    world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("w2").drain() == 1

    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (8, 0)
    assert world.files("out") == {f"out/{n}": d for n, d in data.items()}  # no temp file left
    assert sorted(copied_lines(view.log)) == sorted(
        f"Copied in/{n} to out/{n} ({len(d)} bytes)." for n, d in data.items()
    )
    assert (
        "The lease of worker dead ran out 1.0 s ago during executing (operation #4 was in "
        "flight at 1 of at most 3 lease losses); worker w2 takes over and resumes with the 5 "
        "operations not yet done."
    ) in view.log
    assert view.log[-1] == "Run finished with status success: 8 operations succeeded, 0 failed."


def test_counts_move_in_batches_while_the_run_executes(world: World) -> None:
    sources(world, 7)
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    seen: list[int] = []

    def look(_run_id: int, _seq: int) -> None:
        with world.db.read() as conn:
            seen.append(
                conn.execute(
                    select(runs_t.c.successful_operations).where(runs_t.c.id == run_id)
                ).scalar_one()
            )

    world.worker("w1", hooks=Hooks(after_operation=look), outcome_batch_size=3).drain()
    # Read after each file action, before its outcome is recorded: the count grows
    # by 3 at each commit; the last, short batch commits with the finish.
    assert seen == [0, 0, 0, 3, 3, 3, 6]
    view = world.view(run_id)
    assert (view.run.successful_operations, view.run.failed_operations) == (7, 0)

    # With a time limit of 0 every batch is one outcome: counts move at each operation
    # (this second run skips every file: the copies exist with the same size).
    run_id = world.run(automation)
    seen.clear()
    world.worker("w1", hooks=Hooks(after_operation=look), outcome_batch_seconds=0.0).drain()
    assert seen == [0, 1, 2, 3, 4, 5, 6]
    view = world.view(run_id)
    assert (view.run.status, view.run.successful_operations) == (RunStatus.SUCCESS, 7)


def test_failures_inside_a_batch_are_counted_and_logged_with_their_reasons(world: World) -> None:
    sources(world, 5)
    world.write("out/f03.txt/blocker", "a folder where a copy should go")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    planner = world.worker("w1")
    assert planner.step()  # planned: f03 is refused (a folder at the destination)
    (world.root / "in/f01.txt").unlink()  # gone after planning
    assert planner.step()  # executed in one batch

    view = world.view(run_id)
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (3, 2)
    outcomes = view.log[-6:-1]
    assert outcomes == [
        "Copied in/f00.txt to out/f00.txt (7 bytes).",
        "Could not copy in/f01.txt to out/f01.txt: in/f01.txt no longer exists.",
        "Copied in/f02.txt to out/f02.txt (21 bytes).",
        "Refused in/f03.txt -> out/f03.txt: a folder exists at the destination.",
        "Copied in/f04.txt to out/f04.txt (35 bytes).",
    ]
    assert view.levels[-6:-1] == ["info", "error", "info", "error", "info"]
    assert [op[4] for op in view.operations] == ["done", "failed", "done", "failed", "done"]
    assert view.log[-1] == (
        "Run finished with status partial_failure: 3 operations succeeded, 2 failed. "
        "First failure: Could not copy in/f01.txt to out/f01.txt: in/f01.txt no longer exists."
    )


def test_a_move_commits_the_batch_before_it_so_a_redo_never_misses_its_source(
    world: World,
) -> None:
    """Copies of a file to all destinations but the last come before its move: if
    they shared the move's batch, a crash after the move would redo them with
    their source gone and log failures for copies that were made."""
    data = sources(world, 2)
    automation = world.automation(
        "move_file", path="in", source="*.txt", destinations=["backup/", "archive/"]
    )
    run_id = world.run(automation)
    dead = world.worker("dead", hooks=crash_at(2))  # after the first move's rename
    assert dead.drain() == 2
    view = world.view(run_id)
    assert view.run.successful_operations == 1  # the copy was committed before the move
    assert [op[4] for op in view.operations] == ["done", "pending", "pending", "pending"]

    world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("w2").drain() == 1

    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (4, 0)
    assert [line for line in view.log if line.startswith(("Copied", "Moved", "Already"))] == [
        "Copied in/f00.txt to backup/f00.txt (7 bytes).",
        "Already moved: in/f00.txt is gone and archive/f00.txt has the planned size (7 bytes).",
        "Copied in/f01.txt to backup/f01.txt (14 bytes).",
        "Moved in/f01.txt to archive/f01.txt (14 bytes).",
    ]
    assert world.files() == {
        **{f"backup/{n}": d for n, d in data.items()},
        **{f"archive/{n}": d for n, d in data.items()},
    }


def test_deletes_share_a_batch_and_a_redone_delete_counts_once(world: World) -> None:
    sources(world, 4, folder="cache")
    automation = world.automation("delete_file", path="cache", source="*.txt")
    run_id = world.run(automation)
    dead = world.worker("dead", hooks=crash_at(3))
    assert dead.drain() == 2
    assert world.view(run_id).run.successful_operations == 0  # one batch, not committed
    assert world.files("cache") == {"cache/f03.txt": b"file 3 " * 4}

    world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("w2").drain() == 1
    view = world.view(run_id)
    assert (view.run.successful_operations, view.run.failed_operations) == (4, 0)
    outcomes = [line for line in view.log if line.startswith(("Deleted", "Already"))]
    assert outcomes == [
        "Already deleted: cache/f00.txt was gone.",
        "Already deleted: cache/f01.txt was gone.",
        "Already deleted: cache/f02.txt was gone.",
        "Deleted cache/f03.txt.",
    ]
    assert world.files("cache") == {}


class RecordingStorage(Storage):
    """The real storage, noting when the folders of a batch are fsynced."""

    def __init__(self, root: Path, events: list[str]) -> None:
        super().__init__(root, durable=True)
        self.events = events

    def sync_folders(self, folders: set[str]) -> None:
        self.events.append(
            "sync " + " ".join(sorted(Path(f).relative_to(self.root).as_posix() for f in folders))
        )
        super().sync_folders(folders)


def test_durable_writes_fsync_a_batch_s_folders_once_before_its_commit(world: World) -> None:
    sources(world, 3, folder="in/a")
    sources(world, 2, folder="in/b")
    automation = world.automation("copy_file", path="in", source="**/*.txt", destinations=["out/"])
    run_id = world.run(automation)
    events: list[str] = []
    engine = world.engine(outcome_batch_size=4)
    engine.storage = RecordingStorage(world.root, events)

    def committed(_conn: Connection) -> None:
        events.append("commit")

    event.listen(world.db.engine, "commit", committed)
    try:
        Worker(engine, "w1").drain()
    finally:
        event.remove(world.db.engine, "commit", committed)
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert len(copied_lines(view.log)) == 5
    # Operations 1-4 (into out/a and out/b), then operation 5 with the finish.
    assert [e for e in events if e.startswith("sync")] == ["sync out/a out/b", "sync out/b"]
    for index, entry in enumerate(events):
        if entry.startswith("sync"):
            assert events[index + 1] == "commit", events  # the batch's own commit


def test_a_batch_waits_for_four_times_the_last_commit_before_committing_by_age(
    world: World,
) -> None:
    """Slow commits (a saturated disk, a distant database) get fuller batches: by age a
    batch is full once it is outcome_batch_seconds old and COMMIT_SHARE times as old as
    the last commit took; 0 still means one commit per operation."""
    import time

    from conveyor.engine import executor
    from conveyor.engine.leases import Claim

    engine = world.engine(outcome_batch_seconds=0.2, outcome_batch_size=128)
    claim = Claim.__new__(Claim)
    batch = executor._Batch(engine, claim)
    batch.outcomes = [None] * 3  # type: ignore[list-item]
    batch.started = time.monotonic() - 0.3
    assert batch.full()  # commits are fast: the setting rules
    batch.commit_seconds = 0.5
    assert not batch.full()  # 0.3 s old, but the last commit took 0.5 s: not yet
    batch.started = time.monotonic() - executor.COMMIT_SHARE * 0.5 - 0.01
    assert batch.full()
    per_operation = executor._Batch(world.engine(outcome_batch_seconds=0.0), claim)
    per_operation.outcomes = [None]  # type: ignore[list-item]
    per_operation.started = time.monotonic()
    per_operation.commit_seconds = 10.0
    assert per_operation.full()
