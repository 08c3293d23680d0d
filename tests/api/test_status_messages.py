"""The signed status-messages URL (SPEC 1.2): absolute, keyless, expiring, 403 when bad."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_http import API, Reply, assert_error, fetch, snapshot
from api_world import World

from conveyor.app import create_app
from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.store import runs as runs_store
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread
from suite_support import suite_settings

NOT_AUTHORIZED = "not-authorized"


def run_json(base_url: str, key: str, run_id: int) -> dict[str, object]:
    reply = fetch(base_url, f"{API}/automation_runs/{run_id}", key)
    assert reply.status == 200, reply.body
    body: dict[str, object] = reply.json()
    return body


def messages_url(base_url: str, key: str, run_id: int) -> str:
    url = run_json(base_url, key, run_id)["status_messages_url"]
    assert isinstance(url, str)
    return url


def read(url: str) -> Reply:
    """GET an absolute URL exactly as given, with no API key."""
    origin, _, rest = url.partition("/api/")
    return fetch(origin, "/api/" + rest)


def url_parts(url: str) -> tuple[str, int, str]:
    match = re.fullmatch(
        r"(.*)/api/rest/v1/automation_runs/(\d+)/status_messages"
        r"\?expires=(\d+)&signature=([0-9a-f]{32})",
        url,
    )
    assert match, url
    return match[1], int(match[3]), match[4]


# ------------------------------------------------------------ the shared world


def test_url_is_absolute_on_the_servers_origin_and_expires_on_a_minute(world: World) -> None:
    for record in fetch(
        world.url, f"{API}/automation_runs?automation_id={world.a}", world.alice.key
    ).json():
        origin, expires, _ = url_parts(record["status_messages_url"])
        assert origin == world.url
        assert record["status_messages_url"].startswith(
            f"{world.url}/api/rest/v1/automation_runs/{record['id']}/status_messages?"
        )
        # ManualClock: 1,700,000,000 s; TTL 3,600 s; rounded up to the next minute.
        assert expires == 1_700_003_640 and expires % 60 == 0


def test_log_is_plain_text_readable_without_a_key(world: World) -> None:
    running = next(r for r in world.runs[world.a] if r.run_stage is RunStage.EXECUTING)
    reply = read(messages_url(world.url, world.alice.key, running.id))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.text == "2023-11-14T22:13:30Z [info] planned 3 operations\n"
    quiet = world.runs[world.a][0]
    assert read(messages_url(world.url, world.alice.key, quiet.id)).text == ""


def test_configured_public_url_is_the_origin(world: World, tmp_path: Path) -> None:
    public = suite_settings(
        tmp_path, world.settings.database_url, CONVEYOR_PUBLIC_URL="https://runs.example.com/"
    )
    run = world.runs[world.a][0]
    with ServerThread(create_app(public, world.db, clock=world.clock)) as server:
        url = messages_url(server.url, world.alice.key, run.id)
        assert url.startswith(f"https://runs.example.com/api/rest/v1/automation_runs/{run.id}/")
        # The same signature is good on the server the proxy forwards to.
        assert read(url.replace("https://runs.example.com", server.url)).status == 200


def bad_urls(world: World) -> dict[str, str]:
    first, second = world.runs[world.a][0], world.runs[world.a][2]
    good = messages_url(world.url, world.alice.key, first.id)
    origin, expires, signature = url_parts(good)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")

    def log(run_id: object, query: str) -> str:
        return f"{origin}/api/rest/v1/automation_runs/{run_id}/status_messages?{query}"

    return {
        "tampered-signature": log(first.id, f"expires={expires}&signature={flipped}"),
        "another-runs-signature": good.replace(f"/{first.id}/", f"/{second.id}/"),
        "extended-expiry": log(first.id, f"expires={expires + 60}&signature={signature}"),
        "no-signature": log(first.id, f"expires={expires}"),
        "no-expiry": log(first.id, f"signature={signature}"),
        "expiry-not-a-number": log(first.id, f"expires=soon&signature={signature}"),
        "run-id-not-a-number": log("abc", f"expires={expires}&signature={signature}"),
        "signature-not-ascii": log(first.id, f"expires={expires}&signature=%C3%A9{signature[2:]}"),
        # Numbers a signature's 64-bit fields cannot hold: refused, never a 500.
        "run-id-negative": log(-1, f"expires={expires}&signature={signature}"),
        "run-id-beyond-64-bits": log(2**64 + first.id, f"expires={expires}&signature={signature}"),
        "expiry-beyond-64-bits": log(first.id, f"expires={2**64 + expires}&signature={signature}"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "tampered-signature",
        "another-runs-signature",
        "extended-expiry",
        "no-signature",
        "no-expiry",
        "expiry-not-a-number",
        "run-id-not-a-number",
        "signature-not-ascii",
        "run-id-negative",
        "run-id-beyond-64-bits",
        "expiry-beyond-64-bits",
    ],
)
def test_bad_signature_is_403(world: World, case: str) -> None:
    url = bad_urls(world)[case]
    before = snapshot(world.db)
    body = assert_error(read(url), 403, NOT_AUTHORIZED)
    assert "fresh status_messages_url" in body["error"]
    assert snapshot(world.db) == before


def test_signature_from_another_secret_is_403(world: World, tmp_path: Path) -> None:
    other = suite_settings(tmp_path, world.settings.database_url, CONVEYOR_SECRET_KEY="another")
    run = world.runs[world.a][0]
    with ServerThread(create_app(other, world.db, clock=world.clock)) as second:
        foreign = messages_url(second.url, world.alice.key, run.id)
        assert read(foreign).status == 200
    assert_error(read(foreign.replace(second.url, world.url)), 403, NOT_AUTHORIZED)


# ------------------------------------------------------- runs that move on


def test_messages_appear_while_the_run_executes(server: ServerThread, seed: Seeder) -> None:
    alice = seed.account("alice")
    run = seed.run(
        seed.automation(alice), stage=RunStage.EXECUTING, messages=["planned 2 operations"]
    )
    url = messages_url(server.url, alice.key, run.id)
    assert [line.split(" ", 1)[1] for line in read(url).text.splitlines()] == [
        "[info] planned 2 operations"
    ]
    with seed.db.write() as conn:
        runs_store.append_message(conn, run.id, seed.clock.now(), "copied a.txt")
        runs_store.append_message(
            conn, run.id, seed.clock.now(), "b.txt: permission denied", MessageLevel.ERROR
        )
    assert [line.split(" ", 1)[1] for line in read(url).text.splitlines()] == [
        "[info] planned 2 operations",
        "[info] copied a.txt",
        "[error] b.txt: permission denied",
    ]
    with seed.db.write() as conn:
        runs_store.finish_run(conn, run.id, seed.clock.now(), message="finished: 1 failed")
    # The same URL still reads the finished log; every line is stamped RFC 3339.
    lines = read(url).text.splitlines()
    assert lines[-1].split(" ", 1)[1] == "[info] finished: 1 failed"
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[", line) for line in lines)


def test_url_expires_after_the_ttl(settings: Settings, db: Database) -> None:
    clock = ManualClock(1_700_000_030_000_000)
    seed = Seeder(db, clock)
    alice = seed.account("alice")
    run = seed.run(seed.automation(alice), stage=RunStage.EXECUTING, messages=["started"])
    with ServerThread(create_app(settings, db, clock=clock)) as server:
        url = messages_url(server.url, alice.key, run.id)
        _, expires, _ = url_parts(url)
        assert expires == 1_700_003_640  # 1,700,000,030 + 3,600, up to the minute
        clock.value = expires * 1_000_000  # the last second it is good for
        assert read(url).status == 200
        clock.advance(1)
        assert_error(read(url), 403, NOT_AUTHORIZED)
        # A fresh fetch of the run gives a fresh, working URL.
        fresh = messages_url(server.url, alice.key, run.id)
        assert fresh != url and read(fresh).text.endswith("[info] started\n")


def test_a_message_is_always_one_line(server: ServerThread, seed: Seeder) -> None:
    """Line breaks inside a message are escaped, so one entry never looks like several."""
    alice = seed.account("alice")
    run = seed.run(seed.automation(alice), messages=["first\nsecond\r\nthird \\n"])
    lines = read(messages_url(server.url, alice.key, run.id)).text.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["[info] first\\nsecond\\r\\nthird \\\\n"]


def test_a_long_log_is_streamed_whole_and_in_order_with_nosniff(
    server: ServerThread, seed: Seeder
) -> None:
    """Longer than a page of the stream (LOG_PAGE lines): every line, once, in order."""
    from conveyor.api.runs import LOG_PAGE
    from conveyor.store import engine as engine_store

    alice = seed.account("alice")
    run = seed.run(seed.automation(alice), stage=RunStage.EXECUTING, messages=["first"])
    count = 2 * LOG_PAGE + 7
    with seed.db.write() as conn:
        engine_store.insert_messages(
            conn,
            run.id,
            seed.clock.now(),
            [(MessageLevel.INFO, f"line {n}") for n in range(count)],
        )
    reply = read(messages_url(server.url, alice.key, run.id))
    assert reply.status == 200
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    texts = [line.split(" ", 1)[1] for line in reply.text.splitlines()]
    assert texts == ["[info] first"] + [f"[info] line {n}" for n in range(count)]
