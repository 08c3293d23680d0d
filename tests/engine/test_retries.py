"""Automatic retries (Files.com's retry_on_failure_*) on both databases: the real worker
fails real copies, the real scheduler pass makes the retries at the injected clock's time,
and on PostgreSQL two schedulers race for every due retry.

A copy fails here because its destination folder is a regular file; removing the
file lets the next retry succeed.
"""

from __future__ import annotations

import threading

import pytest
from engine_world import World
from sqlalchemy import select

from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine.leases import claim_next
from conveyor.engine.scheduler import run_pass
from conveyor.store import retries
from conveyor.store import runs as run_store
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import run_inputs

MINUTE = 60.0
MINUTE_US = 60_000_000


def failing_copy(world: World, attempts: int | None = 3, interval: int | None = 10) -> int:
    world.write("in/a.txt", "a")
    world.write("out", "not a folder")  # the copy into out/ fails
    return world.automation(
        "copy_file",
        path="in",
        source="*.txt",
        destinations=["out/"],
        retry_on_failure_number_of_attempts=attempts,
        retry_on_failure_interval_in_minutes=interval,
    )


def chain(db: Database, automation_id: int) -> list[dict[str, object]]:
    t = runs_t.c
    with db.read() as conn:
        rows = conn.execute(
            select(
                t.id,
                t.status,
                t.runtime,
                t.created_at,
                t.completed_at,
                t.trigger,
                t.retry_at,
                t.retried_at,
                t.retried_in_run_id,
                t.retry_of_run_id,
                t.retry_attempt,
            )
            .where(t.automation_id == automation_id)
            .order_by(t.id)
        )
        return [dict(row._mapping) for row in rows]


def test_three_attempts_make_three_linked_retries_at_their_times(
    world: World, db: Database
) -> None:
    automation = failing_copy(world)
    original = world.run(automation)
    worker = world.worker()
    worker.drain()
    for attempt in range(1, 4):
        runs = chain(db, automation)
        failed = runs[-1]
        assert failed["status"] == "failure"
        assert failed["retry_at"] == failed["completed_at"] + 10 * MINUTE_US  # type: ignore[operator]
        # A pass one second early makes nothing; the pass at retry_at makes the retry.
        world.clock.value = failed["retry_at"] - 1_000_000  # type: ignore[operator]
        assert run_pass(db, world.clock).created == []
        world.clock.advance(1)
        made = run_pass(db, world.clock).created
        assert len(made) == 1
        assert run_pass(db, world.clock).created == []  # made once
        runs = chain(db, automation)
        retry = runs[-1]
        assert retry["id"] == made[0]
        assert retry["retry_of_run_id"] == failed["id"]
        assert retry["retry_attempt"] == attempt
        assert retry["runtime"] == runs[0]["runtime"]  # the original's runtime
        assert retry["trigger"] == "manual"  # the original's trigger
        assert retry["created_at"] == world.clock.now()
        assert runs[-2]["retried_in_run_id"] == retry["id"]
        assert runs[-2]["retried_at"] == world.clock.now()
        log = world.view(made[0]).log
        assert log[0].startswith(f"Retry {attempt} of 3 of automation run {failed['id']}")
        worker.drain()
    runs = chain(db, automation)
    assert runs[0]["id"] == original
    assert len(runs) == 4  # the original and exactly three retries
    assert [r["status"] for r in runs] == ["failure"] * 4
    last = runs[-1]
    assert last["retry_at"] is None and last["retried_in_run_id"] is None
    world.clock.advance(24 * 3600)
    assert run_pass(db, world.clock).created == []
    assert len(chain(db, automation)) == 4


def test_a_retry_that_succeeds_ends_the_chain(world: World, db: Database) -> None:
    automation = failing_copy(world, attempts=5, interval=5)
    world.run(automation)
    worker = world.worker()
    worker.drain()
    (world.root / "out").unlink()  # the cause goes away
    world.clock.advance(5 * MINUTE)
    assert len(run_pass(db, world.clock).created) == 1
    worker.drain()
    runs = chain(db, automation)
    assert [r["status"] for r in runs] == ["failure", "success"]
    assert runs[1]["retry_at"] is None
    assert world.files("out") == {"out/a.txt": b"a"}
    world.clock.advance(3600)
    assert run_pass(db, world.clock).created == []


def test_no_retry_without_settings_nor_for_a_disabled_automation(
    world: World, db: Database
) -> None:
    without = failing_copy(world, attempts=None, interval=None)
    world.run(without)
    disabled_later = world.automation(
        "copy_file",
        path="in",
        source="*.txt",
        destinations=["out/"],
        retry_on_failure_number_of_attempts=2,
        retry_on_failure_interval_in_minutes=5,
    )
    world.run(disabled_later)
    world.worker().drain()
    assert chain(db, without)[0]["retry_at"] is None
    pending = chain(db, disabled_later)[0]
    assert pending["retry_at"] is not None
    from conveyor.store import automations

    with db.write() as conn:
        current = automations.get_automation(conn, disabled_later)
        assert current is not None
        automations.update_automation(conn, current, {"disabled": True}, world.clock.now())
    world.clock.advance(3600)
    assert run_pass(db, world.clock).created == []
    abandoned = chain(db, disabled_later)
    assert len(abandoned) == 1
    assert abandoned[0]["retry_at"] is None  # will not be retried, and says so


def test_a_retry_keeps_the_trigger_inputs(world: World, db: Database) -> None:
    automation = failing_copy(world, attempts=1, interval=5)
    with db.write() as conn:
        from conveyor.store import triggers

        original = triggers.create_triggered_run(
            conn,
            automation,
            world.clock.now(),
            trigger="action",
            kind="files",
            payload={"files": [{"action": "create", "path": "in/a.txt"}]},
            messages=[],
        )
    world.worker().drain()
    world.clock.advance(5 * MINUTE)
    (retry,) = run_pass(db, world.clock).created
    with db.read() as conn:
        inputs = dict(
            conn.execute(select(run_inputs.c.run_id, run_inputs.c.payload)).all()  # type: ignore[arg-type]
        )
    assert inputs[retry] == inputs[original]
    assert chain(db, automation)[1]["trigger"] == "action"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_schedulers_make_each_retry_exactly_once(
    world: World, db: Database, database_url: str
) -> None:
    automations = [failing_copy(world, attempts=3, interval=5) for _ in range(6)]
    for automation in automations:
        for _ in range(2):
            world.run(automation)
    worker = world.worker()
    worker.drain()
    schedulers = [Database(database_url), Database(database_url)]
    try:
        for _round in range(3):
            world.clock.advance(5 * MINUTE)
            made: list[list[int]] = [[], []]
            barrier = threading.Barrier(2)
            threads = [
                threading.Thread(target=race, args=(barrier, schedulers[i], world, made[i]))
                for i in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert len(made[0]) + len(made[1]) == 12  # one per failed run, none twice
            assert not set(made[0]) & set(made[1])
            worker.drain()
    finally:
        for scheduler in schedulers:
            scheduler.dispose()
    for automation in automations:
        runs = chain(db, automation)
        assert len(runs) == 2 * 4
        by_id = {r["id"]: r for r in runs}
        originals = [r for r in runs if r["retry_of_run_id"] is None]
        assert len(originals) == 2
        for original in originals:
            walk = [original]
            while walk[-1]["retried_in_run_id"] is not None:
                following = by_id[walk[-1]["retried_in_run_id"]]
                assert following["retry_of_run_id"] == walk[-1]["id"]
                walk.append(following)
            assert [r["retry_attempt"] for r in walk] == [0, 1, 2, 3]


def test_a_second_link_of_a_retried_run_is_refused_and_rolls_back(
    world: World, db: Database
) -> None:
    """The guard that makes a retry exactly once: linking a run already linked raises,
    and the transaction, with the retry run it would have made, rolls back."""
    automation = failing_copy(world, attempts=2, interval=5)
    failed = world.run(automation)
    world.worker().drain()
    world.clock.advance(5 * MINUTE)
    (retry,) = run_pass(db, world.clock).created
    with pytest.raises(retries.RetryRaced), db.write() as conn:
        extra = run_store.create_run(conn, automation, world.clock.now(), retry_of_run_id=failed)
        retries.link_retry(conn, failed, extra.id, world.clock.now())
    runs_now = chain(db, automation)
    assert [r["id"] for r in runs_now] == [failed, retry]
    assert runs_now[0]["retried_in_run_id"] == retry


def race(barrier: threading.Barrier, db: Database, world: World, made: list[int]) -> None:
    """A scheduler: three passes at the clock's time, started with the other's."""
    barrier.wait()
    for _ in range(3):
        made += run_pass(db, world.clock).created


def test_always_serialize_jobs_shows_the_waiting_run_as_queued(world: World) -> None:
    world.write("in/a.txt", "a")
    serial = world.automation(
        "copy_file", path="in", source="*.txt", destinations=["o/"], always_serialize_jobs=True
    )
    first, second = world.run(serial), world.run(serial)
    engine = world.engine()
    claim = claim_next(engine, "w1")
    assert claim is not None and claim.run_id == first
    assert world.view(first).run.status is RunStatus.RUNNING
    assert claim_next(engine, "w1") is None
    waiting = world.view(second).run
    assert (waiting.status, waiting.run_stage) == (RunStatus.QUEUED, RunStage.QUEUED_FOR_PLANNING)
    world.clock.advance(3600)
    world.worker("w2").drain()
    assert world.view(first).run.status is RunStatus.SUCCESS
    assert world.view(second).run.status is RunStatus.SUCCESS
