"""Fencing: no destructive file action on a file that is not the planned one, none by a
worker that lost its lease, lease losses charged per operation, and the temp sweep.

Storage-level checks run on real files; engine-level ones step real workers
in-process on both databases, with a ManualClock moving past the lease.
Stalled `conveyor worker` processes (SIGSTOP/SIGCONT) are in test_stall.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_world import World
from test_leases import crash_at_operation

from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine import leases
from conveyor.engine.executor import execute_run
from conveyor.engine.hooks import Hooks
from conveyor.engine.storage import Changed, Storage, identity_of
from conveyor.engine.sweep import sweep_temps


def _write(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _replace(path: Path, data: bytes) -> None:
    """A user's new upload at `path`: a new file renamed over the old one."""
    temp = path.with_name(path.name + ".upload")
    temp.write_bytes(data)
    os.replace(temp, path)


def _listing(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------ storage


def test_delete_refuses_a_file_that_is_not_the_planned_one(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    path = _write(tmp_path, "in/a.txt", b"planned")
    planned = identity_of(os.lstat(path))
    _replace(path, b"a new upload")
    with pytest.raises(Changed):
        storage.delete("in/a.txt", planned=planned)
    assert _listing(tmp_path) == {"in/a.txt": b"a new upload"}  # put back, nothing else left
    path.unlink()
    assert storage.delete("in/a.txt", planned=planned) is False  # gone: already deleted
    _write(tmp_path, "in/b.txt", b"planned")
    assert storage.delete("in/b.txt", planned=identity_of(os.lstat(tmp_path / "in/b.txt")))
    assert _listing(tmp_path) == {}


def test_move_never_replaces_a_destination_that_appeared_or_changed(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    source = _write(tmp_path, "in/a.txt", b"planned source")
    planned = identity_of(os.lstat(source))
    _write(tmp_path, "out/a.txt", b"appeared after planning")
    with pytest.raises(Changed):
        storage.move("in/a.txt", "out/a.txt", "r1-o1", planned=planned, old="absent")
    old = _write(tmp_path, "out/b.txt", b"old destination")
    old_id = identity_of(os.lstat(old))
    _replace(old, b"replaced after planning")
    with pytest.raises(Changed):
        storage.move("in/a.txt", "out/b.txt", "r1-o2", planned=planned, old=old_id)
    assert _listing(tmp_path) == {
        "in/a.txt": b"planned source",
        "out/a.txt": b"appeared after planning",
        "out/b.txt": b"replaced after planning",
    }
    # The source itself replaced: refused too.
    _replace(source, b"another source")
    with pytest.raises(Changed):
        storage.move("in/a.txt", "out/c.txt", "r1-o3", planned=planned, old="absent")
    assert not (tmp_path / "out/c.txt").exists()


def test_move_redone_after_a_crash_recognises_its_own_work(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    source = _write(tmp_path, "in/a.txt", b"planned source")
    planned = identity_of(os.lstat(source))
    old = _write(tmp_path, "out/a.txt", b"old")
    old_id = identity_of(os.lstat(old))
    # A crash after the link, before the source's name was removed: both names.
    old.unlink()
    os.link(source, old)
    assert storage.move("in/a.txt", "out/a.txt", "r1-o1", planned=planned, old=old_id)
    assert _listing(tmp_path) == {"out/a.txt": b"planned source"}
    # Redone once more: the source is gone and the destination is the planned file.
    assert storage.move("in/a.txt", "out/a.txt", "r1-o1", planned=planned, old=old_id) is False


def test_copy_refuses_a_changed_destination_but_accepts_its_own_earlier_copy(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path)
    _write(tmp_path, "in/a.txt", b"source bytes")
    src = str(tmp_path / "in/a.txt")
    dst = tmp_path / "out/a.txt"
    old = _write(tmp_path, "out/a.txt", b"old")
    old_id = identity_of(os.lstat(old))
    _replace(dst, b"a user's new file")
    with pytest.raises(Changed):
        storage.copy_resolved(src, str(dst), "r1-o1", old=old_id)
    with pytest.raises(Changed):
        storage.copy_resolved(src, str(dst), "r1-o1", old="absent")
    assert dst.read_bytes() == b"a user's new file"
    # What an earlier attempt wrote (same bytes) is that attempt's result.
    _replace(dst, b"source bytes")
    assert storage.copy_resolved(src, str(dst), "r1-o1", old=old_id) == 12
    assert _listing(tmp_path) == {"in/a.txt": b"source bytes", "out/a.txt": b"source bytes"}


def test_the_fence_runs_before_anything_is_touched(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    source = _write(tmp_path, "in/a.txt", b"x")
    planned = identity_of(os.lstat(source))

    class Stop(Exception):
        pass

    def fence() -> None:
        raise Stop

    with pytest.raises(Stop):
        storage.delete("in/a.txt", planned=planned, fence=fence)
    with pytest.raises(Stop):
        storage.move("in/a.txt", "out/a.txt", "r1-o1", planned=planned, old="absent", fence=fence)
    with pytest.raises(Stop):
        storage.copy_resolved(str(source), str(tmp_path / "out/b.txt"), "r1-o2", fence=fence)
    assert _listing(tmp_path) == {"in/a.txt": b"x"}  # and no temp file


# ------------------------------------------------------------------ engine


def test_a_file_changed_since_planning_fails_its_operation(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"in/{name}.txt", f"{name} planned")
    run_id = world.run(world.automation("delete_file", path="in", source="*.txt"))
    assert world.worker().step()  # plan
    _replace(world.root / "in/b.txt", b"b uploaded after planning")
    assert world.worker().step()  # execute
    view = world.view(run_id)
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (2, 1)
    assert "Refused to delete in/b.txt: in/b.txt changed since planning." in view.log
    assert world.files() == {"in/b.txt": b"b uploaded after planning"}


@pytest.mark.parametrize("where", ["before_the_fence", "between_fence_and_action"])
@pytest.mark.parametrize("kind", ["move_file", "delete_file", "copy_file"])
def test_a_worker_that_lost_its_lease_touches_no_file_and_says_so(
    world: World, kind: str, where: str
) -> None:
    """A stall in-process: while the stale worker is inside operation 1 (after its file
    action, or after its fence and before the action), its lease runs out, another worker
    finishes the run and users upload new files at every planned path. Then it goes on."""
    for i in range(3):
        world.write(f"in/f{i}.txt", f"file {i}")
        world.write(f"out/f{i}.txt", "old destination, another size")
    extra = {} if kind == "delete_file" else {"destinations": ["out/"], "overwrite_files": True}
    run_id = world.run(world.automation(kind, path="in", source="*.txt", **extra))
    assert world.worker("planner").step()
    stalled: list[dict[str, bytes]] = []

    def stall(_run: int, seq: int) -> None:
        if seq != 1 or stalled:
            return
        world.clock.advance(world.settings.lease_seconds + 1)
        assert world.worker("fresh").step()  # takes over and finishes
        assert world.view(run_id).run.status is RunStatus.SUCCESS
        for i in range(3):
            _replace(world.root / f"in/f{i}.txt", f"new upload {i}".encode())
            _replace(world.root / f"out/f{i}.txt", f"new destination {i}".encode())
        stalled.append(world.files())

    hook = "after_operation" if where == "before_the_fence" else "before_action"
    stale_engine = world.engine(Hooks(**{hook: stall}))
    stale = leases.claim_next(stale_engine, "stale")
    assert stale is not None and stale.stage is RunStage.EXECUTING
    execute_run(stale_engine, stale)
    assert stalled, world.view(run_id).log
    assert world.files() == stalled[0]  # nothing touched after the stall
    view = world.view(run_id)
    notes = [line for line in view.log if line.startswith("Worker stale no longer held")]
    prefix = "Worker stale no longer held the lease (generation 2) and did not act: "
    # Deletes share batches, so the stale worker reaches operation 2's fence; a move or
    # an overwrite first commits operation 1's outcome, which the lease guard refuses.
    then = [prefix + f"#2: {describe(kind, 1)}."] if kind == "delete_file" else []
    if where == "before_the_fence":
        assert notes == then
    else:
        # Past its fence when it stalled: the action itself finds the file changed.
        name = "in/f0.txt" if kind == "delete_file" else "out/f0.txt"
        refused = f"Refused to {describe(kind, 0)}: {name} changed since planning."
        assert notes == [prefix + f"it refused: {refused}", *then]
    assert view.run.status is RunStatus.SUCCESS


def describe(kind: str, index: int) -> str:
    if kind == "delete_file":
        return f"delete in/f{index}.txt"
    verb = "move" if kind == "move_file" else "copy"
    return f"{verb} in/f{index}.txt -> out/f{index}.txt (overwrite)"


def test_losses_at_different_operations_do_not_fail_the_run(world: World) -> None:
    """A process restart charges the operation in hand; progress between restarts means
    no operation reaches the limit, however many restarts the run sees."""
    for i in range(6):
        world.write(f"in/f{i}.txt", f"file {i}")
    run_id = world.run(
        world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    )
    assert world.worker("planner", max_lease_losses=1).step()
    for seq in range(1, 5):  # each restart dies after one more operation
        dead = world.worker(f"dead{seq}", hooks=crash_at_operation(seq), max_lease_losses=1)
        assert dead.step()
        world.clock.advance(world.settings.lease_seconds + 1)
    assert world.worker("last", max_lease_losses=1).step()
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS, view.log
    assert view.lease.lease_losses == 4
    assert (view.run.successful_operations, view.run.failed_operations) == (6, 0)


def test_the_sweep_removes_temp_files_of_finished_runs_only(world: World) -> None:
    world.write("in/a.txt", "a")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    finished = world.run(automation)
    assert world.worker().drain() == 2
    waiting = world.run(automation)
    world.write(f"out/.conveyor-r{finished}-o1-0123abcd.tmp", "partial")
    world.write(f"deep/er/.conveyor-r{finished}-o7-89abcdef.tmp", "partial")
    world.write(f"out/.conveyor-r{waiting}-o1-0123abcd.tmp", "in progress")
    world.write("out/.conveyor-r999-o1-0123abcd.tmp", "of a run that is gone")
    world.write(f"out/.conveyor-r{finished}-o2-0123abcd.aside", "never removed unchecked")
    world.write("out/.conveyor-notes.txt", "a user's file")
    assert sweep_temps(world.engine()) == 3
    assert sorted(world.files()) == sorted(
        [
            "in/a.txt",
            f"out/.conveyor-r{finished}-o2-0123abcd.aside",
            f"out/.conveyor-r{waiting}-o1-0123abcd.tmp",
            "out/.conveyor-notes.txt",
            "out/a.txt",
        ]
    )
