"""Retention with an injected clock: expired finished runs go in bounded batches with their
messages and operations; unfinished runs and automations kept forever stay; log_expires_at."""

from __future__ import annotations

import dataclasses

import httpx
from ops_support import Serve
from sqlalchemy import func, select

from conveyor.clock import ManualClock, to_rfc3339
from conveyor.config import Settings
from conveyor.domain.retention import DAY_US
from conveyor.domain.runs import RunStage
from conveyor.engine.retention import Pruner
from conveyor.store import bulk, retention
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, bulk_requests, run_messages, run_operations
from conveyor.testing.seed import Seeder

NOW = 1_800_000_000_000_000
API = "/api/conveyor/v1"


def _count(db: Database, table, **where: int) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())


def _add_operation(db: Database, run_id: int) -> None:
    with db.write() as conn:
        conn.execute(
            run_operations.insert().values(run_id=run_id, seq=1, kind="copy", state="done")
        )


def test_prunes_in_batches_and_spares_unfinished_runs(
    db: Database, seed: Seeder, settings: Settings
) -> None:
    clock = ManualClock(NOW)
    alice = seed.account("alice")
    default, short, forever = (seed.automation(alice) for _ in range(3))
    with db.write() as conn:
        retention.set_override(conn, short, 1)
        retention.set_override(conn, forever, 0)
    old = NOW - 100 * DAY_US
    expired = [
        seed.run(default, created_at=old + i, outcome=(1, 1), messages=[f"run {i}"]).id
        for i in range(7)
    ]
    for run_id in expired[:2]:
        _add_operation(db, run_id)
    running = seed.run(default, created_at=old, stage=RunStage.EXECUTING, messages=["still"]).id
    queued = seed.run(default, created_at=old - DAY_US).id
    recent = seed.run(default, created_at=NOW - 10 * DAY_US, outcome=(1, 0)).id
    short_old = seed.run(short, created_at=NOW - 2 * DAY_US, outcome=(0, 1)).id
    short_new = seed.run(short, created_at=NOW - DAY_US // 2, outcome=(0, 1)).id
    kept_forever = seed.run(forever, created_at=old, outcome=(1, 0)).id
    config = dataclasses.replace(settings, retention_batch_size=3, retention_days=90)
    pruner = Pruner(db, clock, config, sleep=lambda _s: None)

    sizes = [pruner.prune_batch() for _ in range(4)]
    assert sizes == [3, 3, 2, 0]  # 7 of `default` and 1 of `short`, three at a time
    with db.read() as conn:
        left = set(conn.execute(select(automation_runs.c.id)).scalars())
    assert left == {running, queued, recent, short_new, kept_forever}
    for run_id in [*expired, short_old]:
        assert _count(db, run_messages, run_id=run_id) == 0
        assert _count(db, run_operations, run_id=run_id) == 0
    assert _count(db, run_messages, run_id=running) == 1
    # The running run stays however old it is, until it finishes and its time is up.
    clock.value = NOW + 200 * DAY_US
    assert pruner.prune() == 2  # recent and short_new; not the running or queued ones
    with db.read() as conn:
        left = set(conn.execute(select(automation_runs.c.id)).scalars())
    assert left == {running, queued, kept_forever}


def test_prune_stops_after_the_last_full_batch(
    db: Database, seed: Seeder, settings: Settings
) -> None:
    clock = ManualClock(NOW)
    automation = seed.automation(seed.account("alice"))
    for i in range(10):
        seed.run(automation, created_at=NOW - 91 * DAY_US + i, outcome=(1, 0))
    config = dataclasses.replace(settings, retention_batch_size=4)
    pauses: list[float] = []
    assert Pruner(db, clock, config, sleep=pauses.append).prune() == 10
    assert pauses == [config.retention_pause] * 2  # between 4, 4 and 2
    assert Pruner(db, clock, config).prune(max_batches=1) == 0


def test_log_expires_at_in_conveyors_own_api(serve: Serve, seed: Seeder) -> None:
    clock = ManualClock(NOW)
    server = serve(clock=clock, retention_days=30)
    alice, bob = seed.account("alice"), seed.account("bob")
    automation = seed.automation(alice)
    finished = seed.run(automation, created_at=NOW - 5_000_000, outcome=(1, 0))
    running = seed.run(automation, stage=RunStage.PLANNING)
    key = {"X-FilesAPI-Key": alice.key}

    def show(run_id: int) -> dict[str, object]:
        reply = httpx.get(f"{server.url}{API}/automation_runs/{run_id}", headers=key)
        assert reply.status_code == 200
        return dict(reply.json())

    body = show(finished.id)
    assert body["log_expires_at"] == to_rfc3339(NOW - 5_000_000 + 30 * DAY_US)
    assert body["retention_days"] == 30
    assert body["status"] == "success" and body["id"] == finished.id
    assert show(running.id)["log_expires_at"] is None
    # The Files.com-compatible body stays exactly the seed's fields.
    plain = httpx.get(f"{server.url}/api/rest/v1/automation_runs/{finished.id}", headers=key)
    assert "log_expires_at" not in plain.json()

    url = f"{server.url}{API}/automations/{automation}/retention"
    assert httpx.get(url, headers=key).json() == {
        "automation_id": automation,
        "retention_days": None,
        "effective_retention_days": 30,
    }
    assert (
        httpx.put(url, headers=key, json={"retention_days": 2}).json()["effective_retention_days"]
        == 2
    )
    assert show(finished.id)["log_expires_at"] == to_rfc3339(NOW - 5_000_000 + 2 * DAY_US)
    httpx.put(url, headers=key, json={"retention_days": 0})
    assert show(finished.id)["log_expires_at"] is None
    for bad in ({"retention_days": -1}, {"retention_days": "5"}, {"days": 3}, [1]):
        reply = httpx.put(url, headers=key, json=bad)
        assert reply.status_code == 400, bad
    assert httpx.put(url, headers=key, content=b"{").status_code == 400
    oversized = httpx.put(url, headers=key, content=b'{"retention_days": 1' + b" " * 10_000 + b"}")
    assert oversized.status_code == 400
    assert oversized.json()["error"] == "The request body exceeds 4096 bytes."
    assert show(finished.id)["log_expires_at"] is None  # the refused body changed nothing
    other = {"X-FilesAPI-Key": bob.key}
    assert httpx.get(url, headers=other).status_code == 404
    assert (
        httpx.get(f"{server.url}{API}/automation_runs/{finished.id}", headers=other).status_code
        == 404
    )
    assert httpx.get(f"{server.url}{API}/automation_runs/{finished.id}").status_code == 401


def test_log_expiry_for_the_web_ui(db: Database, seed: Seeder) -> None:
    automation = seed.automation(seed.account("alice"))
    finished = seed.run(automation, created_at=NOW, outcome=(0, 0))
    with db.read() as conn:
        assert retention.log_expiry(conn, finished.id, 90) == NOW + 90 * DAY_US
        assert retention.log_expiry(conn, 999_999, 90) is None


def test_bulk_idempotency_keys_are_forgotten_after_24_hours(
    db: Database, seed: Seeder, settings: Settings
) -> None:
    alice = seed.account("alice")
    ages = {"old-1": 25, "old-2": 24 * 3, "old-3": 48, "day": 24, "new": 1}
    with db.write() as conn:
        for key, hours in ages.items():
            bulk.remember(conn, alice.user.id, key, "hash", "{}", NOW - hours * 3600 * 1_000_000)
    config = dataclasses.replace(settings, retention_batch_size=2)
    clock = ManualClock(NOW)
    assert Pruner(db, clock, config, sleep=lambda _s: None).expire_bulk_keys() == 3  # 2, then 1
    with db.read() as conn:
        left = set(conn.execute(select(bulk_requests.c.idempotency_key)).scalars())
        assert left == {"day", "new"}  # exactly 24 hours old: still remembered
    clock.advance(3601)
    Pruner(db, clock, config).prune()  # the retention pass forgets them too
    with db.read() as conn:
        left = set(conn.execute(select(bulk_requests.c.idempotency_key)).scalars())
        assert left == {"new"}
        assert bulk.remembered(conn, alice.user.id, "new") is not None
