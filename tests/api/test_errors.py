"""Every row of SPEC 2.3 over real HTTP: status, exact Files.com error body, nothing changed.

The 429 row belongs to rate limiting and is tested with it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from api_http import API, Reply, assert_error, fetch, snapshot
from api_world import World

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.store import automations as automations_store
from conveyor.store.database import Database, driver_conninfo
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread
from suite_support import suite_settings

UNKNOWN_KEY = "0" * 64
MISSING_ID = 9_000_000


def runs_url(query: str) -> str:
    return f"{API}/automation_runs?{query}"


def cursor_of(world: World, query: str) -> str:
    """The next-page cursor of a first page (a read, like every request here)."""
    reply = fetch(world.url, runs_url(query), world.alice.key)
    assert reply.status == 200 and reply.next_cursor, reply.body
    return reply.next_cursor


def tamper_payload(cursor: str) -> str:
    """The same signature over a payload whose anchor id was changed."""
    body, signature = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[-1] += 1
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


def flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


AUTH_REQUIRED = "not-authenticated/authentication-required"
INVALID_CREDENTIALS = "not-authenticated/invalid-credentials"
NOT_FOUND = "not-found"
PARAMS_INVALID = "bad-request/request-params-invalid"
INVALID_CURSOR = "bad-request/invalid-cursor"
LIST_A = "/automation_runs?automation_id={a}"
FIND_A = "/automation_runs/{run_a}"

# (status, type, target under /api/rest/v1 with the world's ids filled in, who asks)
ROWS: dict[str, tuple[int, str, str, str | None]] = {
    # no API key; an unknown or revoked one
    "list-no-key": (401, AUTH_REQUIRED, LIST_A, None),
    "find-no-key": (401, AUTH_REQUIRED, FIND_A, None),
    "list-empty-key": (401, AUTH_REQUIRED, LIST_A, ""),
    "list-unknown-key": (401, INVALID_CREDENTIALS, LIST_A, "unknown"),
    "find-unknown-key": (401, INVALID_CREDENTIALS, FIND_A, "unknown"),
    "list-revoked-key": (401, INVALID_CREDENTIALS, LIST_A, "revoked"),
    "find-revoked-key": (401, INVALID_CREDENTIALS, FIND_A, "revoked"),
    # caller may not see that automation/run; unknown run id or automation id
    "list-other-users-automation": (404, NOT_FOUND, "/automation_runs?automation_id={b}", "alice"),
    # b has successful runs: the visibility holds under a status filter too
    "list-other-users-automation-by-status": (
        404,
        NOT_FOUND,
        "/automation_runs?automation_id={b}&filter[status]=success",
        "alice",
    ),
    "find-other-users-run": (404, NOT_FOUND, "/automation_runs/{run_b}", "alice"),
    "list-unknown-automation": (
        404,
        NOT_FOUND,
        "/automation_runs?automation_id={missing}",
        "admin",
    ),
    "find-unknown-run": (404, NOT_FOUND, "/automation_runs/{missing}", "admin"),
    # required parameter missing
    "automation-id-missing": (
        400,
        "bad-request/request-params-required",
        "/automation_runs?per_page=1",
        "alice",
    ),
    "automation-id-blank": (
        400,
        "bad-request/request-params-required",
        "/automation_runs?automation_id=",
        "alice",
    ),
    # wrong type or out of range
    "per-page-0": (400, PARAMS_INVALID, LIST_A + "&per_page=0", "alice"),
    "per-page-10001": (400, PARAMS_INVALID, LIST_A + "&per_page=10001", "alice"),
    "per-page-abc": (400, PARAMS_INVALID, LIST_A + "&per_page=abc", "alice"),
    "automation-id-abc": (400, PARAMS_INVALID, "/automation_runs?automation_id=abc", "alice"),
    "automation-id-minus-1": (400, PARAMS_INVALID, "/automation_runs?automation_id=-1", "alice"),
    "find-id-abc": (400, PARAMS_INVALID, "/automation_runs/abc", "alice"),
    # sort and filter
    "sort-unknown-field": (
        400,
        "bad-request/invalid-sort-field",
        LIST_A + "&sort_by[id]=asc",
        "alice",
    ),
    "sort-unknown-direction": (
        400,
        "bad-request/invalid-sort-field",
        LIST_A + "&sort_by[created_at]=up",
        "alice",
    ),
    "sort-two-fields": (
        400,
        "bad-request/multiple-sort-params-not-allowed",
        LIST_A + "&sort_by[created_at]=asc&sort_by[status]=desc",
        "alice",
    ),
    "filter-unknown-field": (
        400,
        "bad-request/invalid-filter-field",
        LIST_A + "&filter[run_stage]=finished",
        "alice",
    ),
    "filter-status-nope": (
        400,
        "bad-request/invalid-filter-param-value",
        LIST_A + "&filter[status]=nope",
        "alice",
    ),
    "filter-automation-id-differs": (
        400,
        "bad-request/invalid-filter-param-value",
        LIST_A + "&filter[automation_id]={a2}",
        "alice",
    ),
    "cursor-malformed": (400, INVALID_CURSOR, LIST_A + "&cursor=not-a-cursor", "alice"),
}

# (type, query the cursor is used with, query it came from, what is done to it)
CURSOR_ROWS: dict[str, tuple[str, str, str, Callable[[str], str]]] = {
    "cursor-payload-tampered": (
        INVALID_CURSOR,
        "automation_id={a}&per_page=2",
        "automation_id={a}&per_page=2",
        tamper_payload,
    ),
    "cursor-signature-tampered": (
        INVALID_CURSOR,
        "automation_id={a}&per_page=2",
        "automation_id={a}&per_page=2",
        flip_last,
    ),
    "cursor-of-another-automation": (
        INVALID_CURSOR,
        "automation_id={a}&per_page=1",
        "automation_id={a2}&per_page=1",
        str,
    ),
    "cursor-of-a-status-filter-used-without": (
        INVALID_CURSOR,
        "automation_id={a}&per_page=1",
        "automation_id={a}&per_page=1&filter[status]=success",
        str,
    ),
    "cursor-of-another-status-filter": (
        INVALID_CURSOR,
        "automation_id={a}&per_page=1&filter[status]=failure",
        "automation_id={a}&per_page=1&filter[status]=success",
        str,
    ),
    "cursor-of-default-sort-used-ascending": (
        "bad-request/invalid-cursor-type-for-sort",
        "automation_id={a}&per_page=2&sort_by[created_at]=asc",
        "automation_id={a}&per_page=2",
        str,
    ),
    "cursor-of-status-asc-used-desc": (
        "bad-request/invalid-cursor-type-for-sort",
        "automation_id={a}&per_page=2&sort_by[status]=desc",
        "automation_id={a}&per_page=2&sort_by[status]=asc",
        str,
    ),
}


def fill(world: World, template: str) -> str:
    return template.format(
        a=world.a,
        a2=world.a2,
        b=world.b,
        run_a=world.runs[world.a][0].id,
        run_b=world.runs[world.b][0].id,
        missing=MISSING_ID,
    )


def key_of(world: World, who: str | None) -> str | None:
    keys = {
        "alice": world.alice.key,
        "admin": world.admin.key,
        "revoked": world.revoked_key,
        "unknown": UNKNOWN_KEY,
    }
    return keys.get(who, who) if who else who


def assert_refused_unchanged(
    world: World, target: str, key: str | None, status: int, kind: str
) -> Reply:
    before = snapshot(world.db)
    reply = fetch(world.url, target, key)
    assert_error(reply, status, kind)
    assert snapshot(world.db) == before
    return reply


@pytest.mark.parametrize("row", list(ROWS))
def test_spec_error_row(world: World, row: str) -> None:
    status, kind, target, who = ROWS[row]
    assert_refused_unchanged(world, API + fill(world, target), key_of(world, who), status, kind)


@pytest.mark.parametrize("row", list(CURSOR_ROWS))
def test_spec_cursor_row(world: World, row: str) -> None:
    kind, used_with, made_by, change = CURSOR_ROWS[row]
    cursor = change(cursor_of(world, fill(world, made_by)))
    target = runs_url(f"{fill(world, used_with)}&cursor={cursor}")
    assert_refused_unchanged(world, target, world.alice.key, 400, kind)


def test_what_is_hidden_from_others_is_visible_to_owner_and_admin(world: World) -> None:
    """The control for the 404 rows: the same requests succeed for those allowed."""
    run = world.runs[world.b][0]
    for key in (world.bob.key, world.admin.key):
        listed = fetch(world.url, runs_url(f"automation_id={world.b}"), key)
        assert listed.status == 200
        assert [r["id"] for r in listed.json()] == [r.id for r in reversed(world.runs[world.b])]
        found = fetch(world.url, f"{API}/automation_runs/{run.id}", key)
        assert found.status == 200 and found.json()["id"] == run.id


def test_a_deleted_automations_runs_are_found_by_id_but_not_listed(world: World) -> None:
    """Deleting an automation hides it, as the Automations API does: listing its runs is a
    404 for everyone; each run stays readable by id (run history outlives the automation)."""
    run = world.runs[world.b][0]
    with world.db.write() as conn:
        automations_store.delete_automation(conn, world.b, world.clock.now())
    for key in (world.bob.key, world.admin.key):
        listed = fetch(world.url, runs_url(f"automation_id={world.b}"), key)
        assert_error(listed, 404, "not-found")
        assert listed.json()["error"] == f"Automation {world.b} not found."
        found = fetch(world.url, f"{API}/automation_runs/{run.id}", key)
        assert found.status == 200 and found.json()["id"] == run.id


def test_cursor_signed_under_another_secret_is_invalid(world: World, tmp_path: Path) -> None:
    """A second server on the same database, with its own CONVEYOR_SECRET_KEY."""
    other = suite_settings(tmp_path, world.settings.database_url, CONVEYOR_SECRET_KEY="another")
    query = f"automation_id={world.a}&per_page=2"
    with ServerThread(create_app(other, world.db, clock=world.clock)) as second:
        reply = fetch(second.url, runs_url(query), world.alice.key)
        assert reply.status == 200 and reply.next_cursor
        foreign = reply.next_cursor
        # On its own server the cursor works: it is a real cursor, only foreign to the first.
        assert (
            fetch(second.url, runs_url(f"{query}&cursor={foreign}"), world.alice.key).status == 200
        )
    assert_refused_unchanged(
        world,
        runs_url(f"{query}&cursor={foreign}"),
        world.alice.key,
        400,
        "bad-request/invalid-cursor",
    )


def test_unexpected_failure_is_a_generic_500(
    backend: str, settings: Settings, db: Database
) -> None:
    """The database vanishes under a running server: a real failure, not a patched handler."""
    seed = Seeder(db)
    alice = seed.account("alice")
    automation = seed.automation(alice)
    with ServerThread(create_app(settings, db)) as server:
        assert fetch(server.url, runs_url(f"automation_id={automation}"), alice.key).status == 200
        db.dispose()
        if backend == "sqlite":
            path = Path(db.url.removeprefix("sqlite:///"))
            for leftover in path.parent.glob(path.name + "*"):
                os.remove(leftover)
        else:  # its tables vanish (an unreachable database is an outage: a 503, test_outage)
            with psycopg.connect(driver_conninfo(db.url), autocommit=True) as conn:
                conn.execute("DROP SCHEMA public CASCADE")
        for target in (runs_url(f"automation_id={automation}"), f"{API}/automation_runs/1"):
            reply = fetch(server.url, target, alice.key)
            body = assert_error(reply, 500, "processing-failure", "Internal Server Error")
            assert body["error"] == "An unexpected error occurred; it has been logged."
            assert b"sqlite" not in reply.body.lower() and b"psycopg" not in reply.body.lower()
