"""GET /api/conveyor/v1/automation_runs: the runs the caller may see across automations,
over HTTP on both databases, read from the shared seeded world (tests/api/conftest.py).
The property test (tests/store/test_all_runs_properties.py) covers the filter space."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from api_http import Reply, assert_error, fetch, rfc3339
from api_world import World

from conveyor.domain.runs import AutomationRun

PATH = "/api/conveyor/v1/automation_runs"
PARAMS_INVALID = "bad-request/request-params-invalid"


def get(w: World, key: str, params: list[tuple[str, str]] | None = None) -> Reply:
    query = urlencode(params or [], quote_via=quote, safe=",")
    return fetch(w.url, f"{PATH}?{query}" if query else PATH, key)


def newest_first(runs: list[AutomationRun]) -> list[int]:
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]


def every(w: World, *automations: int) -> list[AutomationRun]:
    return [run for a in automations for run in w.runs[a]]


def walk(w: World, key: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    reply = get(w, key, params)
    found: list[dict[str, Any]] = []
    while True:
        assert reply.status == 200, reply.body[:300]
        found.extend(reply.json())
        if reply.next_cursor is None:
            return found
        assert reply.headers["x-files-cursor"] == reply.next_cursor
        reply = get(w, key, [*params, ("cursor", reply.next_cursor)])


def test_an_admin_sees_every_run_newest_first(world: World) -> None:
    w = world
    reply = get(w, w.admin.key)
    assert reply.status == 200
    assert [run["id"] for run in reply.json()] == newest_first(every(w, w.a, w.a2, w.b))
    first = reply.json()[0]
    assert {"id", "automation_id", "status", "created_at", "status_messages_url"} <= set(first)


def test_a_user_sees_the_runs_of_the_automations_they_own(world: World) -> None:
    w = world
    mine = get(w, w.alice.key).json()
    assert [run["id"] for run in mine] == newest_first(every(w, w.a, w.a2))
    assert [run["id"] for run in get(w, w.bob.key).json()] == newest_first(every(w, w.b))
    # Another's automation as a filter: nothing, not an error.
    assert get(w, w.bob.key, [("filter[automation_id]", str(w.a))]).json() == []


def test_filters_and_paging_both_ways(world: World) -> None:
    w = world
    wanted = {"failure", "partial_failure"}
    params = [("filter[status]", "failure,partial_failure"), ("per_page", "1")]
    runs = walk(w, w.admin.key, params)
    expected = [run for run in every(w, w.a, w.a2, w.b) if run.status.value in wanted]
    assert [run["id"] for run in runs] == newest_first(expected)
    assert len(runs) >= 2
    # Oldest first, within a created_at range, of one automation, of manual runs.
    start = w.runs[w.a][0].created_at
    params = [
        ("sort_by[created_at]", "asc"),
        ("filter_gteq[created_at]", rfc3339(start + 5_000_000) or ""),
        ("filter_lt[created_at]", rfc3339(start + 30_000_000) or ""),
        ("filter[automation_id]", str(w.a)),
        ("filter[trigger]", "manual"),
        ("per_page", "2"),
    ]
    runs = walk(w, w.alice.key, params)
    expected = [r for r in w.runs[w.a] if start + 5_000_000 <= r.created_at < start + 30_000_000]
    assert [run["id"] for run in runs] == [
        r.id for r in sorted(expected, key=lambda r: (r.created_at, r.id))
    ]
    assert get(w, w.admin.key, [("filter[trigger]", "webhook")]).json() == []
    # Back from the second page.
    second = get(
        w,
        w.admin.key,
        [("per_page", "2"), ("cursor", get(w, w.admin.key, [("per_page", "2")]).next_cursor or "")],
    )
    back = get(w, w.admin.key, [("per_page", "2"), ("cursor", second.prev_cursor or "")])
    assert [run["id"] for run in back.json()] == newest_first(every(w, w.a, w.a2, w.b))[:2]
    assert back.prev_cursor is None


def test_bad_input_is_refused_by_name(world: World) -> None:
    w = world
    body = assert_error(
        get(w, w.admin.key, [("automation_id", "1"), ("x", "1")]), 400, PARAMS_INVALID
    )
    assert "Unknown parameter: automation_id, x" in body["error"]
    body = assert_error(
        get(w, w.admin.key, [("filter[status]", "failure,nope")]),
        400,
        "bad-request/invalid-filter-param-value",
    )
    assert "'nope'" in body["error"]
    assert_error(
        get(w, w.admin.key, [("filter[trigger]", "cron")]),
        400,
        "bad-request/invalid-filter-param-value",
    )
    assert_error(
        get(w, w.admin.key, [("filter[name]", "x")]), 400, "bad-request/invalid-filter-field"
    )
    assert_error(
        get(w, w.admin.key, [("filter_gt[completed_at]", "2024-01-01T00:00:00Z")]),
        400,
        "bad-request/invalid-filter-field",
    )
    assert_error(
        get(w, w.admin.key, [("filter_lt[created_at]", "yesterday")]),
        400,
        "bad-request/invalid-filter-param-value",
    )
    assert_error(
        get(w, w.admin.key, [("sort_by[status]", "asc")]), 400, "bad-request/invalid-sort-field"
    )
    assert_error(get(w, w.admin.key, [("filter[automation_id]", "a")]), 400, PARAMS_INVALID)
    # A cursor of one filter is refused by another.
    token = get(w, w.admin.key, [("per_page", "1")]).next_cursor or ""
    assert_error(
        get(w, w.admin.key, [("per_page", "1"), ("filter[status]", "success"), ("cursor", token)]),
        400,
        "bad-request/invalid-cursor",
    )
    assert_error(get(w, "wrong-key"), 401, "not-authenticated/invalid-credentials")
