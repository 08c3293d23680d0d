"""The scheduler on both databases: slots become runs once, catch-up, disabling, editing.

Time is a ManualClock; every pass is the real `run_pass` on the real
database. The two-process test runs scheduler_process.py twice at once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from triggers_world import World

from conveyor.clock import ManualClock, from_datetime, to_rfc3339
from conveyor.domain.schedules import schedule_of, slots_between
from conveyor.engine.scheduler import run_pass
from conveyor.store import automations, runs
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs

HOUR = 3600.0
HERE = Path(__file__).parent


def utc(*parts: int) -> int:
    return from_datetime(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


def hourly(world: World, **extra: object) -> int:
    """Every day at every full hour, UTC."""
    times = [f"{h:02d}:00" for h in range(24)]
    return world.automation(
        trigger="custom_schedule",
        schedule_days_of_week=list(range(7)),
        schedule_times_of_day=times,
        **extra,
    )


def test_each_slot_becomes_one_run_with_the_slot_as_runtime(
    world: World, clock: ManualClock, db: Database
) -> None:
    daily = world.automation(
        trigger="daily",
        interval="day",
        schedule_times_of_day=["02:30"],
        schedule_time_zone="America/New_York",
    )
    manual = world.automation()
    created = []
    for _ in range(4 * 24 * 4):  # four days in 15-minute steps
        clock.advance(0.25 * HOUR)
        created += run_pass(db, clock).created
    found = world.runs(daily)
    assert [r.id for r in found] == created
    assert [to_rfc3339(r.runtime) for r in found] == [
        "2024-03-10T07:00:00Z",  # 02:30 does not exist that day: 03:00 EDT, the jump
        "2024-03-11T06:30:00Z",
        "2024-03-12T06:30:00Z",
        "2024-03-13T06:30:00Z",
    ]
    for run in found:
        assert run.schedule_slot == run.runtime
        assert run.trigger == "daily"
        assert run.run_stage == "queued_for_planning"
        # Created at the first pass at or after its slot (15-minute steps).
        assert 0 <= run.created_at - run.runtime < 15 * 60 * 1_000_000
        assert run.log[0].startswith("Started by its schedule (Every day at 02:30")
        assert to_rfc3339(run.runtime) in run.log[0]
    assert world.runs(manual) == []
    assert run_pass(db, clock).created == []


def test_after_downtime_only_the_most_recent_missed_slot_runs(
    world: World, clock: ManualClock, db: Database
) -> None:
    automation = hourly(world)
    run_pass(db, clock)  # 12:00, the moment it was created: that slot runs
    clock.advance(3 * 24 * HOUR + 0.5 * HOUR)  # down for three days: 72 slots passed
    created = run_pass(db, clock).created
    assert len(created) == 1
    first, latest = world.runs(automation)
    assert to_rfc3339(first.runtime) == "2024-03-09T12:00:00Z"
    assert "only the most recent" not in first.log[0]
    assert to_rfc3339(latest.runtime) == "2024-03-12T12:00:00Z"
    assert "only the most recent one runs" in latest.log[0]
    clock.advance(0.5 * HOUR)
    run_pass(db, clock)
    assert [to_rfc3339(r.runtime) for r in world.runs(automation)][1:] == [
        "2024-03-12T12:00:00Z",
        "2024-03-12T13:00:00Z",
    ]


def test_a_disabled_automation_never_runs_and_re_enabling_does_not_replay(
    world: World, clock: ManualClock, db: Database
) -> None:
    automation = hourly(world)
    clock.advance(1.5 * HOUR)
    run_pass(db, clock)
    assert len(world.runs(automation)) == 1  # 13:00
    world.update(automation, disabled=True)
    for _ in range(10):
        clock.advance(HOUR)
        assert run_pass(db, clock).created == []
    clock.advance(0.25 * HOUR)  # 23:45
    world.update(automation, disabled=False)
    assert run_pass(db, clock).created == []  # 14:00..23:00 passed while disabled
    clock.advance(0.5 * HOUR)
    run_pass(db, clock)
    assert [to_rfc3339(r.runtime) for r in world.runs(automation)] == [
        "2024-03-09T13:00:00Z",
        "2024-03-10T00:00:00Z",
    ]


def test_a_changed_schedule_starts_from_the_change(
    world: World, clock: ManualClock, db: Database
) -> None:
    automation = world.automation(trigger="daily", interval="day", schedule_times_of_day=["13:00"])
    clock.advance(0.5 * HOUR)
    run_pass(db, clock)
    # 12:30: move the time to 12:00, which already passed today; and edit
    # something unrelated, which must not disturb the schedule.
    world.update(automation, schedule_times_of_day=["12:00"])
    world.update(automation, destinations=["elsewhere"])
    clock.advance(HOUR)
    assert run_pass(db, clock).created == []
    clock.advance(24 * HOUR)
    run_pass(db, clock)
    assert [to_rfc3339(r.runtime) for r in world.runs(automation)] == ["2024-03-10T12:00:00Z"]


def test_deleted_and_unscheduled_automations_get_no_runs(
    world: World, clock: ManualClock, db: Database
) -> None:
    gone = hourly(world)
    world.delete(gone)
    switched = hourly(world)
    world.update(switched, trigger="manual")
    clock.advance(5 * HOUR)
    assert run_pass(db, clock).created == []
    assert world.runs() == []


def test_the_database_refuses_a_second_run_for_a_slot(world: World, db: Database) -> None:
    automation = hourly(world)
    slot = utc(2024, 3, 9, 13)
    with db.write() as conn:
        runs.create_run(conn, automation, slot, slot, schedule_slot=slot)
        runs.create_run(conn, automation, slot, slot)  # manual runs: no slot, no limit
        runs.create_run(conn, automation, slot, slot)
    with pytest.raises(IntegrityError), db.write() as conn:
        runs.create_run(conn, automation, slot, slot, schedule_slot=slot)


def test_two_scheduler_processes_create_each_slot_once(
    world: World, clock: ManualClock, db: Database, database_url: str, tmp_path: Path
) -> None:
    ids = []
    for n in range(12):
        times = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(n % 3, 60, 10)]
        ids.append(
            world.automation(
                trigger="custom_schedule",
                schedule_days_of_week=list(range(7)),
                schedule_times_of_day=times,
                schedule_time_zone="Europe/London",
            )
        )
    start = clock.now()
    end = start + int(4 * HOUR * 1_000_000)
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "scheduler_process.py"),
                database_url,
                str(start),
                str(end),
                "60",
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    outputs = [p.communicate(timeout=240) for p in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    created_by = [int(out.split()[0]) for out, _err in outputs]
    with db.read() as conn:
        automation = automations.get_automation(conn, ids[0])
        rows = list(
            conn.execute(select(automation_runs.c.automation_id, automation_runs.c.schedule_slot))
        )
        total = conn.execute(select(func.count()).select_from(automation_runs)).scalar_one()
    assert automation is not None
    expected = set()
    for automation_id in ids:
        with db.read() as conn:
            found = automations.get_automation(conn, automation_id)
        assert found is not None
        schedule = schedule_of(found)
        assert schedule is not None
        expected |= {(automation_id, s) for s in slots_between(schedule, start, end + 1)}
    # Every 10 minutes for four hours, both ends included for the four at :00.
    assert len(expected) == 4 * 25 + 8 * 24
    assert total == len(rows) == len(set(rows))
    assert set(rows) == expected
    # What each process reports creating adds up to the slots: none created twice.
    # (How the slots split between them depends on scheduling; on a loaded
    # machine one process can win every race, so no share is asserted.)
    assert sum(created_by) == len(expected)
