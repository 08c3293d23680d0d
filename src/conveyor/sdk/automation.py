"""Module-level automation operations on the default client, as in `files_sdk.automation`.

They use `conveyor.sdk.base_url` and the key from `conveyor.sdk.set_api_key()`.
Unlike the official SDK, `manual_run` returns the run it created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.sdk.page import ListObj
from conveyor.sdk.records import Automation, AutomationRun
from conveyor.sdk.resources import AutomationResource

__all__ = ["all", "create", "delete", "destroy", "find", "get", "list", "manual_run", "update"]


def _resource() -> AutomationResource:
    # Imported here: the package imports this module while it is initialising.
    from conveyor.sdk import default_client

    return default_client().automation


def list(params: Mapping[str, Any] | None = None) -> ListObj[Automation]:
    """List automations; see `AutomationResource.list` for parameters."""
    return _resource().list(params)


def all(params: Mapping[str, Any] | None = None) -> ListObj[Automation]:
    """The same as list()."""
    return list(params)


def find(id: int, params: Mapping[str, Any] | None = None) -> Automation:
    """Show one automation by id."""
    return _resource().find(id, params)


def get(id: int, params: Mapping[str, Any] | None = None) -> Automation:
    """The same as find()."""
    return find(id, params)


def create(params: Mapping[str, Any] | None = None) -> Automation:
    """Create an automation from Files.com fields ({"automation": "create_folder", ...})."""
    return _resource().create(params)


def update(id: int, params: Mapping[str, Any] | None = None) -> Automation:
    """Change the given fields of an automation."""
    return _resource().update(id, params)


def delete(id: int, params: Mapping[str, Any] | None = None) -> None:
    """Delete an automation."""
    _resource().delete(id, params)


def destroy(id: int, params: Mapping[str, Any] | None = None) -> None:
    """The same as delete()."""
    delete(id, params)


def manual_run(id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
    """Run the automation now; returns the created run."""
    return _resource().manual_run(id, params)
