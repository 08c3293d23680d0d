"""Files an attacker (or an accident) leaves in the storage root, and failures the run's
log must explain: names that are not UTF-8, relative links moved elsewhere, paths
thousands of levels deep, and crashes inside planning or execution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_world import World

from conveyor.clock import ManualClock
from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine.hooks import Hooks
from conveyor.engine.storage import Storage

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

BAD = b"bad-\xff.txt".decode("utf-8", "surrogateescape")


def test_a_name_that_is_not_utf8_is_skipped_by_planning_with_its_reason(world: World) -> None:
    world.write("in/ok.txt", "fine")
    (world.root / "in" / BAD).write_bytes(b"bad")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    world.worker().drain()

    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert world.files("out") == {"out/ok.txt": b"fine"}
    assert view.log[1] == (
        "Plan: 1 file under 'in' matches '*.txt' (1 more file skipped: the name is not "
        "valid UTF-8: in/bad-\\xff.txt); copy each to 1 destination: 1 operation."
    )


def test_moving_a_relative_link_where_it_would_point_outside_is_refused(
    world: World, tmp_path: Path
) -> None:
    world.write("target.txt", "inside")
    (world.root / "in").mkdir()
    (world.root / "in" / "link.txt").symlink_to("../target.txt")  # the root's target.txt
    (world.root / "in" / "ok.txt").symlink_to("../target.txt")
    # From the root itself, "../target.txt" is the root's parent's file: outside.
    (tmp_path / "target.txt").write_text("outside")
    escape = world.automation("move_file", path="in", source="link.txt", destinations=["moved"])
    fine = world.automation("move_file", path="in", source="ok.txt", destinations=["in2/"])
    escape_run, fine_run = world.run(escape), world.run(fine)
    world.worker().drain()

    assert os.readlink(world.root / "in" / "link.txt") == "../target.txt"  # left in place
    assert not os.path.lexists(world.root / "moved")
    assert (world.root / "in2" / "ok.txt").read_text() == "inside"
    assert world.view(fine_run).run.status is RunStatus.SUCCESS
    view = world.view(escape_run)
    assert view.run.status is RunStatus.FAILURE
    assert view.log[-2] == (
        "Refused to move in/link.txt -> moved: 'in/link.txt' is a symbolic link that would "
        "point outside the storage root from 'moved'."
    )


def test_a_path_thousands_of_levels_deep_resolves_without_recursion(world: World) -> None:
    storage = Storage(world.root)
    deep = "a/" * 2499 + "x"
    assert storage.real(deep) == f"{storage.root}/{deep}"


def test_a_crash_in_planning_is_in_the_runs_log(world: World, clock: ManualClock) -> None:
    world.write("in/a.txt", "a")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)

    def explode(_run_id: int) -> None:
        raise RuntimeError("the disk caught fire")

    world.worker("w1", Hooks(before_plan_commit=explode)).drain()
    view = world.view(run_id)
    assert view.run.run_stage is RunStage.PLANNING  # left for its lease to run out
    assert view.log[-1] == (
        "Worker w1 stopped working on the run during planning: RuntimeError: the disk caught "
        "fire; another worker takes over when its lease runs out."
    )
    assert view.levels[-1] == "error"


def test_a_crash_in_execution_is_in_the_runs_log(world: World) -> None:
    world.write("in/a.txt", "a")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)

    def explode(_run_id: int, _seq: int) -> None:
        raise ValueError("no more inodes")

    world.worker("w2", Hooks(after_operation=explode)).drain()
    view = world.view(run_id)
    assert view.log[-1] == (
        "Worker w2 stopped working on the run during executing: ValueError: no more inodes; "
        "another worker takes over when its lease runs out."
    )


def test_an_unexpected_error_in_planning_fails_the_run_with_its_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug stands in for what no real input triggers any more (a name that is not
    UTF-8 used to): the run fails at once with the error's type and message, instead
    of crashing its worker until the lease losses run out."""
    from conveyor.engine import planner

    def broken(_pattern: str) -> None:
        raise RuntimeError("glob engine exploded")

    monkeypatch.setattr(planner, "compile_glob", broken)
    world.write("in/a.txt", "a")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    world.worker().drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.FAILURE
    assert view.lease.lease_losses == 0
    assert view.log[-1] == (
        "Planning failed unexpectedly: RuntimeError: glob engine exploded. "
        "Run finished with status failure."
    )
