"""run_daily_counts, kept by the run lifecycle and retention in their own transactions,
always equals a GROUP BY recount of automation_runs; migration 0006 backfills it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from conveyor.clock import ManualClock
from conveyor.domain.runs import RunStage
from conveyor.store import migrate, retention, triggers
from conveyor.store import runs as runs_store
from conveyor.store.database import Database
from conveyor.store.triggers import SlotRun
from conveyor.testing.postgres import PostgresServer
from conveyor.testing.seed import Seeder, make_run

DAY = 86_400_000_000
NOW = 20_000 * DAY + 13 * 3_600_000_000  # 13:00 UTC on day 20,000
_names = itertools.count()

Counts = set[tuple[int, int, str, int]]


def recount(db: Database) -> Counts:
    """What the table should hold: the runs grouped by automation, created day and status."""
    with db.read() as conn:
        rows = conn.execute(
            text(
                f"SELECT automation_id, created_at / {DAY}, status, COUNT(*) FROM automation_runs"
                f" GROUP BY automation_id, created_at / {DAY}, status"
            )
        )
        return {(int(a), int(d), str(s), int(n)) for a, d, s, n in rows}


def kept(db: Database) -> Counts:
    """The table's non-zero counts (a count that went back to 0 may stay as a row)."""
    with db.read() as conn:
        rows = conn.execute(text("SELECT automation_id, day, status, count FROM run_daily_counts"))
        found = {(int(a), int(d), str(s), int(n)) for a, d, s, n in rows}
    assert all(n >= 0 for *_, n in found)
    return {row for row in found if row[3] != 0}


def test_create_counts_a_running_run_on_its_utc_day(db: Database, seed: Seeder) -> None:
    automation = seed.automation(seed.account("alice"))
    midnight = (NOW // DAY) * DAY
    seed.run(automation, created_at=midnight)  # first instant of the day
    seed.run(automation, created_at=midnight - 1)  # last instant of the day before
    seed.run(automation, created_at=midnight + 5, stage=RunStage.EXECUTING)
    day = NOW // DAY
    assert kept(db) == {(automation, day - 1, "running", 1), (automation, day, "running", 2)}
    assert kept(db) == recount(db)


def test_scheduled_runs_are_counted_like_every_other_run(db: Database, seed: Seeder) -> None:
    """The scheduler inserts many runs at once; they reach the chart like one made by hand,
    and a slot that already has its run (ON CONFLICT DO NOTHING) is not counted twice."""
    alice = seed.account("alice")
    automation, other = seed.automation(alice), seed.automation(alice)
    wanted = [
        SlotRun(automation, NOW - 3_600_000_000, "daily", "Scheduled."),
        SlotRun(automation, NOW, "daily", "Scheduled."),
        SlotRun(other, NOW, "custom_schedule", "Scheduled."),
    ]
    with db.write() as conn:
        assert len(triggers.create_slot_runs(conn, NOW, wanted)) == 3
    with db.write() as conn:
        assert triggers.create_slot_runs(conn, NOW + 1, wanted) == []
    day = NOW // DAY
    assert kept(db) == {(automation, day, "running", 2), (other, day, "running", 1)}
    assert kept(db) == recount(db)


def test_finishing_moves_the_run_from_running_to_each_final_status(
    db: Database, seed: Seeder
) -> None:
    alice = seed.account("alice")
    automation, other = seed.automation(alice), seed.automation(alice)
    day = NOW // DAY
    seed.run(automation, created_at=NOW, outcome=(2, 0))  # success
    seed.run(automation, created_at=NOW, outcome=(1, 1))  # partial_failure
    seed.run(automation, created_at=NOW, outcome=(0, 1))  # failure
    seed.run(automation, created_at=NOW - DAY, outcome=(0, 1))
    seed.run(other, created_at=NOW, outcome=(1, 0))
    planning = seed.run(automation, created_at=NOW - 2 * DAY, stage=RunStage.PLANNING)
    with db.write() as conn:
        # Finished a day later than created: counted on its created day.
        runs_store.finish_run(conn, planning.id, NOW, planning_failed=True)
    still = seed.run(automation, created_at=NOW, stage=RunStage.EXECUTING)
    assert kept(db) == {
        (automation, day, "success", 1),
        (automation, day, "partial_failure", 1),
        (automation, day, "failure", 1),
        (automation, day, "running", 1),
        (automation, day - 1, "failure", 1),
        (automation, day - 2, "failure", 1),
        (other, day, "success", 1),
    }
    assert kept(db) == recount(db)
    with db.write() as conn:
        runs_store.record_operation(conn, still.id, True, NOW)
        runs_store.finish_run(conn, still.id, NOW)
    assert (automation, day, "running", 1) not in kept(db)
    assert (automation, day, "success", 2) in kept(db)
    assert kept(db) == recount(db)


def test_a_rolled_back_run_change_leaves_the_counts_alone(db: Database, seed: Seeder) -> None:
    automation = seed.automation(seed.account("alice"))
    run = seed.run(automation, created_at=NOW, stage=RunStage.EXECUTING)
    with pytest.raises(RuntimeError), db.write() as conn:
        make_run(conn, automation, NOW, outcome=(1, 0))
        runs_store.finish_run(conn, run.id, NOW)
        raise RuntimeError("abort")
    assert kept(db) == {(automation, NOW // DAY, "running", 1)} == recount(db)


def test_pruning_takes_the_deleted_runs_off_their_days(db: Database, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation, other = seed.automation(alice), seed.automation(alice)
    old = NOW - 100 * DAY
    for i in range(5):
        seed.run(automation, created_at=old + i * 3_600_000_000, outcome=(1, i % 2))
    seed.run(automation, created_at=old - DAY, outcome=(0, 1))
    seed.run(automation, created_at=old, stage=RunStage.EXECUTING)  # unfinished: stays
    seed.run(automation, created_at=NOW - DAY, outcome=(1, 0))  # not expired
    seed.run(other, created_at=old, outcome=(1, 0))
    before = kept(db)
    assert before == recount(db)
    with db.write() as conn:
        assert retention.prune_batch(conn, NOW, 90, 4) == 4  # a batch ends inside a day
    assert kept(db) == recount(db) != before
    with db.write() as conn:
        assert retention.prune_batch(conn, NOW, 90, 100) == 3
    assert (
        kept(db)
        == recount(db)
        == {
            (automation, old // DAY, "running", 1),
            (automation, (NOW - DAY) // DAY, "success", 1),
        }
    )


# ------------------------------------------------------------------ migration 0006


@pytest.fixture
def empty_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with nothing in it, not even the migrations' version table."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = f"daily_{os.getpid()}_{next(_names)}"
        url = server.create_database(name)
        request.addfinalizer(lambda: server.drop_database(name))
    database = Database(url)
    yield database
    database.dispose()


def test_migration_0006_backfills_the_counts_from_the_runs(empty_db: Database) -> None:
    migrate.upgrade(empty_db, "0005")
    seed = Seeder(empty_db, ManualClock(NOW))
    alice = seed.account("alice", root=None)  # no permissions table before 0009
    automation, other = seed.automation(alice), seed.automation(alice)
    # Runs written before 0006 exist: the lifecycle cannot keep counts yet, so
    # they are inserted as they stood (the table does not exist at 0005).
    rows = [
        (automation, NOW - 3 * DAY, "success", "finished"),
        (automation, NOW - 3 * DAY + 1, "success", "finished"),
        (automation, NOW - 3 * DAY, "failure", "finished"),
        (automation, NOW, "running", "executing"),
        (other, NOW - 1, "partial_failure", "finished"),
    ]
    with empty_db.write() as conn:
        for automation_id, created, status, stage in rows:
            conn.execute(
                text(
                    "INSERT INTO automation_runs (automation_id, created_at, runtime, status,"
                    " run_stage, successful_operations, failed_operations)"
                    " VALUES (:a, :c, :c, :s, :g, 0, 0)"
                ),
                {"a": automation_id, "c": created, "s": status, "g": stage},
            )
    migrate.upgrade(empty_db)
    day = NOW // DAY
    assert (
        kept(empty_db)
        == recount(empty_db)
        == {
            (automation, day - 3, "success", 2),
            (automation, day - 3, "failure", 1),
            (automation, day, "running", 1),
            (other, (NOW - 1) // DAY, "partial_failure", 1),
        }
    )
