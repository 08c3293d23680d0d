"""Conveyor's Python SDK: the seed's call forms, usable without the server installed.

    from conveyor import sdk
    sdk.base_url = "http://127.0.0.1:8080"
    sdk.set_api_key(KEY)
    for run in sdk.automation_run.list({"automation_id": 1}).auto_paging_iter():
        print(run.id, run.status)
    run = sdk.automation.manual_run(1)
    for line in sdk.automation_run.follow(run.id):
        print(line)

Module-level calls share one default `Client`, rebuilt when `base_url`, the
API key, `timeout` or `max_network_retries` change. Use `Client(...)` for
other settings or several servers at once. Needs only httpx and orjson.
"""

from __future__ import annotations

import threading

from conveyor.sdk import automation, automation_run, error, permission
from conveyor.sdk.client import Client
from conveyor.sdk.error import *  # noqa: F403  (the exceptions, listed in error.__all__)
from conveyor.sdk.http import DEFAULT_BASE_URL
from conveyor.sdk.page import ListObj
from conveyor.sdk.records import (
    AUTOMATION_FIELDS,
    AUTOMATION_RUN_FIELDS,
    PERMISSION_FIELDS,
    Automation,
    AutomationRun,
    Permission,
)
from conveyor.sdk.run_log import RunLogFollower

__all__ = [
    "AUTOMATION_FIELDS",
    "AUTOMATION_RUN_FIELDS",
    "PERMISSION_FIELDS",
    "Automation",
    "AutomationRun",
    "Client",
    "ListObj",
    "Permission",
    "RunLogFollower",
    "automation",
    "automation_run",
    "base_url",
    "close",
    "default_client",
    "error",
    "get_api_key",
    "max_network_retries",
    "permission",
    "set_api_key",
    "timeout",
]
__all__ += error.__all__

# Settings of the module-level calls; assign them directly, as with files_sdk.
base_url: str = DEFAULT_BASE_URL
timeout: float | None = 30.0
max_network_retries: int = 3
_api_key: str | None = None

_lock = threading.Lock()
_default: Client | None = None
_default_settings: tuple[str, str | None, float | None, int] | None = None


def set_api_key(key: str | None) -> None:
    """The key the module-level calls send in X-FilesAPI-Key."""
    global _api_key
    _api_key = key


def get_api_key() -> str | None:
    return _api_key


def default_client() -> Client:
    """The client behind the module-level calls, matching the current module settings."""
    global _default, _default_settings
    settings = (base_url, _api_key, timeout, max_network_retries)
    with _lock:
        if _default is None or _default_settings != settings:
            if _default is not None:
                _default.close()
            _default = Client(base_url, _api_key, timeout, max_network_retries)
            _default_settings = settings
        return _default


def close() -> None:
    """Close the default client's connections (a later call opens new ones)."""
    global _default, _default_settings
    with _lock:
        if _default is not None:
            _default.close()
        _default, _default_settings = None, None
