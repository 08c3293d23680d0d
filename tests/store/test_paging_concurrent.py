"""Runs created while a walk is in progress never make it repeat or skip a run that
existed when it began (SPEC 2.1), on both databases and through the live HTTP server."""

from __future__ import annotations

import itertools

import httpx
import pytest
from store_support import (
    MADE_STATUSES,
    T0,
    delete_runs,
    follow,
    make_runs,
    new_automations,
    read_page,
    records,
)

from conveyor.domain.runs import AutomationRun, RunStatus
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

STATUSES = itertools.cycle(MADE_STATUSES)


def existing_runs(db: Database, count: int) -> tuple[int, int, list[AutomationRun]]:
    """An automation with `count` runs (three per created_at, so ties), plus a neighbour."""
    with db.write() as conn:
        target, other = new_automations(conn, 2)
        made = make_runs(
            conn,
            [(target, T0 + i // 3, next(STATUSES)) for i in range(count)]
            + [(other, T0 + i, RunStatus.SUCCESS) for i in range(5)],
        )
    return target, other, [run for run in made if run.automation_id == target]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("status", [None, RunStatus.SUCCESS])
def test_runs_created_anywhere_during_a_walk(
    db: Database, direction: str, status: RunStatus | None
) -> None:
    """New runs land before, among (ties with the page's last run) and after the
    existing ones while the walk goes on; the existing ones are each seen once, in order."""
    target, other, existing = existing_runs(db, 30)
    if status is not None:
        existing = [run for run in existing if run.status is status]
    existing.sort(key=lambda run: (run.created_at, run.id), reverse=direction == "desc")
    pairs = [("automation_id", str(target)), ("per_page", "4")]
    pairs.append(("sort_by[created_at]", direction))
    if status is not None:
        pairs.append(("filter[status]", status.value))

    query, page = read_page(db, pairs)
    walked = records(page)
    created: list[AutomationRun] = []
    while page.next_cursor is not None:
        anchor = walked[-1].created_at
        with db.write() as conn:
            created += make_runs(
                conn,
                [
                    (target, T0 - 100 - len(created), RunStatus.SUCCESS),  # before all
                    (target, anchor, RunStatus.SUCCESS),  # ties with the anchor
                    (target, anchor, RunStatus.RUNNING),
                    (target, T0 + 1000 + len(created), RunStatus.SUCCESS),  # after all
                    (other, anchor, RunStatus.SUCCESS),  # another automation's
                ],
            )
        assert len(walked) < 200, "the walk does not end"
        page = read_page(db, follow(pairs, query, page.next_cursor))[1]
        walked += records(page)

    ids = [run.id for run in walked]
    assert len(set(ids)) == len(ids)
    existing_ids = {run.id for run in existing}
    assert [run for run in walked if run.id in existing_ids] == existing
    new = {run.id: run for run in created}
    for run in walked:
        assert run.id in existing_ids or new[run.id].automation_id == target
        assert status is None or run.status is status
    # Whatever the walk saw besides the existing runs lies past the anchor it was read from.
    order = sorted(walked, key=lambda run: (run.created_at, run.id), reverse=direction == "desc")
    assert walked == order


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_newest_runs_created_during_a_walk(db: Database, direction: str) -> None:
    """The everyday case: new runs are the newest. Newest first, the walk is exactly the
    runs that existed; oldest first, it ends with the ones created while it went on."""
    target, _, existing = existing_runs(db, 10)
    existing.sort(key=lambda run: (run.created_at, run.id), reverse=direction == "desc")
    pairs = [("automation_id", str(target)), ("per_page", "3")]
    pairs.append(("sort_by[created_at]", direction))
    query, page = read_page(db, pairs)
    walked = records(page)
    created: list[AutomationRun] = []
    while page.next_cursor is not None:
        with db.write() as conn:
            created += make_runs(conn, [(target, T0 + 1000 + len(created), RunStatus.RUNNING)])
        page = read_page(db, follow(pairs, query, page.next_cursor))[1]
        walked += records(page)
    assert walked == (existing if direction == "desc" else existing + created)
    assert len(created) >= 3


def test_walk_over_http_while_runs_are_created(server: ServerThread, seed: Seeder) -> None:
    """Newest first over real HTTP with X-Files-Cursor-Next, a new run after every page."""
    alice = seed.account("alice")
    automation = seed.automation(alice)
    existing = [seed.run(automation, created_at=T0 + i // 2, outcome=(1, 0)) for i in range(9)]
    newest_first = sorted(existing, key=lambda run: (run.created_at, run.id), reverse=True)
    url = f"{server.url}/api/rest/v1/automation_runs"
    headers = {"X-FilesAPI-Key": alice.key}
    params = {"automation_id": str(automation), "per_page": "2"}
    seen: list[int] = []
    created = []
    with httpx.Client(headers=headers) as client:
        response = client.get(url, params=params)
        while True:
            assert response.status_code == 200, response.text
            seen += [run["id"] for run in response.json()]
            cursor = response.headers.get("X-Files-Cursor-Next")
            if cursor is None:
                break
            created.append(seed.run(automation))  # now: newer than every existing run
            response = client.get(url, params={**params, "cursor": cursor})
    assert seen == [run.id for run in newest_first]
    assert len(created) == 4
    # The new runs are there for a walk that starts now, ahead of the old ones.
    fresh = httpx.get(url, params={**params, "per_page": "100"}, headers=headers).json()
    assert [run["id"] for run in fresh] == [r.id for r in reversed(created)] + seen


@pytest.mark.parametrize("field", ["created_at", "status", "automation_id"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_pages_whose_anchor_was_pruned(db: Database, field: str, direction: str) -> None:
    """A page's run that a cursor is anchored on is pruned before the cursor is used:
    the next (or previous) page still starts right after it, and says there is a page
    the way the cursor came from exactly while runs remain that way."""
    target, _, _ = existing_runs(db, 12)
    pairs = [("automation_id", str(target)), ("per_page", "4"), (f"sort_by[{field}]", direction)]
    query, first = read_page(db, pairs)
    assert first.next_cursor is not None
    second = read_page(db, follow(pairs, query, first.next_cursor))[1]
    assert second.prev_cursor is not None
    first_ids = [row[0] for row in first.rows]
    second_ids = [row[0] for row in second.rows]
    with db.write() as conn:  # the anchors: the last run of page 1, the first of page 2
        delete_runs(conn, [first_ids[-1], second_ids[0]])
    again = read_page(db, follow(pairs, query, first.next_cursor))[1]
    assert [row[0] for row in again.rows] == second_ids[1:] + [
        row[0] for row in read_page(db, follow(pairs, query, second.next_cursor))[1].rows
    ][:1]
    assert again.prev_cursor is not None  # page 1's other runs are still there
    back = read_page(db, follow(pairs, query, second.prev_cursor))[1]
    assert [row[0] for row in back.rows] == first_ids[:-1]
    assert back.next_cursor is not None and back.prev_cursor is None
    with db.write() as conn:  # page 1 entirely gone: nothing lies before page 2
        delete_runs(conn, first_ids[:-1])
    alone = read_page(db, follow(pairs, query, first.next_cursor))[1]
    assert [row[0] for row in alone.rows][:3] == second_ids[1:]
    assert alone.prev_cursor is None
