"""Grant, list and revoke from `conveyor.sdk` and from `conveyor permissions ...`, against
the live API over real HTTP."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from conveyor import sdk
from conveyor.cli.main import app
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def default_sdk(server: ServerThread) -> Iterator[None]:
    saved = (sdk.base_url, sdk.get_api_key())
    sdk.base_url = server.url
    yield
    sdk.base_url, key = saved
    sdk.set_api_key(key)
    sdk.close()


def test_conveyor_sdk_grants_lists_and_revokes(
    server: ServerThread, seed: Seeder, default_sdk: None
) -> None:
    admin = seed.account("root", admin=True)
    alice = seed.account("alice", root=None)
    sdk.set_api_key(admin.key)
    granted = sdk.permission.create(
        {"path": "out/alice", "username": "alice", "permission": "writeonly", "recursive": False}
    )
    assert granted == sdk.Permission(
        granted.id, "out/alice", alice.user.id, "alice", None, None, "writeonly", False
    )
    # `path`: permissions on that path or a folder above it (recursive or not).
    assert list(sdk.permission.list({"path": "out/alice/x"}).auto_paging_iter()) == [granted]
    assert list(sdk.permission.list({"path": "out"})) == []
    with sdk.Client(server.url, alice.key) as as_alice:
        assert list(as_alice.permission.list()) == [granted]
        with pytest.raises(sdk.SiteAdminRequiredError):
            as_alice.permission.delete(granted.id)
        with pytest.raises(sdk.InsufficientPermissionForParamsError):
            as_alice.permission.list({"user_id": admin.user.id})
    with pytest.raises(sdk.RequestParamsInvalidError, match="Conveyor has no groups"):
        sdk.permission.create({"path": "x", "group_name": "ops", "permission": "full"})
    with pytest.raises(sdk.UserNotFoundError):
        sdk.permission.create({"path": "x", "username": "nobody", "permission": "full"})
    sdk.permission.delete(granted.id)
    assert list(sdk.permission.list()) == []
    with pytest.raises(sdk.NotFoundError):
        sdk.permission.destroy(granted.id)


def test_the_cli_grants_lists_and_revokes(server: ServerThread, seed: Seeder) -> None:
    admin = seed.account("root", admin=True)
    bob = seed.account("bob", root=None)
    runner = CliRunner()
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": admin.key}

    def cli(*args: str, key: str = admin.key) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), env={**env, "CONVEYOR_API_KEY": key})
        return result.exit_code, result.stdout, result.stderr

    grant = ("permissions", "grant")
    code, out, err = cli(
        *grant, "shared", "--user", "bob", "--permission", "readonly", "--format=json"
    )
    assert (code, err) == (0, "")
    granted = json.loads(out)
    assert {k: granted[k] for k in ("path", "username", "permission", "recursive")} == {
        "path": "shared",
        "username": "bob",
        "permission": "readonly",
        "recursive": True,
    }
    code, out, _ = cli(
        *grant,
        "",
        "--user-id",
        str(bob.user.id),
        "--permission=list",
        "--no-recursive",
        "--format=csv",
    )
    assert code == 0
    (root_grant,) = csv.DictReader(io.StringIO(out))
    assert (root_grant["path"], root_grant["recursive"]) == ("", "false")

    code, out, _ = cli("permissions", "list", "--format", "json")
    assert code == 0
    assert [record["id"] for record in json.loads(out)] == [
        granted["id"],
        int(root_grant["id"]),
    ]
    code, out, _ = cli("permissions", "list", "--sort-by", "path:asc")  # the table
    assert code == 0
    assert out.splitlines()[0].split() == [
        "id",
        "path",
        "user_id",
        "username",
        "permission",
        "recursive",
    ]
    assert "shared" in out.splitlines()[-1]

    code, _, err = cli("permissions", "grant", "x", "--user", "bob", "--permission", "admin")
    assert code != 0
    assert err.startswith("conveyor: bad-request/request-params-invalid: permission 'admin'")
    code, _, err = cli("permissions", "revoke", str(granted["id"]), key=bob.key)
    assert code != 0
    assert err.startswith("conveyor: not-authorized/site-admin-required:")
    code, out, err = cli("permissions", "list", "--format", "json", key=bob.key)
    assert [record["username"] for record in json.loads(out)] == ["bob", "bob"]

    assert cli("permissions", "revoke", str(granted["id"])) == (0, "", "")
    code, _, err = cli("permissions", "revoke", str(granted["id"]))
    assert code != 0
    assert err.startswith("conveyor: not-found/not-found:")
