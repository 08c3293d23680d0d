"""The Permissions API over real HTTP, on both databases: admins grant and revoke,
everyone lists (a non-admin only their own), and every bad request is a Files.com
error, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

API = "/api/rest/v1"


class Api:
    def __init__(self, server: ServerThread, seed: Seeder) -> None:
        self.url = server.url + API
        self.admin = seed.account("root", admin=True)
        self.alice = seed.account("alice", root=None)
        self.bob = seed.account("bob", root=None)
        self._clients: list[httpx.Client] = []

    def as_(self, account: Account | None) -> httpx.Client:
        headers = {} if account is None else {"X-FilesAPI-Key": account.key}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def api(server: ServerThread, seed: Seeder) -> Iterator[Api]:
    world = Api(server, seed)
    yield world
    world.close()


def error_of(reply: httpx.Response) -> tuple[int, str]:
    body = reply.json()
    assert set(body) == {"error", "http-code", "instance", "title", "type"}
    assert body["http-code"] == reply.status_code
    return reply.status_code, body["type"]


def test_grant_list_and_revoke(api: Api) -> None:
    admin = api.as_(api.admin)
    reply = admin.post(
        "/permissions", json={"username": "alice", "path": "out/alice", "permission": "full"}
    )
    assert reply.status_code == 201
    granted = reply.json()
    assert granted == {
        "id": granted["id"],
        "path": "out/alice",
        "user_id": api.alice.user.id,
        "username": "alice",
        "group_id": None,
        "group_name": None,
        "permission": "full",
        "recursive": True,
    }
    other = admin.post(
        "/permissions",
        json={"user_id": api.bob.user.id, "path": "", "permission": "list", "recursive": False},
    ).json()
    assert (other["path"], other["permission"], other["recursive"]) == ("", "list", False)

    assert [p["id"] for p in admin.get("/permissions").json()] == [granted["id"], other["id"]]
    assert admin.get("/permissions", params={"user_id": api.bob.user.id}).json() == [other]
    assert admin.get("/permissions", params={"filter[path]": "out/alice"}).json() == [granted]
    assert admin.get("/permissions", params={"filter_prefix[path]": "out/"}).json() == [granted]
    # `path`: the permissions that apply there, from the path up to the root.
    applies = admin.get("/permissions", params={"path": "out/alice/2024"}).json()
    assert [p["id"] for p in applies] == [granted["id"], other["id"]]
    assert admin.get("/permissions", params={"path": "out/al"}).json() == [other]
    by_path = admin.get("/permissions", params={"sort_by[path]": "desc", "per_page": 1})
    assert by_path.json() == [granted]
    second = admin.get(
        "/permissions",
        params={
            "sort_by[path]": "desc",
            "per_page": 1,
            "cursor": by_path.headers["X-Files-Cursor-Next"],
        },
    )
    assert second.json() == [other]
    assert "X-Files-Cursor-Next" not in second.headers

    # A non-admin sees their own permissions only.
    assert api.as_(api.alice).get("/permissions").json() == [granted]
    assert api.as_(api.bob).get("/permissions").json() == [other]

    assert admin.delete(f"/permissions/{granted['id']}").status_code == 204
    assert api.as_(api.alice).get("/permissions").json() == []
    assert error_of(admin.delete(f"/permissions/{granted['id']}")) == (404, "not-found/not-found")


def test_only_admins_grant_and_revoke_and_non_admins_list_only_their_own(api: Api) -> None:
    admin, alice = api.as_(api.admin), api.as_(api.alice)
    granted = admin.post(
        "/permissions", json={"user_id": api.bob.user.id, "path": "x", "permission": "full"}
    ).json()
    self_grant = alice.post(
        "/permissions", json={"user_id": api.alice.user.id, "path": "", "permission": "full"}
    )
    assert error_of(self_grant) == (403, "not-authorized/site-admin-required")
    assert error_of(alice.delete(f"/permissions/{granted['id']}")) == (
        403,
        "not-authorized/site-admin-required",
    )
    assert error_of(alice.delete("/permissions/999999")) == (
        403,
        "not-authorized/site-admin-required",
    )
    assert error_of(alice.get("/permissions", params={"user_id": api.bob.user.id})) == (
        403,
        "not-authorized/insufficient-permission-for-params",
    )
    assert alice.get("/permissions", params={"user_id": api.alice.user.id}).json() == []
    assert admin.get("/permissions").json() == [granted]  # nothing changed


INVALID = (400, "bad-request/request-params-invalid")
BAD_PATH = (400, "bad-request/invalid-path")
NO_USER = (404, "not-found/user-not-found")


def alice(**changes: Any) -> dict[str, Any]:
    return {"username": "alice", "path": "a", "permission": "full", **changes}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"user_id": 0, "path": "a", "permission": "full"}, NO_USER),
        (alice(username="nobody"), NO_USER),
        (alice(permission="admin"), INVALID),
        (alice(permission="nope"), INVALID),
        (alice(permission=7), INVALID),
        (alice(path="/a"), BAD_PATH),
        (alice(path="a/../.."), BAD_PATH),
        (alice(path="a" * 5001), BAD_PATH),
        ({"group_id": 1, "path": "a", "permission": "full"}, INVALID),
        ({"username": "alice", "permission": "full"}, (400, "bad-request/request-params-required")),
        (alice(x=1), INVALID),
        (alice(user_id=1), INVALID),  # user 1 is not alice
    ],
)
def test_bad_grants_are_refused(api: Api, body: dict[str, Any], expected: tuple[int, str]) -> None:
    reply = api.as_(api.admin).post("/permissions", json=body)
    assert error_of(reply) == expected
    assert api.as_(api.admin).get("/permissions").json() == []


def test_bad_requests_never_give_a_500(api: Api) -> None:
    admin = api.as_(api.admin)
    body = {"username": "alice", "path": "a", "permission": "full"}
    assert admin.post("/permissions", json=body).status_code == 201
    assert error_of(admin.post("/permissions", json=body)) == (
        400,
        "bad-request/request-params-invalid",
    )  # the same grant twice
    cases = [
        admin.post("/permissions", content=b"{not json"),
        admin.post("/permissions", content=b"[1]"),
        admin.delete("/permissions/abc"),
        admin.delete("/permissions/99999999999999999999"),
        admin.delete("/permissions/1?id=2"),
        admin.delete("/permissions/1?force=1"),
        admin.get("/permissions", params={"per_page": 0}),
        admin.get("/permissions", params={"sort_by[permission]": "asc"}),
        admin.get("/permissions", params={"filter[group_id]": "1"}),
        admin.get("/permissions", params={"group_id": "1"}),
        admin.get("/permissions", params={"filter[permission]": "full"}),
        admin.get("/permissions", params={"filter_prefix[user_id]": "1"}),
        admin.get("/permissions", params={"path": "../x"}),
        admin.get("/permissions", params={"user_id": "x"}),
        admin.get("/permissions", params={"include_groups": "maybe"}),
        admin.get("/permissions", params={"cursor": "garbage"}),
        admin.get("/permissions", params={"color": "blue"}),
    ]
    for reply in cases:
        status, error_type = error_of(reply)
        assert status == 400, (reply.request.url, reply.text)
        assert error_type.startswith("bad-request/"), reply.text
    # include_groups has its meaning without groups: the user's own permissions.
    assert len(admin.get("/permissions", params={"include_groups": "true"}).json()) == 1
    assert error_of(api.as_(None).get("/permissions")) == (
        401,
        "not-authenticated/authentication-required",
    )
