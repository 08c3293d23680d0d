"""/healthz and /readyz over real HTTP: no API key, the reason for every 503, nothing sensitive."""

from __future__ import annotations

import httpx
from ops_support import Serve

from conveyor.clock import ManualClock
from conveyor.store import heartbeats, migrate
from conveyor.store.database import Database


def test_healthz_answers_without_a_key(serve: Serve) -> None:
    reply = httpx.get(f"{serve().url}/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_ready_only_while_a_worker_beats(serve: Serve, db: Database) -> None:
    clock = ManualClock()
    url = serve(clock=clock, heartbeat_timeout=60.0).url
    waiting = httpx.get(f"{url}/readyz")
    assert waiting.status_code == 503
    assert waiting.json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "migrations": "ok",
            "workers": "no engine worker has sent a heartbeat in the last 60 s",
        },
    }
    with db.write() as conn:
        heartbeats.beat(conn, "host-1-a", "worker", "host", 1, clock.now())
        heartbeats.beat(conn, "host-2-b", "worker", "host", 2, clock.now() - 30_000_000)
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "workers": "ok (2 alive)"},
    }
    clock.advance(45)  # the second worker's last beat is now 75 s old
    assert httpx.get(f"{url}/readyz").json()["checks"]["workers"] == "ok (1 alive)"
    clock.advance(30)
    assert httpx.get(f"{url}/readyz").status_code == 503


def test_a_killed_worker_stops_counting_after_the_default_timeout(
    serve: Serve, db: Database
) -> None:
    """A killed engine process leaves its row behind: it counts only while its last beat is
    younger than CONVEYOR_HEARTBEAT_TIMEOUT, 10 s by default (a live one beats every 2.5 s)."""
    clock = ManualClock()
    url = serve(clock=clock).url
    with db.write() as conn:
        heartbeats.beat(conn, "host-1-killed", "worker", "host", 1, clock.now())
    assert httpx.get(f"{url}/readyz").json()["checks"]["workers"] == "ok (1 alive)"
    clock.advance(10)
    assert httpx.get(f"{url}/readyz").status_code == 200
    clock.advance(0.001)
    stale = httpx.get(f"{url}/readyz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["workers"] == (
        "no engine worker has sent a heartbeat in the last 10 s"
    )


def test_api_only_processes_can_skip_the_worker_check(serve: Serve) -> None:
    reply = httpx.get(f"{serve(ready_requires_workers=False).url}/readyz")
    assert reply.status_code == 200
    assert reply.json()["checks"] == {"database": "ok", "migrations": "ok"}


def test_not_ready_on_an_old_schema(serve: Serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(old, "0003")
    reply = httpx.get(f"{serve(database=old).url}/readyz")
    assert reply.status_code == 503
    assert reply.json()["checks"] == {
        "database": "ok",
        "migrations": "the schema is not at this version's newest migration; "
        "run `conveyor db upgrade`",
    }
    old.dispose()


def test_not_ready_without_a_database(serve: Serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    gone = Database(f"sqlite:///{doomed / 'conveyor.db'}")
    migrate.upgrade(gone)
    server = serve(database=gone, secret_key="fixed-secret-for-the-test")
    gone.dispose()
    (doomed / "conveyor.db").unlink()
    doomed.rmdir()
    reply = httpx.get(f"{server.url}/readyz")
    assert reply.status_code == 503
    assert reply.json() == {
        "status": "unavailable",
        "checks": {"database": "the database file cannot be opened"},
    }
    assert httpx.get(f"{server.url}/healthz").status_code == 200
