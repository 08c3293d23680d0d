"""Module-level run operations on the default client, as in `files_sdk.automation_run`.

They use `conveyor.sdk.base_url` and the key from `conveyor.sdk.set_api_key()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from conveyor.sdk.page import ListObj
from conveyor.sdk.records import AutomationRun
from conveyor.sdk.resources import AutomationRunResource
from conveyor.sdk.run_log import DEFAULT_FOLLOW_INTERVAL, RunLogFollower

__all__ = [
    "all",
    "all_runs",
    "bulk_cancel",
    "bulk_rerun",
    "cancel",
    "find",
    "follow",
    "get",
    "list",
    "log",
    "rerun",
]


def _resource() -> AutomationRunResource:
    # Imported here: the package imports this module while it is initialising.
    from conveyor.sdk import default_client

    return default_client().automation_run


def list(params: Mapping[str, Any] | None = None) -> ListObj[AutomationRun]:
    """List runs of one automation; see `AutomationRunResource.list` for parameters."""
    return _resource().list(params)


def all(params: Mapping[str, Any] | None = None) -> ListObj[AutomationRun]:
    """The same as list()."""
    return list(params)


def all_runs(params: Mapping[str, Any] | None = None) -> ListObj[AutomationRun]:
    """The runs the key may see across automations; see `AutomationRunResource.all_runs`."""
    return _resource().all_runs(params)


def bulk_cancel(
    params: Mapping[str, Any] | None = None,
    *,
    dry_run: bool = False,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Cancel every unfinished run a filter matches; see `AutomationRunResource.bulk_cancel`."""
    return _resource().bulk_cancel(params, dry_run=dry_run, idempotency_key=idempotency_key)


def bulk_rerun(
    params: Mapping[str, Any] | None = None,
    *,
    failed_only: bool = False,
    dry_run: bool = False,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Rerun every finished run a filter matches; see `AutomationRunResource.bulk_rerun`."""
    return _resource().bulk_rerun(
        params, failed_only=failed_only, dry_run=dry_run, idempotency_key=idempotency_key
    )


def find(id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
    """Show one run by id."""
    return _resource().find(id, params)


def get(id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
    """The same as find()."""
    return find(id, params)


def cancel(id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
    """Cancel a run; see `AutomationRunResource.cancel`."""
    return _resource().cancel(id, params)


def rerun(
    id: int, params: Mapping[str, Any] | None = None, *, failed_only: bool | None = None
) -> AutomationRun:
    """Rerun a finished run; see `AutomationRunResource.rerun`."""
    return _resource().rerun(id, params, failed_only=failed_only)


def log(id: int) -> str:
    """The run's status messages as plain text; see `AutomationRunResource.log`."""
    return _resource().log(id)


def follow(
    id: int,
    interval: float = DEFAULT_FOLLOW_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> RunLogFollower:
    """The run's log lines as they are written, until it finishes; see
    `AutomationRunResource.follow`."""
    return _resource().follow(id, interval, sleep)
