"""Resource operations bound to one client: `client.automation_run.list(...)`, `.find(id)`.

Parameters are sent as given, in the Files.com wire form; the server is the
one place that validates them, so its errors (with their exact types) reach
the caller unchanged.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from conveyor.sdk.error import APIConnectionError
from conveyor.sdk.http import HttpSession, path_id
from conveyor.sdk.page import ListObj
from conveyor.sdk.records import AutomationRun

__all__ = ["AutomationRunResource"]

R = TypeVar("R")


def _malformed(response: httpx.Response, exc: Exception) -> APIConnectionError:
    return APIConnectionError(
        f"The answer from {response.url} does not have the expected records "
        f"({type(exc).__name__}: {exc})"
    )


def decode_one(session: HttpSession, response: httpx.Response, build: Callable[[Any], R]) -> R:
    body = session.decode(response)
    try:
        return build(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(response, exc) from exc


def decode_many(
    session: HttpSession, response: httpx.Response, build: Callable[[Any], R]
) -> list[R]:
    # A page is up to 10,000 dicts and as many records, none of them in a
    # reference cycle; the cyclic collector would otherwise run many times
    # over them while they are built (about a fifth of the decoding time).
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        body = session.decode(response)
        if not isinstance(body, list):
            raise _malformed(response, TypeError("the body is not a JSON array"))
        return [build(item) for item in body]
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(response, exc) from exc
    finally:
        if paused:
            gc.enable()


def list_pages(
    session: HttpSession, path: str, params: Mapping[str, Any] | None, build: Callable[[Any], R]
) -> ListObj[R]:
    """The first page of a cursor-paginated list; later pages reuse the same parameters."""
    base = {key: value for key, value in (params or {}).items() if key != "cursor"}

    def fetch(cursor: str | None) -> httpx.Response:
        return session.request("GET", path, base if cursor is None else {**base, "cursor": cursor})

    def decode(response: httpx.Response) -> list[R]:
        return decode_many(session, response, build)

    first = (params or {}).get("cursor")
    return ListObj(fetch, decode, first if first else None)


class AutomationRunResource:
    """Automation runs (seed: List Automation Runs, Show Automation Run)."""

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def list(self, params: Mapping[str, Any] | None = None) -> ListObj[AutomationRun]:
        """List runs of one automation.

        Parameters: `automation_id` (required), `per_page` (1..10,000,
        server default 1,000), `cursor`, `sort_by` ({"created_at": "asc"};
        fields automation_id, created_at, status), `filter` ({"status":
        "success"}; fields status, automation_id).
        """
        return list_pages(self._session, "/automation_runs", params, AutomationRun.from_json)

    def all(self, params: Mapping[str, Any] | None = None) -> ListObj[AutomationRun]:
        """The same as list()."""
        return self.list(params)

    def find(self, id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
        """Show one run by id."""
        response = self._session.request("GET", f"/automation_runs/{path_id(id)}", params)
        return decode_one(self._session, response, AutomationRun.from_json)

    def get(self, id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
        """The same as find()."""
        return self.find(id, params)
