"""Files.com settings the planner and the claim honour, on real files with real workers:
trigger-file and source-path tokens, always_serialize_jobs."""

from __future__ import annotations

import pytest
from engine_world import World
from sqlalchemy import select

from conveyor.domain.automations import Automation, AutomationType, Trigger, path_root
from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine.leases import claim_next
from conveyor.engine.watcher import Change, events_for
from conveyor.store import automations, triggers
from conveyor.store.schema import run_daily_counts

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def file_event_run(world: World, automation_id: int, *paths: str) -> int:
    """A run as the watcher makes it: the files that triggered it stored with the run."""
    with world.db.write() as conn:
        return triggers.create_triggered_run(
            conn,
            automation_id,
            world.clock.now(),
            trigger="action",
            kind="files",
            payload={"files": [{"action": "create", "path": p} for p in paths]},
            messages=[],
        )


def action_automation(world: World, **values: object) -> int:
    with world.db.write() as conn:
        return automations.create_automation(
            conn,
            world.user_id,
            world.clock.now(),
            automation="copy_file",
            trigger="action",
            trigger_actions=("create",),
            **values,
        )


def test_trigger_tokens_name_the_file_that_started_the_run(world: World) -> None:
    world.write("drop/2024/report.final.csv", "r")
    world.write("drop/2024/.hidden", "h")
    automation = action_automation(
        world,
        path="drop",
        source="**",
        destinations=("done/%tb-%Y%m%d.%te", "by-folder/%td/", "names/%p1-%tf"),
    )
    run_id = file_event_run(world, automation, "drop/2024/report.final.csv", "drop/2024/.hidden")
    world.worker().drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS, view.log
    assert world.files("done") == {
        "done/report.final-20240216.csv": b"r",
        "done/.hidden-20240216.": b"h",
    }
    assert world.files("by-folder") == {
        "by-folder/drop/2024/2024/.hidden": b"h",
        "by-folder/drop/2024/2024/report.final.csv": b"r",
    }
    assert world.files("names") == {
        "names/2024-.hidden": b"h",
        "names/2024-report.final.csv": b"r",
    }


def test_source_path_tokens_beyond_the_depth_fail_that_operation(world: World) -> None:
    world.write("in/a.txt", "a")
    world.write("in/x/b.txt", "b")
    automation = world.automation(
        "copy_file", path="in", source="**/*.txt", destinations=["out/%p2/%p1/"]
    )
    run_id = world.run(automation)
    world.worker().drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert world.files("out") == {"out/in/x/x/b.txt": b"b"}
    assert any(
        "%p2 names folder 2 from the right of 'in/a.txt', which has only 1" in line
        for line in view.log
    )


def test_always_serialize_jobs_plans_a_run_only_after_the_earlier_one_finished(
    world: World,
) -> None:
    world.write("in/a.txt", "a")
    serial = world.automation(
        "copy_file", path="in", source="*.txt", destinations=["out/"], always_serialize_jobs=True
    )
    parallel = world.automation("copy_file", path="in", source="*.txt", destinations=["par/"])
    first, second = world.run(serial), world.run(serial)
    third, fourth = world.run(parallel), world.run(parallel)
    engine = world.engine()
    # The first serial run is planned; its successor must wait, the other automation's runs not.
    claims = [claim_next(engine, "w1") for _ in range(3)]
    assert [(c.run_id, c.stage) for c in claims if c is not None] == [
        (first, RunStage.PLANNING),
        (third, RunStage.PLANNING),
        (fourth, RunStage.PLANNING),
    ]
    assert claim_next(engine, "w1") is None  # `second` waits for `first`
    assert world.view(second).run.run_stage is RunStage.QUEUED_FOR_PLANNING
    world.clock.advance(3600)  # the leases run out; a worker finishes everything
    world.worker("w2").drain()
    for run_id in (first, second, third, fourth):
        assert world.view(run_id).run.status is RunStatus.SUCCESS
    first_done = world.view(first).run.completed_at
    second_view = world.view(second)
    assert first_done is not None and second_view.lease.planning_at is not None
    assert second_view.lease.planning_at >= first_done


def test_always_serialize_jobs_turned_on_queues_the_runs_already_waiting(world: World) -> None:
    world.write("in/a.txt", "a")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    first, second = world.run(automation), world.run(automation)
    engine = world.engine()
    claim = claim_next(engine, "w1")
    assert claim is not None and claim.run_id == first  # being planned
    with world.db.write() as conn:
        current = automations.get_automation(conn, automation)
        assert current is not None
        automations.update_automation(
            conn, current, {"always_serialize_jobs": True}, world.clock.now()
        )
        counts = dict(
            conn.execute(
                select(run_daily_counts.c.status, run_daily_counts.c.count).where(
                    run_daily_counts.c.automation_id == automation
                )
            ).all()
        )
    # The waiting run now says it waits; the one a worker holds goes on.
    assert world.view(first).run.status is RunStatus.RUNNING
    held = world.view(second)
    assert (held.run.status, held.run.run_stage) == (RunStatus.QUEUED, RunStage.QUEUED_FOR_PLANNING)
    assert held.log[-1].startswith("Queued: always_serialize_jobs was turned on")
    assert counts == {"running": 1, "queued": 1}  # the per-day counts moved with it
    assert world.view(world.run(automation)).run.status is RunStatus.QUEUED
    assert claim_next(engine, "w2") is None  # `second` waits for `first`
    world.clock.advance(3600)  # the lease runs out; a worker finishes everything in order
    world.worker("w3").drain()
    assert world.view(second).run.status is RunStatus.SUCCESS


def test_a_file_event_run_of_a_glob_path_acts_on_the_files_in_matching_folders(
    world: World,
) -> None:
    for name in ("drop/a/x.csv", "drop/a/sub/z.csv", "drop/b.csv", "other/y.csv"):
        world.write(name, name)
    automation = action_automation(world, path="drop/*", source="*.csv", destinations=("./done/",))
    run_id = file_event_run(
        world, automation, "drop/a/x.csv", "drop/a/sub/z.csv", "drop/b.csv", "other/y.csv"
    )
    world.worker().drain()
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS, view.log
    assert (view.run.successful_operations, view.run.failed_operations) == (1, 0)
    assert world.files("drop/a/done") == {"drop/a/done/x.csv": b"drop/a/x.csv"}
    assert path_root("drop/*") == "drop"  # what the watcher watches
    assert path_root("a/b/c*/d") == "a/b"
    assert path_root("") == ""


def test_an_action_automation_never_fires_on_what_its_relative_destination_made(
    backend: str,
) -> None:
    automation = Automation(
        id=1,
        user_id=1,
        automation=AutomationType.COPY_FILE,
        trigger=Trigger.ACTION,
        path="in/*",
        source="**",
        destinations=("./done/%Y/",),
        trigger_actions=("create",),
    )
    changes = [
        Change("create", "in/a/x.txt"),
        Change("create", "in/a/done/2024/x.txt"),  # its own output
        Change("create", "in/a/sub/done/2024/y.txt"),  # output for a file in a subfolder
        Change("create", "elsewhere/z.txt"),  # outside the path
    ]
    assert events_for(automation, changes) == [Change("create", "in/a/x.txt")]
