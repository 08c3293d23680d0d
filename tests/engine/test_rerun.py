"""Reruns planned and performed by the real engine, both databases: a full rerun
(node `planning`), only what the original planned (`execution`), only what failed
in it (`failed_operations`, Conveyor's failed_only), and the same trigger inputs.
"""

from __future__ import annotations

from engine_world import World

from conveyor.domain.runs import RerunNode, RunStatus
from conveyor.store import run_control, triggers


def rerun(world: World, run_id: int, node: RerunNode) -> int:
    with world.db.write() as conn:
        return run_control.create_rerun(
            conn, run_id, by="alice", now=world.clock.now(), node=node
        ).id


def test_a_failed_only_rerun_plans_and_performs_only_what_failed(world: World) -> None:
    for i in range(5):
        world.write(f"in/f{i}.txt", f"file {i}")
    # f1 cannot be copied: a folder stands where it goes (refused); f3 is gone before
    # it is copied (fails when performed).
    world.write("out/f1.txt/blocker", "x")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    original = world.run(automation)
    assert world.worker("w1").step()  # planned
    (world.root / "in/f3.txt").rename(world.root / "aside.txt")
    assert world.worker("w1").step()  # executed
    view = world.view(original)
    assert (view.run.status, view.run.successful_operations, view.run.failed_operations) == (
        RunStatus.PARTIAL_FAILURE,
        3,
        2,
    )
    # The causes are fixed; a new file appears, which only a full rerun would copy.
    (world.root / "out/f1.txt/blocker").unlink()
    (world.root / "out/f1.txt").rmdir()
    (world.root / "aside.txt").rename(world.root / "in/f3.txt")
    world.write("in/f9.txt", "new")
    (world.root / "out/f0.txt").write_text("changed by hand")  # must not be touched

    again = rerun(world, original, RerunNode.FAILED_OPERATIONS)
    world.worker("w1").drain()
    view = world.view(again)
    assert (view.run.status, view.run.successful_operations, view.run.failed_operations) == (
        RunStatus.SUCCESS,
        2,
        0,
    )
    assert [(op[2], op[3]) for op in view.operations] == [
        ("in/f1.txt", "out/f1.txt"),
        ("in/f3.txt", "out/f3.txt"),
    ]
    assert any(
        line.startswith(f"Rerun of run {original} from node failed_operations: 2 of the ")
        for line in view.log
    )
    assert (world.root / "out/f0.txt").read_text() == "changed by hand"
    assert not (world.root / "out/f9.txt").exists()

    # From execution: the original's five operations, decided again now (all skipped
    # or written, the new file left alone); from planning: the new file too.
    from_execution = rerun(world, original, RerunNode.EXECUTION)
    world.worker("w1").drain()
    view = world.view(from_execution)
    assert [op[2] for op in view.operations] == [f"in/f{i}.txt" for i in range(5)]
    assert not (world.root / "out/f9.txt").exists()
    full = rerun(world, original, RerunNode.PLANNING)
    world.worker("w1").drain()
    assert world.view(full).run.status is RunStatus.SUCCESS
    assert (world.root / "out/f9.txt").read_text() == "new"


def test_a_rerun_acts_on_the_file_event_runs_files(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"in/{name}.txt", name)
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    with world.db.write() as conn:
        original = triggers.create_triggered_run(
            conn,
            automation,
            world.clock.now(),
            trigger="action",
            kind="files",
            payload={"files": [{"path": "in/b.txt"}]},
            messages=[],
        )
    world.worker("w1").drain()
    assert world.files("out") == {"out/b.txt": b"b"}
    (world.root / "out/b.txt").unlink()
    again = rerun(world, original, RerunNode.PLANNING)
    world.worker("w1").drain()
    assert world.view(again).run.status is RunStatus.SUCCESS
    assert world.files("out") == {"out/b.txt": b"b"}  # the event's one file, not a and c
