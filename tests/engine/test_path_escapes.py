"""Links out of the storage root: operations fail with their reason, nothing outside moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_world import World

from conveyor.domain.runs import RunStage, RunStatus

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

ESCAPE = "resolves outside the storage root (through a symbolic link)"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"do not touch")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_copy_through_links_out_of_the_root_is_refused(world: World, outside: Path) -> None:
    world.write("in/ok.txt", "fine")
    (world.root / "in" / "link.txt").symlink_to(outside / "secret.txt")
    (world.root / "evil").symlink_to(outside)
    automation = world.automation(
        "copy_file", path="in", source="*.txt", destinations=["evil/", "out/"]
    )
    run_id = world.run(automation)
    world.worker().drain()

    assert snapshot(outside) == {"secret.txt": b"do not touch"}
    assert world.files("out") == {"out/ok.txt": b"fine"}
    view = world.view(run_id)
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (1, 3)
    assert view.log[-5:] == [
        f"Refused in/link.txt -> evil/link.txt: 'in/link.txt' {ESCAPE}.",
        f"Refused in/link.txt -> out/link.txt: 'in/link.txt' {ESCAPE}.",
        f"Refused in/ok.txt -> evil/ok.txt: 'evil/ok.txt' {ESCAPE}.",
        "Copied in/ok.txt to out/ok.txt (4 bytes).",
        "Run finished with status partial_failure: 1 operation succeeded, 3 failed. "
        f"First failure: Refused in/link.txt -> evil/link.txt: 'in/link.txt' {ESCAPE}.",
    ]
    assert view.levels[-5:] == ["error", "error", "error", "info", "warning"]


def test_a_link_made_after_planning_is_refused_at_execution(world: World, outside: Path) -> None:
    world.write("in/a.txt", "aaa")
    automation = world.automation("move_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    worker = world.worker()
    assert worker.step()  # planned while out/ did not exist
    assert world.view(run_id).run.run_stage is RunStage.QUEUED_FOR_EXECUTION
    (world.root / "out").symlink_to(outside)
    worker.drain()

    assert snapshot(outside) == {"secret.txt": b"do not touch"}
    assert world.files("in") == {"in/a.txt": b"aaa"}
    view = world.view(run_id)
    assert view.run.status is RunStatus.FAILURE
    assert view.log[-2:] == [
        f"Refused to move in/a.txt -> out/a.txt: 'out/a.txt' {ESCAPE}.",
        "Run finished with status failure: 0 operations succeeded, 1 failed. "
        f"First failure: Refused to move in/a.txt -> out/a.txt: 'out/a.txt' {ESCAPE}.",
    ]


def test_delete_and_create_folder_through_links_are_refused(world: World, outside: Path) -> None:
    (world.root / "trash").mkdir()
    (world.root / "trash" / "secret.txt").symlink_to(outside / "secret.txt")
    (world.root / "evil").symlink_to(outside)
    delete = world.automation("delete_file", path="trash", source="*")
    folders = world.automation("create_folder", destinations=["evil/new", "fine/new"])
    delete_run, folder_run = world.run(delete), world.run(folders)
    world.worker().drain()

    assert snapshot(outside) == {"secret.txt": b"do not touch"}
    assert not (outside / "new").exists()
    assert (world.root / "trash" / "secret.txt").is_symlink()
    assert (world.root / "fine" / "new").is_dir()
    assert world.view(delete_run).log[-2:] == [
        f"Refused to delete trash/secret.txt: 'trash/secret.txt' {ESCAPE}.",
        "Run finished with status failure: 0 operations succeeded, 1 failed. "
        f"First failure: Refused to delete trash/secret.txt: 'trash/secret.txt' {ESCAPE}.",
    ]
    assert world.view(folder_run).log[-3:] == [
        f"Refused to create folder evil/new: 'evil/new' {ESCAPE}.",
        "Created folder fine/new.",
        "Run finished with status partial_failure: 1 operation succeeded, 1 failed. "
        f"First failure: Refused to create folder evil/new: 'evil/new' {ESCAPE}.",
    ]


def test_an_automation_path_that_leaves_the_root_fails_planning(
    world: World, outside: Path
) -> None:
    (world.root / "in").symlink_to(outside)
    automation = world.automation("delete_file", path="in", source="*.txt")
    run_id = world.run(automation)
    world.worker().drain()

    assert snapshot(outside) == {"secret.txt": b"do not touch"}
    view = world.view(run_id)
    assert view.run.status is RunStatus.FAILURE
    assert view.run.run_stage is RunStage.FINISHED
    assert view.operations == []
    assert view.log == [
        "Planning started (worker w1).",
        f"Planning failed: the automation's path 'in' {ESCAPE}. Run finished with status failure.",
    ]


def test_links_that_stay_inside_the_root_are_followed(world: World) -> None:
    world.write("real/a.txt", "via a link")
    world.write("real/sub/b.txt", "nested")
    (world.root / "alias").symlink_to(world.root / "real")
    automation = world.automation(
        "copy_file", path="alias", source="**/*.txt", destinations=["out/"]
    )
    run_id = world.run(automation)
    world.worker().drain()

    assert world.files("out") == {"out/a.txt": b"via a link", "out/sub/b.txt": b"nested"}
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.log[2:4] == [
        "Planned #1: copy alias/a.txt -> out/a.txt.",
        "Planned #2: copy alias/sub/b.txt -> out/sub/b.txt.",
    ]
