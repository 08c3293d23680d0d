"""List and find behaviour: order, ties, filters, page size, cursors and the exact records."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from api_http import API, Reply, fetch, rfc3339, snapshot
from api_world import SECOND, World

from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.store import runs as runs_store
from conveyor.testing.seed import Seeder, make_run
from conveyor.testing.server import ServerThread

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# Sort keys as a user expects them: the field, then the id in the same direction.
SORT_KEYS: dict[str | None, Callable[[AutomationRun], tuple[Any, ...]]] = {
    None: lambda r: (r.created_at, r.id),  # the default: created_at
    "created_at": lambda r: (r.created_at, r.id),
    "status": lambda r: (r.status.value, r.id),
    "automation_id": lambda r: (r.automation_id, r.id),
}
SORTS = [
    ("", None, True),
    ("&sort_by[created_at]=asc", "created_at", False),
    ("&sort_by[created_at]=desc", "created_at", True),
    ("&sort_by[status]=asc", "status", False),
    ("&sort_by[status]=desc", "status", True),
    ("&sort_by[automation_id]=asc", "automation_id", False),
    ("&sort_by[automation_id]=desc", "automation_id", True),
]
SORT_IDS = [
    "default",
    "created-asc",
    "created-desc",
    "status-asc",
    "status-desc",
    "aid-asc",
    "aid-desc",
]


def expected_ids(runs: list[AutomationRun], field: str | None, descending: bool) -> list[int]:
    return [r.id for r in sorted(runs, key=SORT_KEYS[field], reverse=descending)]


def wire(run: AutomationRun) -> dict[str, Any]:
    """The JSON a client should see for a run, but for its signed URL."""
    return {
        "id": run.id,
        "automation_id": run.automation_id,
        "completed_at": rfc3339(run.completed_at),
        "created_at": rfc3339(run.created_at),
        "runtime": rfc3339(run.runtime),
        "status": run.status.value,
        "run_stage": run.run_stage.value,
        "successful_operations": run.successful_operations,
        "failed_operations": run.failed_operations,
        "retry_at": None,
        "retried_at": None,
        "retried_in_run_id": None,
        "retry_of_run_id": None,
        "cancel_requested_at": None,
        "rerun_of_run_id": None,
        "rerun_from_node_id": None,
    }


def without_url(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "status_messages_url"}


def page(base_url: str, key: str, query: str, cursor: str | None = None) -> Reply:
    target = f"{API}/automation_runs?{query}" + (f"&cursor={cursor}" if cursor else "")
    reply = fetch(base_url, target, key)
    assert reply.status == 200, reply.body[:300]
    return reply


def walk_forward(base_url: str, key: str, query: str) -> list[Reply]:
    pages = [page(base_url, key, query)]
    while pages[-1].next_cursor:
        pages.append(page(base_url, key, query, pages[-1].next_cursor))
        assert len(pages) < 100
    return pages


def ids(reply: Reply) -> list[int]:
    return [record["id"] for record in reply.json()]


# ----------------------------------------------------------- order and records


def test_default_order_is_newest_first_and_records_are_exact(world: World) -> None:
    runs = world.runs[world.a]
    reply = page(world.url, world.alice.key, f"automation_id={world.a}")
    body = reply.json()
    assert [without_url(r) for r in body] == [
        wire(r) for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)
    ]
    # Four runs share created_at: newest id first among them.
    tied = [r["id"] for r in body if r["created_at"] == "2023-11-14T22:13:30Z"]
    assert len(tied) == 4 and tied == sorted(tied, reverse=True)
    assert reply.headers["content-type"] == "application/json"


def test_times_are_rfc3339_utc_whole_seconds(world: World) -> None:
    body = page(
        world.url, world.alice.key, f"automation_id={world.a}&sort_by[created_at]=asc"
    ).json()
    # ManualClock starts at 1,700,000,000 s; one run is 20.5 s later and shows :40, not :40.5.
    assert [r["created_at"] for r in body] == [
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:25Z",
        *["2023-11-14T22:13:30Z"] * 4,
        "2023-11-14T22:13:40Z",
        "2023-11-14T22:13:50Z",
    ]
    for record in body:
        for name in ("created_at", "runtime", "completed_at"):
            value = record[name]
            if record["run_stage"] != "finished" and name == "completed_at":
                assert value is None
            else:
                assert RFC3339_Z.match(value), value


@pytest.mark.parametrize(("query", "field", "descending"), SORTS, ids=SORT_IDS)
def test_each_sort_breaks_ties_by_id_in_its_direction(
    world: World, query: str, field: str | None, descending: bool
) -> None:
    runs = world.runs[world.a]
    whole = page(world.url, world.alice.key, f"automation_id={world.a}{query}")
    assert ids(whole) == expected_ids(runs, field, descending)
    # Pages of 3 cut through the tie groups; the walk must still be the same order.
    pages = walk_forward(world.url, world.alice.key, f"automation_id={world.a}&per_page=3{query}")
    assert [i for p in pages for i in ids(p)] == expected_ids(runs, field, descending)


@pytest.mark.parametrize("status", ["running", "success", "partial_failure", "failure"])
@pytest.mark.parametrize(("query", "field", "descending"), SORTS, ids=SORT_IDS)
def test_status_filter_returns_only_that_status(
    world: World, status: str, query: str, field: str | None, descending: bool
) -> None:
    matching = [r for r in world.runs[world.a] if r.status.value == status]
    expected = expected_ids(matching, field, descending)
    for base in (
        f"automation_id={world.a}&filter[status]={status}",
        f"automation_id={world.a}&filter[status]={status}&filter[automation_id]={world.a}",
    ):
        pages = walk_forward(world.url, world.alice.key, f"{base}&per_page=1{query}")
        assert [i for p in pages for i in ids(p)] == expected
        assert ids(page(world.url, world.alice.key, base + query)) == expected


def test_find_returns_each_run_exactly(world: World) -> None:
    listed = page(world.url, world.alice.key, f"automation_id={world.a}").json()
    by_id = {record["id"]: record for record in listed}
    for run in world.runs[world.a]:
        reply = fetch(world.url, f"{API}/automation_runs/{run.id}", world.alice.key)
        assert reply.status == 200
        assert without_url(reply.json()) == wire(run)
        assert reply.json() == by_id[run.id]


def test_admin_sees_runs_of_every_user(world: World) -> None:
    for automation in (world.a, world.b):
        reply = page(
            world.url, world.admin.key, f"automation_id={automation}&sort_by[created_at]=asc"
        )
        assert ids(reply) == expected_ids(world.runs[automation], "created_at", False)


# --------------------------------------------------------------------- cursors


def test_cursor_headers_are_present_only_where_records_are(world: World) -> None:
    key = world.alice.key
    empty = page(world.url, key, f"automation_id={world.empty}")
    assert empty.json() == [] and (empty.next_cursor, empty.prev_cursor) == (None, None)
    # Exactly per_page records: one page, no cursor either way.
    single = page(world.url, key, f"automation_id={world.a2}&per_page=3")
    assert len(single.json()) == 3 and (single.next_cursor, single.prev_cursor) == (None, None)
    first, middle, last = walk_forward(world.url, key, f"automation_id={world.a}&per_page=3")
    assert first.next_cursor and first.prev_cursor is None
    assert middle.next_cursor and middle.prev_cursor
    assert last.prev_cursor and last.next_cursor is None
    assert (len(first.json()), len(middle.json()), len(last.json())) == (3, 3, 2)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", first.next_cursor)  # URL-safe as it is


@pytest.mark.parametrize(
    "query",
    [
        "",
        "&sort_by[created_at]=asc",
        "&sort_by[status]=asc",
        "&sort_by[status]=desc",
        "&sort_by[automation_id]=desc",
        "&filter[status]=success",
        "&filter[status]=success&sort_by[status]=asc",
    ],
)
def test_walking_back_with_prev_cursors_returns_the_same_pages(world: World, query: str) -> None:
    key, base = world.alice.key, f"automation_id={world.a}&per_page=2{query}"
    forward = walk_forward(world.url, key, base)
    assert len(forward) >= 2
    back = [forward[-1]]
    while back[-1].prev_cursor:
        back.append(page(world.url, key, base, back[-1].prev_cursor))
        assert len(back) <= len(forward)
    back.reverse()
    assert [p.body for p in back] == [p.body for p in forward]
    # The first page reached backwards has no prev, and its next leads on as before.
    assert back[0].prev_cursor is None
    assert page(world.url, key, base, back[0].next_cursor).body == forward[1].body


def test_per_page_may_change_between_pages(world: World) -> None:
    key, base = world.alice.key, f"automation_id={world.a}&sort_by[status]=asc"
    first = page(world.url, key, f"{base}&per_page=3")
    # Later pages append their own cursor; the repeated key counts with its last value.
    rest = walk_forward(world.url, key, f"{base}&per_page=2&cursor={first.next_cursor}")
    walked = ids(first) + [i for p in rest for i in ids(p)]
    assert walked == expected_ids(world.runs[world.a], "status", False)


def test_listing_changes_nothing(world: World) -> None:
    before = snapshot(world.db)
    walk_forward(world.url, world.alice.key, f"automation_id={world.a}&per_page=1")
    assert snapshot(world.db) == before


# ---------------------------------------------- tests that need their own data


def test_per_page_defaults_to_1000(server: ServerThread, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    t0 = seed.clock.now()
    with seed.db.write() as conn:  # one transaction: Seeder.run's steps, 1,001 times
        made = [make_run(conn, automation, t0 + i) for i in range(1001)]
    first = page(server.url, alice.key, f"automation_id={automation}")
    assert ids(first) == [r.id for r in reversed(made)][:1000]
    assert first.next_cursor and first.prev_cursor is None
    second = page(server.url, alice.key, f"automation_id={automation}", first.next_cursor)
    assert ids(second) == [made[0].id]
    assert second.next_cursor is None and second.prev_cursor
    everything = page(server.url, alice.key, f"automation_id={automation}&per_page=10000")
    assert len(everything.json()) == 1001 and everything.next_cursor is None


@pytest.mark.parametrize("order", ["", "&sort_by[created_at]=asc"])
def test_walk_while_runs_are_created_neither_repeats_nor_skips(
    server: ServerThread, seed: Seeder, order: str
) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    t0 = seed.clock.now()
    existing = [seed.run(automation, created_at=t0 + i * SECOND) for i in range(7)]
    query = f"automation_id={automation}&per_page=2{order}"
    seen: list[int] = []
    reply = page(server.url, alice.key, query)
    while True:
        seen += ids(reply)
        seed.run(automation, created_at=t0 + (100 + len(seen)) * SECOND)  # newer than all
        if not reply.next_cursor:
            break
        reply = page(server.url, alice.key, query, reply.next_cursor)
    old = [r.id for r in existing]
    if order:  # oldest first: the walk reaches the new runs at its end
        assert seen[:7] == old and len(set(seen)) == len(seen)
    else:  # newest first: the new runs are all before where the walk began
        assert seen == list(reversed(old))


def test_a_page_past_records_that_left_the_filter_is_empty_without_cursors(
    server: ServerThread, seed: Seeder
) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    t0 = seed.clock.now()
    older = seed.run(automation, created_at=t0, stage=RunStage.EXECUTING)
    newer = seed.run(automation, created_at=t0 + SECOND, stage=RunStage.EXECUTING)
    query = f"automation_id={automation}&filter[status]=running&per_page=1"
    first = page(server.url, alice.key, query)
    assert ids(first) == [newer.id] and first.next_cursor
    with seed.db.write() as conn:
        runs_store.finish_run(conn, older.id, t0 + 2 * SECOND)
    after = page(server.url, alice.key, query, first.next_cursor)
    assert after.json() == []
    assert (after.next_cursor, after.prev_cursor) == (None, None)
