"""The AutomationLog resource (`GET /api/rest/v1/automation_logs`), served from the
runs' operation records of real runs on real files, through the API and both
official SDKs. Both databases, real HTTP on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from js_sdk import error_class, run_js, value
from log_world import Logged, logged_runs
from sqlalchemy import update

from conveyor.config import Settings
from conveyor.store import engine as engine_store
from conveyor.store import run_control, runs
from conveyor.store.schema import run_operations as ops_t
from conveyor.testing.seed import Seeder

API = "/api/rest/v1"


@pytest.fixture
def logged(seed: Seeder, settings: Settings, tmp_path: Path) -> Logged:
    return logged_runs(seed, settings, tmp_path)


def get(server: Any, key: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.url}{API}/automation_logs", params=params, headers={"X-FilesAPI-Key": key}
    )


def entry(
    logged: Logged,
    run: int,
    when: int,
    op: str,
    path: str,
    dest: str | None,
    status: str,
    error_type: str | None,
    message: str,
) -> dict[str, Any]:
    created = f"2024-02-16T23:30:0{when}Z"
    automation = {logged.folder_run: logged.folders, logged.bob_run: logged.bobs}.get(
        run, logged.copy
    )
    return {
        "timestamp": created,
        "automation_id": automation,
        "automation_run_id": run,
        "dest_path": dest,
        "error_type": error_type,
        "message": message,
        "operation": op,
        "path": path,
        "status": status,
        "created_at": created,
    }


def alices(logged: Logged) -> list[dict[str, Any]]:
    """alice's log, newest first: the second copy run, the folder run, the first copy run."""
    first, second = logged.copy_runs
    refused = "Refused in/c.txt -> out/c.txt: a folder exists at the destination."
    return [
        entry(logged, second, 4, "refuse", "in/c.txt", "out/c.txt", "failure", "refused", refused),
        entry(
            logged,
            second,
            4,
            "copy",
            "in/b.txt",
            "out/b.txt",
            "skipped",
            None,
            "Skipped copying in/b.txt: out/b.txt already exists with the same size (2 bytes).",
        ),
        entry(
            logged,
            second,
            4,
            "copy",
            "in/a.txt",
            "out/a.txt",
            "skipped",
            None,
            "Skipped copying in/a.txt: out/a.txt already exists with the same size (3 bytes).",
        ),
        entry(
            logged,
            logged.folder_run,
            2,
            "create_folder",
            "made/2024",
            None,
            "success",
            None,
            "Created folder made/2024.",
        ),
        entry(logged, first, 1, "refuse", "in/c.txt", "out/c.txt", "failure", "refused", refused),
        entry(
            logged,
            first,
            1,
            "copy",
            "in/b.txt",
            "out/b.txt",
            "skipped",
            None,
            "Skipped copying in/b.txt: out/b.txt already exists with the same size (2 bytes).",
        ),
        entry(
            logged,
            first,
            1,
            "copy",
            "in/a.txt",
            "out/a.txt",
            "success",
            None,
            "Copied in/a.txt to out/a.txt (3 bytes).",
        ),
    ]


def walk(server: Any, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every entry, page by page through X-Files-Cursor, with page=N as the JS SDK sends."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        reply = get(server, key, **params)
        assert reply.status_code == 200, reply.text
        found += reply.json()
        cursor = reply.headers.get("X-Files-Cursor")
        if cursor is None:
            return found
        page += 1
        params = {**params, "cursor": cursor, "page": page}


def test_each_performed_operation_is_one_entry_visible_to_who_may_see_its_run(
    server: Any, logged: Logged
) -> None:
    mine = alices(logged)
    assert get(server, logged.alice.key).json() == mine
    assert walk(server, logged.alice.key, per_page=2) == mine
    bobs = [
        entry(
            logged,
            logged.bob_run,
            3,
            "delete",
            "bob/old.log",
            None,
            "success",
            None,
            "Deleted bob/old.log.",
        )
    ]
    assert walk(server, logged.bob.key, per_page=1) == bobs
    everything = walk(server, logged.root.key, per_page=3)
    assert everything == mine[:3] + bobs + mine[3:]
    # Someone else's automation is filtered like any value: nothing of it shows.
    assert get(server, logged.alice.key, **{"filter[automation_id]": logged.bobs}).json() == []


def test_filters_and_created_at_ranges(server: Any, logged: Logged) -> None:
    mine = alices(logged)
    first, second = logged.copy_runs
    key = logged.alice.key
    cases: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
        ({"automation_id": logged.copy}, mine[:3] + mine[4:]),
        ({"automation_run_id": first}, mine[4:]),
        ({"automation_id": logged.copy, "automation_run_id": second}, mine[:3]),
        ({"status": "skipped"}, [mine[1], mine[2], mine[5]]),
        ({"status": "failure", "automation_run_id": first}, [mine[4]]),
        ({"operation": "create_folder"}, [mine[3]]),
        ({"error_type": "refused"}, [mine[0], mine[4]]),
        ({"path": "in/a.txt"}, [mine[2], mine[6]]),
        ({"dest_path": "out/b.txt"}, [mine[1], mine[5]]),
        ({"created_at": "2024-02-16T23:30:02Z"}, [mine[3]]),
    ]
    for filters, expected in cases:
        params = {f"filter[{k}]": v for k, v in filters.items()}
        assert walk(server, key, per_page=2, **params) == expected, filters
    ranges: list[tuple[dict[str, str], list[dict[str, Any]]]] = [
        ({"filter_gt[created_at]": "2024-02-16T23:30:01Z"}, mine[:4]),
        ({"filter_gteq[created_at]": "2024-02-17T00:30:02+01:00"}, mine[:4]),
        ({"filter_lt[created_at]": "2024-02-16T23:30:02Z"}, mine[4:]),
        ({"filter_lteq[created_at]": "2024-02-16T23:30:02Z"}, mine[3:]),
        (
            {
                "filter_gt[created_at]": "2024-02-16T23:30:01Z",
                "filter_lt[created_at]": "2024-02-16T23:30:04Z",
                "filter[operation]": "create_folder",
            },
            [mine[3]],
        ),
    ]
    for params, expected in ranges:
        assert walk(server, key, per_page=2, **params) == expected, params


def test_bad_parameters_are_refused(server: Any, logged: Logged) -> None:
    key = logged.alice.key
    cursor = get(server, key, per_page=2).headers["X-Files-Cursor-Next"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"sort_by[created_at]": "asc"}, 400, "bad-request/does-not-support-sorting"),
        ({"filter[status]": "nope"}, 400, "bad-request/invalid-filter-param-value"),
        ({"filter[operation]": "teleport"}, 400, "bad-request/invalid-filter-param-value"),
        ({"filter[automation_id]": "x"}, 400, "bad-request/invalid-filter-param-value"),
        ({"filter[created_at]": "today"}, 400, "bad-request/invalid-filter-param-value"),
        ({"filter[node_id]": "1"}, 400, "bad-request/invalid-filter-field"),
        ({"filter_gt[path]": "a"}, 400, "bad-request/invalid-filter-field"),
        ({"filter_prefix[path]": "in/"}, 400, "bad-request/invalid-filter-field"),
        ({"filter_lt[created_at]": "2024-01-01"}, 400, "bad-request/invalid-filter-param-value"),
        ({"per_page": 1001}, 400, "bad-request/request-params-invalid"),
        ({"per_page": 0}, 400, "bad-request/request-params-invalid"),
        ({"page": 2}, 400, "bad-request/request-params-invalid"),
        ({"cursor": "garbage"}, 400, "bad-request/invalid-cursor"),
        ({"cursor": cursor, "per_page": 2, "page": 3}, 400, "bad-request/request-params-invalid"),
        ({"cursor": cursor, "filter[status]": "success"}, 400, "bad-request/invalid-cursor"),
    ]
    for params, status, error_type in cases:
        reply = get(server, key, **params)
        assert (reply.status_code, reply.json()["type"]) == (status, error_type), params
    for key_sent, error_type in (
        ("", "not-authenticated/authentication-required"),
        ("nope", "not-authenticated/invalid-credentials"),
    ):
        reply = get(server, key_sent, **{"sort_by[x]": "y"})
        assert (reply.status_code, reply.json()["type"]) == (401, error_type)


def test_both_official_sdks_list_the_log(files: ModuleType, server: Any, logged: Logged) -> None:
    mine = alices(logged)
    first, _ = logged.copy_runs
    files.set_api_key(logged.alice.key)
    listed = files.automation_log.list({"per_page": 2})
    assert [e.get_attributes() for e in listed.auto_paging_iter()] == [
        {k: v for k, v in e.items() if v is not None} for e in mine
    ]
    failures = files.automation_log.list(
        {
            "per_page": 1,
            "filter": {"status": "failure"},
            "filter_gt": {"created_at": "2024-02-16T23:30:01Z"},
        }
    )
    assert [e.automation_run_id for e in failures.auto_paging_iter()] == [
        mine[0]["automation_run_id"]
    ]
    answers = run_js(
        server.url,
        logged.alice.key,
        {"model": "AutomationLog", "method": "list", "args": [{"per_page": 2}]},
        {
            "model": "AutomationLog",
            "method": "list",
            "args": [{"per_page": 1, "filter": {"automation_run_id": first}}],
        },
        {"model": "AutomationLog", "method": "list", "args": [{"sort_by": {"path": "asc"}}]},
    )
    assert value(answers[0]) == mine
    assert value(answers[1]) == mine[4:]
    assert error_class(answers[2]) == "BadRequest_DoesNotSupportSortingError"


def test_pending_operations_are_not_listed_and_abandoned_ones_say_so(
    server: Any, seed: Seeder, logged: Logged
) -> None:
    later = 1_708_126_200_000_000 + 9 * 1_000_000  # 2024-02-16T23:30:09Z
    with seed.db.write() as conn:
        run = runs.create_run(conn, logged.copy, later, later).id
        engine_store.insert_operations(
            conn,
            run,
            [
                {
                    "seq": seq,
                    "kind": "copy",
                    "source": f"in/{name}.txt",
                    "destination": f"out/{name}.txt",
                    "detail": "{}",
                }
                for seq, name in ((0, "z"), (1, "y"))
            ],
        )
        # Earlier versions marked what a finished run never performed `abandoned`.
        conn.execute(
            update(ops_t)
            .where(ops_t.c.run_id == run, ops_t.c.seq == 1)
            .values(state="abandoned", finished_at=later)
        )
    assert [
        e["path"]
        for e in get(server, logged.alice.key, **{"filter[automation_run_id]": run}).json()
    ] == ["in/y.txt"]
    # The run finishes (canceled while queued): its pending operation was not performed.
    with seed.db.write() as conn:
        run_control.request_cancel(conn, run, by="alice", now=later)
    listed = get(server, logged.alice.key, **{"filter[automation_run_id]": run}).json()
    assert [e["path"] for e in listed] == ["in/y.txt", "in/z.txt"]
    only = get(
        server,
        logged.alice.key,
        **{"filter[automation_run_id]": run, "filter[status]": "abandoned"},
    ).json()
    assert only == listed
    for abandoned in listed:
        assert (abandoned["status"], abandoned["error_type"], abandoned["created_at"]) == (
            "abandoned",
            "abandoned",
            "2024-02-16T23:30:09Z",
        )
        assert abandoned["message"] == (
            "Not performed: the run was finished before it reached this operation."
        )
