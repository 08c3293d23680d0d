"""Module-level permission operations on the default client, as in `files_sdk.permission`.

They use `conveyor.sdk.base_url` and the key from `conveyor.sdk.set_api_key()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.sdk.page import ListObj
from conveyor.sdk.records import Permission
from conveyor.sdk.resources import PermissionResource

__all__ = ["all", "create", "delete", "destroy", "list"]


def _resource() -> PermissionResource:
    # Imported here: the package imports this module while it is initialising.
    from conveyor.sdk import default_client

    return default_client().permission


def list(params: Mapping[str, Any] | None = None) -> ListObj[Permission]:
    """List permissions; see `PermissionResource.list` for parameters."""
    return _resource().list(params)


def all(params: Mapping[str, Any] | None = None) -> ListObj[Permission]:
    """The same as list()."""
    return list(params)


def create(params: Mapping[str, Any] | None = None) -> Permission:
    """Grant a permission ({"path": "out/alice", "username": "alice", "permission": "full"})."""
    return _resource().create(params)


def delete(id: int, params: Mapping[str, Any] | None = None) -> None:
    """Revoke a permission."""
    _resource().delete(id, params)


def destroy(id: int, params: Mapping[str, Any] | None = None) -> None:
    """The same as delete()."""
    delete(id, params)
