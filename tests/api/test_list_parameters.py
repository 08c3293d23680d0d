"""Files.com list parameters beyond sort and filter: range filters on the automation
list's `last_modified_at`, `user_id` on the run list, and the `page` the JavaScript
SDK adds to a cursor. Real HTTP on 127.0.0.1, both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conveyor.store import automations as automations_store
from conveyor.testing.seed import Account, Seeder

T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
SECOND = 1_000_000
API = "/api/rest/v1"


def get(server: Any, key: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{API}{path}", params=params, headers={"X-FilesAPI-Key": key})


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


@pytest.fixture
def ten(seed: Seeder, alice: Account) -> list[int]:
    """Ten automations of alice's, last modified 10 s apart from T0 on."""
    with seed.db.write() as conn:
        return [
            automations_store.create_automation(conn, alice.user.id, T0 + i * 10 * SECOND)
            for i in range(10)
        ]


def walk(server: Any, key: str, **params: Any) -> list[int]:
    """Every id of the automation list, page by page through X-Files-Cursor."""
    ids: list[int] = []
    page = 1
    while True:
        reply = get(server, key, "/automations", per_page=3, **params)
        assert reply.status_code == 200, reply.text
        ids += [a["id"] for a in reply.json()]
        cursor = reply.headers.get("X-Files-Cursor")
        assert cursor == reply.headers.get("X-Files-Cursor-Next")
        if cursor is None:
            return ids
        page += 1
        params = {**params, "cursor": cursor, "page": page}


def test_range_filters_on_last_modified_at(server: Any, alice: Account, ten: list[int]) -> None:
    at = "2023-11-14T22:14:00Z"  # T0 + 40 s: the fifth automation
    assert walk(server, alice.key, **{"filter_gt[last_modified_at]": at}) == ten[5:]
    assert walk(server, alice.key, **{"filter_gteq[last_modified_at]": at}) == ten[4:]
    assert walk(server, alice.key, **{"filter_lt[last_modified_at]": at}) == ten[:4]
    assert walk(server, alice.key, **{"filter_lteq[last_modified_at]": at}) == ten[:5]
    both = {
        "filter_gteq[last_modified_at]": "2023-11-14T22:13:30Z",
        "filter_lt[last_modified_at]": "2023-11-14T23:14:10+01:00",  # T0 + 50 s
        "sort_by[last_modified_at]": "desc",
    }
    assert walk(server, alice.key, **both) == list(reversed(ten[1:5]))


def test_a_cursor_is_bound_to_its_range_filters(
    server: Any, alice: Account, ten: list[int]
) -> None:
    first = get(
        server,
        alice.key,
        "/automations",
        per_page=2,
        **{"filter_gt[last_modified_at]": "2000-01-01T00:00:00Z"},
    )
    cursor = first.headers["X-Files-Cursor-Next"]
    other = get(
        server,
        alice.key,
        "/automations",
        per_page=2,
        cursor=cursor,
        **{"filter_gt[last_modified_at]": "2001-01-01T00:00:00Z"},
    )
    assert (other.status_code, other.json()["type"]) == (400, "bad-request/invalid-cursor")


BAD = [
    ({"filter_gt[last_modified_at]": "yesterday"}, "bad-request/invalid-filter-param-value"),
    (
        {"filter_lt[last_modified_at]": "2024-01-01T00:00:00"},
        "bad-request/invalid-filter-param-value",
    ),
    ({"filter_gt[name]": "a"}, "bad-request/invalid-filter-field"),
    ({"filter_prefix[name]": "a"}, "bad-request/invalid-filter-field"),
    ({"filter_gt": "2024-01-01T00:00:00Z"}, "bad-request/invalid-filter-field"),
    ({"page": "2"}, "bad-request/request-params-invalid"),
    ({"page": "0"}, "bad-request/request-params-invalid"),
]


def test_bad_range_filters_and_pages_are_refused(
    server: Any, alice: Account, ten: list[int]
) -> None:
    for params, error_type in BAD:
        reply = get(server, alice.key, "/automations", **params)
        assert (reply.status_code, reply.json()["type"]) == (400, error_type), reply.text


def test_a_page_other_than_the_cursors_is_refused(
    server: Any, alice: Account, ten: list[int]
) -> None:
    cursor = get(server, alice.key, "/automations", per_page=3).headers["X-Files-Cursor"]
    assert (
        get(server, alice.key, "/automations", per_page=3, cursor=cursor, page=2).status_code == 200
    )
    wrong = get(server, alice.key, "/automations", per_page=3, cursor=cursor, page=3)
    assert (wrong.status_code, wrong.json()["type"]) == (400, "bad-request/request-params-invalid")
    assert "must be 2 with this cursor" in wrong.json()["error"]


def test_user_id_on_the_run_list(server: Any, seed: Seeder, alice: Account) -> None:
    bob = seed.account("bob")
    root = seed.account("root", admin=True)
    other_admin = seed.account("chief", admin=True)
    mine = seed.automation(alice)
    run = seed.run(mine, outcome=(1, 0))

    def listed(caller: Account, user_id: Any) -> httpx.Response:
        return get(server, caller.key, "/automation_runs", automation_id=mine, user_id=user_id)

    def ids(reply: httpx.Response) -> list[int]:
        assert reply.status_code == 200, reply.text
        return [r["id"] for r in reply.json()]

    # A non-admin: their own id (or 0, the caller) only; anyone else's is a 404.
    assert ids(listed(alice, alice.user.id)) == [run.id]
    assert ids(listed(alice, 0)) == [run.id]
    for caller, user_id in ((alice, bob.user.id), (bob, alice.user.id), (bob, bob.user.id)):
        reply = listed(caller, user_id)
        assert (reply.status_code, reply.json()["type"]) == (404, "not-found"), (caller, user_id)
    # An admin lists as another user: what that user may see.
    assert ids(listed(root, alice.user.id)) == [run.id]
    assert ids(listed(root, other_admin.user.id)) == [run.id]
    as_bob = listed(root, bob.user.id)
    assert (as_bob.status_code, as_bob.json()["type"]) == (404, "not-found")
    unknown = listed(root, 9_999_999)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "User 9999999 not found.")
    bad = listed(alice, "x")
    assert (bad.status_code, bad.json()["type"]) == (400, "bad-request/request-params-invalid")


def test_the_id_the_sdks_send_again_must_be_the_paths(
    server: Any, seed: Seeder, alice: Account
) -> None:
    with seed.db.write() as conn:
        automation = automations_store.create_automation(
            conn, alice.user.id, T0, destinations=("made/",)
        )
    run = seed.run(automation, outcome=(1, 0))
    headers = {"X-FilesAPI-Key": alice.key}
    base = f"{server.url}{API}"
    with httpx.Client(headers=headers) as client:
        assert client.get(f"{base}/automations/{automation}?id={automation}").status_code == 200
        assert client.get(f"{base}/automation_runs/{run.id}?id={run.id}").status_code == 200
        renamed = client.patch(
            f"{base}/automations/{automation}", json={"id": automation, "name": "x"}
        )
        assert (renamed.status_code, renamed.json().get("name")) == (200, "x"), renamed.text
        refused = [
            client.get(f"{base}/automations/{automation}?id={automation + 1}"),
            client.get(f"{base}/automation_runs/{run.id}?id=abc"),
            client.patch(f"{base}/automations/{automation}", json={"id": 999, "name": "y"}),
            client.request("DELETE", f"{base}/automations/{automation}", json={"id": 999}),
            client.request("DELETE", f"{base}/automations/{automation}", json={"force": True}),
        ]
        for reply in refused:
            assert (reply.status_code, reply.json()["type"]) == (
                400,
                "bad-request/request-params-invalid",
            ), reply.text
        assert client.get(f"{base}/automations/{automation}").json()["name"] == "x"
        deleted = client.request(
            "DELETE", f"{base}/automations/{automation}", json={"id": automation}
        )
        assert deleted.status_code == 204
        assert client.get(f"{base}/automations/{automation}").status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/automation_runs", {"automation_id": "AUTOMATION", "colour": "red"}),
        ("/automation_runs", {"automation_id": "AUTOMATION", "search[name]": "x"}),
        ("/automations", {"colour": "red"}),
        ("/automations", {"search[name]": "x"}),
        ("/automation_logs", {"colour": "red"}),
        ("/automation_logs", {"sort[created_at]": "asc"}),
    ],
)
def test_a_parameter_a_list_does_not_read_is_refused(
    server: Any, seed: Seeder, alice: Account, path: str, params: dict[str, str]
) -> None:
    """Accept or refuse: an unknown parameter is a 400 naming it, never silently dropped."""
    automation = seed.automation(alice)
    params = {k: str(automation) if v == "AUTOMATION" else v for k, v in params.items()}
    reply = get(server, alice.key, path, **params)
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["type"] == "bad-request/request-params-invalid"
    unknown = next(k for k in params if k != "automation_id").partition("[")
    assert body["error"].startswith(
        f"Unknown parameter: {unknown[0]}{'[...]' if unknown[1] else ''}."
    )
    # The same list without it answers.
    known = {k: v for k, v in params.items() if k == "automation_id"}
    assert get(server, alice.key, path, **known).status_code == 200
