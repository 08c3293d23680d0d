"""Each automation type on real files: the exact files on disk, the run's fields and its log.

File handling does not depend on the database, so these run on SQLite only;
claims and leases are tested on both databases in test_leases.py.
"""

from __future__ import annotations

import pytest
from engine_world import World

from conveyor.domain.runs import RunStage, RunStatus

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def test_create_folder_evaluates_date_patterns_at_the_runtime_in_the_time_zone(
    world: World,
) -> None:
    world.write("blocked", "a file where a folder should go")
    (world.root / "existing").mkdir()
    tokyo = world.automation(
        "create_folder",
        destinations=["reports/%Y/%m-%d", "archive/%Y-%m-%d/", "existing", "blocked"],
        path_time_zone="Tokyo",
    )
    utc = world.automation("create_folder", destinations=["utc/%Y-%m-%d"])
    first, second = world.run(tokyo), world.run(utc)
    worker = world.worker()
    planned_at = world.clock.now()
    assert worker.step()  # plan the Tokyo run
    world.clock.advance(5)
    assert worker.step()  # execute it
    assert worker.drain() == 2  # plan and execute the UTC run

    assert world.folders() == [
        "archive",
        "archive/2024-02-17",
        "existing",
        "reports",
        "reports/2024",
        "reports/2024/02-17",
        "utc",
        "utc/2024-02-16",
    ]
    assert world.files() == {"blocked": b"a file where a folder should go"}
    view = world.view(first)
    assert view.run.run_stage is RunStage.FINISHED
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (3, 1)
    assert view.run.completed_at == world.clock.now()
    assert (view.lease.planning_at, view.lease.queued_for_execution_at) == (planned_at, planned_at)
    assert view.lease.executing_at == world.clock.now()
    assert (view.lease.lease_owner, view.lease.lease_expires_at) == (None, None)
    assert view.log == [
        "Planning started (worker w1).",
        "Plan: create 4 folders.",
        "Planned #1: create folder reports/2024/02-17.",
        "Planned #2: create folder archive/2024-02-17.",
        "Planned #3: create folder existing.",
        "Planned #4: create folder blocked.",
        "Execution started (worker w1): 4 operations to perform.",
        "Created folder reports/2024/02-17.",
        "Created folder archive/2024-02-17.",
        "Folder existing already exists.",
        "Could not create folder blocked: a file exists at that path.",
        "Run finished with status partial_failure: 3 operations succeeded, 1 failed. "
        "First failure: Could not create folder blocked: a file exists at that path.",
    ]
    assert view.levels[-2:] == ["error", "warning"]
    assert [op[4] for op in view.operations] == ["done", "done", "done", "failed"]
    assert world.view(second).run.status is RunStatus.SUCCESS
    assert world.view(second).log[2:3] == ["Planned #1: create folder utc/2024-02-16."]


def test_copy_keeps_the_structure_below_path_and_honours_exclude_pattern(world: World) -> None:
    world.write("in/a.txt", "alpha")
    world.write("in/sub/b.txt", "bravo!")
    world.write("in/sub/c.log", "not a txt")
    world.write("in/drafts/d.txt", "draft")
    world.write("elsewhere/e.txt", "outside path")
    automation = world.automation(
        "copy_file",
        path="in",
        source="**/*.txt",
        exclude_pattern="drafts/**",
        destinations=["out/", "dated/%Y-%m-%d/"],
    )
    run_id = world.run(automation)
    world.worker().drain()

    assert world.files("out") == {"out/a.txt": b"alpha", "out/sub/b.txt": b"bravo!"}
    assert world.files("dated") == {
        "dated/2024-02-16/a.txt": b"alpha",
        "dated/2024-02-16/sub/b.txt": b"bravo!",
    }
    assert len(world.files("in")) == 4  # copying leaves the sources alone
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (4, 0)
    assert view.log == [
        "Planning started (worker w1).",
        "Plan: 2 files under 'in' match '**/*.txt' (1 more excluded by 'drafts/**'); "
        "copy each to 2 destinations: 4 operations.",
        "Planned #1: copy in/a.txt -> out/a.txt.",
        "Planned #2: copy in/a.txt -> dated/2024-02-16/a.txt.",
        "Planned #3: copy in/sub/b.txt -> out/sub/b.txt.",
        "Planned #4: copy in/sub/b.txt -> dated/2024-02-16/sub/b.txt.",
        "Execution started (worker w1): 4 operations to perform.",
        "Copied in/a.txt to out/a.txt (5 bytes).",
        "Copied in/a.txt to dated/2024-02-16/a.txt (5 bytes).",
        "Copied in/sub/b.txt to out/sub/b.txt (6 bytes).",
        "Copied in/sub/b.txt to dated/2024-02-16/sub/b.txt (6 bytes).",
        "Run finished with status success: 4 operations succeeded, 0 failed.",
    ]
    assert [(op[1], op[4]) for op in view.operations] == [("copy", "done")] * 4
    # No temp file is left next to the copies.
    assert not [p for p in (world.root / "out").rglob(".conveyor-*")]


def test_single_star_stays_in_one_folder_and_exclude_by_name_applies_at_any_depth(
    world: World,
) -> None:
    world.write("data/top.csv", "1")
    world.write("data/deep/er.csv", "22")
    world.write("data/deep/skip.csv", "333")
    shallow = world.automation("copy_file", path="data", source="*.csv", destinations=["a/"])
    deep = world.automation(
        "copy_file",
        path="data",
        source="**/*.csv",
        exclude_pattern="skip.*",
        destinations=["b/"],
    )
    world.run(shallow)
    world.run(deep)
    world.worker().drain()
    assert world.files("a") == {"a/top.csv": b"1"}
    assert world.files("b") == {"b/top.csv": b"1", "b/deep/er.csv": b"22"}


def test_flatten_file_destinations_and_renaming(world: World) -> None:
    world.write("in/x/report.txt", "from x")
    world.write("in/y/report.txt", "from y, longer")
    world.write("in/y/notes.txt", "notes")
    flat = world.automation(
        "copy_file",
        path="in",
        source="**/*.txt",
        destinations=["flat/"],
        flatten_destination_structure=True,
        destination_replace_from=".txt",
        destination_replace_to=".bak",
    )
    single = world.automation(
        "copy_file",
        path="in",
        source="x/report.txt",
        destinations=["latest/report-%Y.txt"],
    )
    flat_run, single_run = world.run(flat), world.run(single)
    world.worker().drain()

    assert world.files("flat") == {"flat/notes.bak": b"notes", "flat/report.bak": b"from x"}
    assert world.files("latest") == {"latest/report-2024.txt": b"from x"}
    view = world.view(flat_run)
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (2, 1)
    assert view.log[2:] == [
        "Planned #1: copy in/x/report.txt -> flat/report.bak.",
        "Planned #2: copy in/y/notes.txt -> flat/notes.bak.",
        "Planned #3: refuse in/y/report.txt -> flat/report.bak: in/x/report.txt already goes "
        "to flat/report.bak in this run.",
        "Execution started (worker w1): 3 operations to perform.",
        "Copied in/x/report.txt to flat/report.bak (6 bytes).",
        "Copied in/y/notes.txt to flat/notes.bak (5 bytes).",
        "Refused in/y/report.txt -> flat/report.bak: in/x/report.txt already goes to "
        "flat/report.bak in this run.",
        "Run finished with status partial_failure: 2 operations succeeded, 1 failed. "
        "First failure: Refused in/y/report.txt -> flat/report.bak: in/x/report.txt already "
        "goes to flat/report.bak in this run.",
    ]
    assert world.view(single_run).log[1] == (
        "Plan: 1 file under 'in' matches 'x/report.txt'; copy each to 1 destination: 1 operation."
    )


KEPT = b"OLD, longer"


@pytest.mark.parametrize(
    ("overwrite_files", "always", "same_size_result", "other_size_result"),
    [
        (False, False, b"OLD12", KEPT),
        (True, False, b"OLD12", b"new12"),
        (False, True, b"OLD12", KEPT),
        (True, True, b"new12", b"new12"),
    ],
)
def test_existing_destinations_follow_overwrite_files_and_the_same_size_rule(
    world: World,
    overwrite_files: bool,
    always: bool,
    same_size_result: bytes,
    other_size_result: bytes,
) -> None:
    """Files.com: without overwrite_files an existing destination is never overwritten; with
    it, one of the same size is still skipped unless always_overwrite_size_matching_files
    (which does nothing on its own)."""
    world.write("in/same.txt", "new12")
    world.write("in/other.txt", "new12")
    world.write("out/same.txt", "OLD12")  # 5 bytes, like the source
    world.write("out/other.txt", KEPT)  # 11 bytes
    automation = world.automation(
        "copy_file",
        path="in",
        source="*.txt",
        destinations=["out/"],
        overwrite_files=overwrite_files,
        always_overwrite_size_matching_files=always,
    )
    run_id = world.run(automation)
    world.worker().drain()

    assert world.files("out") == {
        "out/other.txt": other_size_result,
        "out/same.txt": same_size_result,
    }
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (2, 0)
    if other_size_result == KEPT:
        other = (
            "Skipped copying in/other.txt: out/other.txt already exists (11 bytes) and "
            "overwrite_files is false."
        )
    else:
        other = (
            "Copied in/other.txt to out/other.txt (5 bytes), overwriting the existing file "
            "(11 bytes)."
        )
    if same_size_result == b"OLD12":
        same = (
            "Skipped copying in/same.txt: out/same.txt already exists with the same size (5 bytes)."
        )
    else:
        same = (
            "Copied in/same.txt to out/same.txt (5 bytes), overwriting the existing file (5 bytes)."
        )
    assert view.log[-3:-1] == [other, same]
    states = [op[4] for op in view.operations]
    assert states == [
        "skipped" if other_size_result == KEPT else "done",
        "skipped" if same_size_result == b"OLD12" else "done",
    ]


def test_move_copies_to_all_but_the_last_destination_and_moves_to_the_last(world: World) -> None:
    world.write("inbox/a.csv", "a,b\n")
    world.write("inbox/keep.csv", "same")
    world.write("archive/keep.csv", "SAME")
    world.write("inbox/ignored.txt", "not csv")
    automation = world.automation(
        "move_file",
        path="inbox",
        source="*.csv",
        destinations=["backup/", "archive/"],
    )
    run_id = world.run(automation)
    world.worker().drain()

    assert world.files() == {
        "archive/a.csv": b"a,b\n",
        "archive/keep.csv": b"SAME",
        "backup/a.csv": b"a,b\n",
        "backup/keep.csv": b"same",
        "inbox/ignored.txt": b"not csv",
        "inbox/keep.csv": b"same",  # its move was skipped, so it stays
    }
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.log[2:] == [
        "Planned #1: copy inbox/a.csv -> backup/a.csv.",
        "Planned #2: move inbox/a.csv -> archive/a.csv.",
        "Planned #3: copy inbox/keep.csv -> backup/keep.csv.",
        "Planned #4: skip move inbox/keep.csv -> archive/keep.csv (same size exists).",
        "Execution started (worker w1): 4 operations to perform.",
        "Copied inbox/a.csv to backup/a.csv (4 bytes).",
        "Moved inbox/a.csv to archive/a.csv (4 bytes).",
        "Copied inbox/keep.csv to backup/keep.csv (4 bytes).",
        "Skipped moving inbox/keep.csv: archive/keep.csv already exists with the same size "
        "(4 bytes); inbox/keep.csv was left in place.",
        "Run finished with status success: 4 operations succeeded, 0 failed.",
    ]


def test_delete_removes_matching_files_only(world: World) -> None:
    world.write("cache/a.tmp", "1")
    world.write("cache/b.tmp", "2")
    world.write("cache/keep.dat", "3")
    world.write("cache/nested/c.tmp", "4")
    automation = world.automation("delete_file", path="cache", source="*.tmp")
    run_id = world.run(automation)
    world.worker().drain()

    assert world.files() == {"cache/keep.dat": b"3", "cache/nested/c.tmp": b"4"}
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert view.log == [
        "Planning started (worker w1).",
        "Plan: 2 files under 'cache' match '*.tmp'; delete 2 files.",
        "Planned #1: delete cache/a.tmp.",
        "Planned #2: delete cache/b.tmp.",
        "Execution started (worker w1): 2 operations to perform.",
        "Deleted cache/a.tmp.",
        "Deleted cache/b.tmp.",
        "Run finished with status success: 2 operations succeeded, 0 failed.",
    ]


def test_zero_matching_files_is_a_success_with_zero_operations(world: World) -> None:
    world.write("in/a.txt", "a")
    automation = world.automation("copy_file", path="in", source="*.pdf", destinations=["out/"])
    run_id = world.run(automation)
    world.worker().drain()

    view = world.view(run_id)
    assert view.run.run_stage is RunStage.FINISHED
    assert view.run.status is RunStatus.SUCCESS
    assert (view.run.successful_operations, view.run.failed_operations) == (0, 0)
    assert view.operations == []
    assert view.lease.executing_at is None
    assert view.log == [
        "Planning started (worker w1).",
        "Plan: 0 files under 'in' match '*.pdf'; copy each to 1 destination: 0 operations.",
        "Nothing to do: no files matched.",
        "Run finished with status success: 0 operations.",
    ]
    assert not (world.root / "out").exists()


@pytest.mark.parametrize("state", ["deleted", "disabled"])
@pytest.mark.parametrize("stage", [RunStage.QUEUED_FOR_PLANNING, RunStage.QUEUED_FOR_EXECUTION])
def test_a_run_whose_automation_went_away_while_queued_fails_and_touches_nothing(
    world: World, state: str, stage: RunStage
) -> None:
    from conveyor.store import automations

    world.write("in/a.txt", "a")
    automation = world.automation("move_file", path="in", source="*.txt", destinations=["out/"])
    run_id = world.run(automation)
    worker = world.worker()
    if stage is RunStage.QUEUED_FOR_EXECUTION:
        assert worker.step()  # planned, now queued for execution
        assert world.view(run_id).run.run_stage is RunStage.QUEUED_FOR_EXECUTION
    with world.db.write() as conn:
        if state == "deleted":
            automations.delete_automation(conn, automation, world.clock.now())
        else:
            current = automations.get_automation(conn, automation)
            assert current is not None
            automations.update_automation(conn, current, {"disabled": True}, world.clock.now())
    worker.drain()

    assert world.files() == {"in/a.txt": b"a"}
    view = world.view(run_id)
    assert view.run.status is RunStatus.FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (0, 0)
    reason = f"Run failed: automation {automation} was {state} before the run started."
    if stage is RunStage.QUEUED_FOR_PLANNING:
        assert view.log == ["Planning started (worker w1).", reason]
        assert view.operations == []
    else:
        assert view.log[-2:] == [
            "Execution started (worker w1): 1 operation to perform.",
            reason + " 1 planned operations were not performed.",
        ]
        # Not performed: left pending in the finished run (docs/data-model.md).
        assert view.operations == [(1, "move", "in/a.txt", "out/a.txt", "pending")]
    assert view.levels[-1] == "error"
