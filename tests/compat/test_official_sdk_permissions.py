"""The official Files.com SDK's `files_sdk.permission` module against Conveyor, unchanged:
create, list (with its paging iterator), delete, and its exception classes."""

from __future__ import annotations

from types import ModuleType

import files_sdk
import pytest
from files_sdk.error import (
    InvalidPathError,
    NotFoundError,
    RequestParamsInvalidError,
    SiteAdminRequiredError,
    UserNotFoundError,
)

from conveyor.testing.seed import Seeder


def test_the_official_sdk_grants_lists_and_revokes(files: ModuleType, seed: Seeder) -> None:
    admin = seed.account("root", admin=True)
    alice = seed.account("alice", root=None)
    files_sdk.set_api_key(admin.key)
    created = files_sdk.permission.create(
        {"path": "reports", "user_id": alice.user.id, "permission": "readonly"}
    )
    assert (created.path, created.username, created.permission, created.recursive) == (
        "reports",
        "alice",
        "readonly",
        True,
    )
    listed = files_sdk.permission.list({"user_id": str(alice.user.id)})
    assert [p.id for p in listed.auto_paging_iter()] == [created.id]
    with pytest.raises(InvalidPathError):
        files_sdk.permission.create({"path": "/x", "username": "alice", "permission": "full"})
    with pytest.raises(UserNotFoundError):
        files_sdk.permission.create({"path": "x", "username": "nobody", "permission": "full"})
    with pytest.raises(RequestParamsInvalidError):
        files_sdk.permission.create({"path": "x", "group_id": 1, "permission": "full"})
    files_sdk.permission.delete(created.id)
    assert list(files_sdk.permission.list().auto_paging_iter()) == []
    with pytest.raises(NotFoundError):
        files_sdk.permission.delete(created.id)
    files_sdk.set_api_key(alice.key)
    with pytest.raises(SiteAdminRequiredError):
        files_sdk.permission.create({"path": "x", "username": "alice", "permission": "full"})
