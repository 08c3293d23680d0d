"""Bulk cancel and rerun over HTTP on both databases: the dry run changes nothing,
a real request acts once per Idempotency-Key, bad input is refused by name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from conveyor.api import bulk
from conveyor.domain.runs import RunStatus
from conveyor.store import runs as runs_store
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, bulk_requests
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

BASE = "/api/conveyor/v1/automation_runs"


def post(
    server: ServerThread, key: str, action: str, params: dict[str, str], idem: str | None = None
) -> httpx.Response:
    headers = {"X-FilesAPI-Key": key}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return httpx.post(f"{server.url}{BASE}/{action}", params=params, headers=headers, timeout=30)


def rows(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(automation_runs).order_by(automation_runs.c.id)))


def test_bulk_cancel_dry_run_then_once_per_key(
    server: ServerThread, db: Database, seed: Seeder
) -> None:
    alice, bob = seed.account("alice"), seed.account("bob")
    mine, theirs = seed.automation(alice), seed.automation(bob)
    queued = [seed.run(mine) for _ in range(3)]
    finished = seed.run(mine, outcome=(1, 0))
    other = seed.run(theirs)
    before = rows(db)

    dry = post(server, alice.key, "bulk_cancel", {"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert dry.json() == {
        "action": "cancel",
        "dry_run": True,
        "count": 3,
        "run_ids": [r.id for r in reversed(queued)],
    }
    nothing = post(
        server, alice.key, "bulk_cancel", {"dry_run": "true", "filter[trigger]": "webhook"}
    )
    assert nothing.json()["count"] == 0 and nothing.json()["run_ids"] == []
    assert rows(db) == before  # a dry run changes nothing

    missing = post(server, alice.key, "bulk_cancel", {})
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["error"]
    assert rows(db) == before

    done = post(server, alice.key, "bulk_cancel", {}, idem="k-1")
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["dry_run"] is False and answer["count"] == 3
    assert sorted(answer["run_ids"]) == sorted(r.id for r in queued) and answer["skipped"] == []
    with db.read() as conn:
        for run in queued:
            found = runs_store.get_run(conn, run.id)
            assert found is not None and found.status is RunStatus.CANCELED
        untouched = runs_store.get_run(conn, other.id)
        assert untouched is not None and untouched.status is not RunStatus.CANCELED
        assert runs_store.get_run(conn, finished.id) == finished
    after = rows(db)

    again = post(server, alice.key, "bulk_cancel", {}, idem="k-1")
    assert again.status_code == 200 and again.json() == answer
    assert rows(db) == after  # nothing done twice
    reused = post(server, alice.key, "bulk_cancel", {"filter[status]": "running"}, idem="k-1")
    assert reused.status_code == 400 and "Idempotency-Key" in reused.json()["error"]
    assert rows(db) == after
    # The key is the user's: bob's same key is his own request, on his own runs.
    his = post(server, bob.key, "bulk_cancel", {}, idem="k-1")
    assert his.json()["run_ids"] == [other.id]
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(bulk_requests)).scalar_one() == 2


def test_bulk_rerun_makes_linked_runs_once(
    server: ServerThread, db: Database, seed: Seeder
) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    failed = [seed.run(automation, outcome=(1, 1)) for _ in range(2)]
    seed.run(automation, outcome=(1, 0))
    seed.run(automation)  # unfinished: not rerun
    params = {"filter[status]": "partial_failure", "failed_only": "true"}
    dry = post(server, alice.key, "bulk_rerun", {**params, "dry_run": "true"})
    assert dry.json()["count"] == 2
    done = post(server, alice.key, "bulk_rerun", params, idem="rerun-1").json()
    assert sorted(done["run_ids"]) == sorted(r.id for r in failed)
    assert len(done["rerun_ids"]) == 2
    with db.read() as conn:
        for original, new in zip(done["run_ids"], done["rerun_ids"], strict=True):
            row = runs_store.run_row(conn, new)
            assert row is not None and row.rerun_of_run_id == original
    count = len(rows(db))
    assert post(server, alice.key, "bulk_rerun", params, idem="rerun-1").json() == done
    assert len(rows(db)) == count
    # Without failed_only it is another request: the key is refused for it.
    other = post(
        server, alice.key, "bulk_rerun", {"filter[status]": "partial_failure"}, idem="rerun-1"
    )
    assert other.status_code == 400
    assert len(rows(db)) == count


def test_bulk_bad_input_is_refused(server: ServerThread, db: Database, seed: Seeder) -> None:
    alice = seed.account("alice")
    seed.run(seed.automation(alice))
    before = rows(db)
    for action, params, text in (
        ("bulk_cancel", {"dry_run": "maybe"}, "dry_run"),
        ("bulk_cancel", {"failed_only": "true", "dry_run": "true"}, "failed_only"),
        ("bulk_cancel", {"sort_by[created_at]": "asc", "dry_run": "true"}, "sort_by"),
        ("bulk_rerun", {"filter[status]": "nope", "dry_run": "true"}, "filter[status]"),
        ("bulk_rerun", {"per_page": "5", "dry_run": "true"}, "per_page"),
    ):
        reply = post(server, alice.key, action, params, idem="x")
        assert reply.status_code == 400, (params, reply.text)
        assert text in reply.json()["error"], reply.json()
    long_key = post(server, alice.key, "bulk_cancel", {}, idem="k" * 256)
    assert long_key.status_code == 400
    body = httpx.post(
        f"{server.url}{BASE}/bulk_cancel",
        content=b'{"filter": {}}',
        headers={"X-FilesAPI-Key": alice.key, "Idempotency-Key": "b"},
    )
    assert body.status_code == 400 and "query string" in body.json()["error"]
    assert httpx.post(f"{server.url}{BASE}/bulk_cancel").status_code == 401
    assert rows(db) == before


def test_bulk_over_the_limit_is_refused_not_cut(
    server: ServerThread, db: Database, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit is 1,000 (bulk.MAX_BULK); lowered here so a few runs exceed it.
    monkeypatch.setattr(bulk, "MAX_BULK", 2)
    alice = seed.account("alice")
    automation = seed.automation(alice)
    for _ in range(3):
        seed.run(automation)
    before = rows(db)
    dry = post(server, alice.key, "bulk_cancel", {"dry_run": "true"})
    assert dry.status_code == 200 and dry.json()["count"] == 3  # the full count
    refused = post(server, alice.key, "bulk_cancel", {}, idem="too-many")
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["type"] == "bad-request/request-params-invalid", error
    assert "3 runs match" in error["error"] and "at most 2" in error["error"], error
    assert rows(db) == before  # nothing acted on, not the first two
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(bulk_requests)).scalar_one() == 0
