"""Both official Files.com SDKs, unchanged, page through every run exactly once.

For every sort (and none) and every filter (and none) the run list is walked
with a small `per_page` by each SDK's own auto-pagination: the Python SDK's
`auto_paging_iter` (follows X-Files-Cursor-Next) and the JavaScript SDK's
`AutomationRun.list` (follows X-Files-Cursor and adds `page=N`, which
Conveyor checks against the cursor). Real HTTP on 127.0.0.1, both databases.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import httpx
import pytest
from js_sdk import error_class, run_js, value

from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.testing.seed import Account, Seeder

T0 = 1_700_000_000_000_000
SECOND = 1_000_000
OUTCOMES: list[dict[str, Any]] = [
    {"outcome": (1, 0)},
    {"outcome": (0, 1)},
    {"outcome": (2, 1)},
    {"stage": RunStage.EXECUTING},
    {},
]
SORTS: list[dict[str, str] | None] = [
    None,
    {"created_at": "asc"},
    {"created_at": "desc"},
    {"status": "asc"},
    {"status": "desc"},
    {"automation_id": "asc"},
    {"automation_id": "desc"},
]
STATUSES = ("success", "failure", "partial_failure", "running")


@pytest.fixture
def history(seed: Seeder) -> tuple[Account, int, list[AutomationRun]]:
    """25 runs of one of alice's automations (created_at with ties, out of id order),
    with runs of her other automation and of bob's interleaved."""
    alice = seed.account("alice")
    mine, other = seed.automation(alice), seed.automation(alice)
    bobs = seed.automation(seed.account("bob"))
    made = []
    for i in range(25):
        made.append(
            seed.run(mine, created_at=T0 + ((i * 7) % 11) * SECOND, **OUTCOMES[i % len(OUTCOMES)])
        )
        if i % 6 == 0:
            seed.run(other, created_at=T0 + i * SECOND, outcome=(1, 0))
            seed.run(bobs, created_at=T0 + i * SECOND, outcome=(1, 0))
    return alice, mine, made


def expected(
    made: list[AutomationRun], sort: dict[str, str] | None, status: str | None
) -> list[int]:
    runs = [r for r in made if status is None or r.status.value == status]
    field, direction = next(iter(sort.items())) if sort else ("created_at", "desc")
    key = {
        "created_at": lambda r: (r.created_at, r.id),
        "status": lambda r: (r.status.value, r.id),
        "automation_id": lambda r: (r.id,),
    }[field]
    return [r.id for r in sorted(runs, key=key, reverse=direction == "desc")]


def cases(automation: int) -> list[tuple[dict[str, Any], dict[str, str] | None, str | None]]:
    """(params, sort, status filter) for every sort and filter, per_page 3."""
    found = []
    filters: list[dict[str, Any] | None] = [None, {"automation_id": automation}]
    filters += [{"status": s} for s in STATUSES]
    filters.append({"status": "failure", "automation_id": automation})
    for sort in SORTS:
        for filter_ in filters:
            params: dict[str, Any] = {"automation_id": automation, "per_page": 3}
            if sort:
                params["sort_by"] = sort
            if filter_:
                params["filter"] = filter_
            found.append((params, sort, (filter_ or {}).get("status")))
    return found


def test_python_sdk_auto_paging_returns_every_run_once_for_every_sort_and_filter(
    files: ModuleType, history: tuple[Account, int, list[AutomationRun]]
) -> None:
    alice, automation, made = history
    files.set_api_key(alice.key)
    for params, sort, status in cases(automation):
        walked = [r.id for r in files.automation_run.list(params).auto_paging_iter()]
        assert walked == expected(made, sort, status), params


def test_javascript_sdk_auto_pagination_returns_every_run_once_for_every_sort_and_filter(
    server: Any, history: tuple[Account, int, list[AutomationRun]]
) -> None:
    alice, automation, made = history
    all_cases = cases(automation)
    calls = [{"model": "AutomationRun", "method": "list", "args": [p]} for p, _, _ in all_cases]
    answers = run_js(server.url, alice.key, *calls)
    for (params, sort, status), answer in zip(all_cases, answers, strict=True):
        assert [r["id"] for r in value(answer)] == expected(made, sort, status), params
    # Without auto-pagination the SDK reads one page; the next starts from the cursor.
    (first,) = run_js(
        server.url,
        alice.key,
        {
            "model": "AutomationRun",
            "method": "list",
            "args": [{"automation_id": automation, "per_page": 10}, {"autoPaginate": False}],
        },
    )
    assert [r["id"] for r in value(first)] == expected(made, None, None)[:10]


def test_javascript_sdk_page_beyond_the_cursor_is_refused_not_ignored(
    server: Any, history: tuple[Account, int, list[AutomationRun]]
) -> None:
    alice, automation, _ = history
    (answer,) = run_js(
        server.url,
        alice.key,
        {
            "model": "AutomationRun",
            "method": "list",
            "args": [{"automation_id": automation, "page": 2}],
        },
    )
    assert error_class(answer) == "BadRequest_RequestParamsInvalidError"
    assert "page must be 1 without a cursor" in answer["error"]["message"]


def test_javascript_sdk_raises_the_specific_class_of_each_error(
    server: Any, seed: Seeder, history: tuple[Account, int, list[AutomationRun]]
) -> None:
    alice, automation, made = history
    bobs = seed.automation(seed.account("carol"))
    (page,) = run_js(
        server.url,
        alice.key,
        {
            "model": "AutomationRun",
            "method": "list",
            "args": [{"automation_id": automation, "per_page": 1}, {"autoPaginate": False}],
        },
    )
    value(page)
    cursor = httpx.get(
        f"{server.url}/api/rest/v1/automation_runs",
        params={"automation_id": automation, "per_page": 1},
        headers={"X-FilesAPI-Key": alice.key},
    ).headers["X-Files-Cursor"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cursor": "garbage"}, "BadRequest_InvalidCursorError"),
        (
            {"cursor": cursor, "sort_by": {"created_at": "asc"}},
            "BadRequest_InvalidCursorTypeForSortError",
        ),
        ({"sort_by": {"id": "asc"}}, "BadRequest_InvalidSortFieldError"),
        (
            {"sort_by": {"created_at": "asc", "status": "asc"}},
            "BadRequest_MultipleSortParamsNotAllowedError",
        ),
        ({"filter": {"run_stage": "finished"}}, "BadRequest_InvalidFilterFieldError"),
        ({"filter": {"status": "nope"}}, "BadRequest_InvalidFilterParamValueError"),
        ({"per_page": 10_001}, "BadRequest_RequestParamsInvalidError"),
        ({"automation_id": bobs}, "NotFoundError"),
        ({"automation_id": 9_000_000}, "NotFoundError"),
        ({"user_id": 9_000_000}, "NotFoundError"),
    ]
    calls = [
        {
            "model": "AutomationRun",
            "method": "list",
            "args": [{"automation_id": automation, **extra}],
        }
        for extra, _ in cases
    ]
    answers = run_js(server.url, alice.key, *calls)
    assert [error_class(a) for a in answers] == [name for _, name in cases]
    assert answers[0]["error"]["type"] == "bad-request/invalid-cursor"
    assert answers[0]["error"]["code"] == 400
    wrong = run_js(
        server.url,
        "0" * 64,
        {"model": "AutomationRun", "method": "list", "args": [{"automation_id": automation}]},
        {"model": "AutomationRun", "method": "find", "args": [made[0].id]},
    )
    assert [error_class(a) for a in wrong] == ["NotAuthenticated_InvalidCredentialsError"] * 2
    # Without a key the SDK refuses locally and sends nothing.
    (keyless,) = run_js(
        server.url,
        None,
        {"model": "AutomationRun", "method": "list", "args": [{"automation_id": automation}]},
    )
    assert error_class(keyless) == "ConfigurationError"
