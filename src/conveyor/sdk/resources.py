"""Resource operations bound to one client: `client.automation_run.list(...)`, `.find(id)`,
`client.automation.create({...})`, `.manual_run(id)`.

Parameters are sent as given, in the Files.com wire form; the server is the
one place that validates them, so its errors (with their exact types) reach
the caller unchanged.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from conveyor.sdk.error import APIConnectionError
from conveyor.sdk.http import API_PATH, CONVEYOR_API_PATH, HttpSession, path_id
from conveyor.sdk.page import ListObj
from conveyor.sdk.records import Automation, AutomationRun, Permission
from conveyor.sdk.run_log import DEFAULT_FOLLOW_INTERVAL, RunLogFollower, read_log

__all__ = ["AutomationResource", "AutomationRunResource", "PermissionResource"]

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
    session: HttpSession,
    path: str,
    params: Mapping[str, Any] | None,
    build: Callable[[Any], R],
    api: str = API_PATH,
) -> ListObj[R]:
    """The first page of a cursor-paginated list; later pages reuse the same parameters."""
    base = {key: value for key, value in (params or {}).items() if key != "cursor"}

    def fetch(cursor: str | None) -> httpx.Response:
        query = base if cursor is None else {**base, "cursor": cursor}
        return session.request("GET", path, query, api=api)

    def decode(response: httpx.Response) -> list[R]:
        return decode_many(session, response, build)

    first = (params or {}).get("cursor")
    return ListObj(fetch, decode, first if first else None)


def _lists_joined(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """`filter` values given as lists sent as the comma-separated lists the all-runs
    view reads (`filter[status]=failure,partial_failure`)."""
    found = dict(params or {})
    filters = found.get("filter")
    if isinstance(filters, Mapping):
        found["filter"] = {
            name: ",".join(str(v) for v in value) if isinstance(value, list | tuple) else value
            for name, value in filters.items()
        }
    return found


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

    def all_runs(self, params: Mapping[str, Any] | None = None) -> ListObj[AutomationRun]:
        """The runs the key may see across automations (Conveyor's
        `GET /api/conveyor/v1/automation_runs`), newest first unless sorted.

        Parameters: `per_page`, `cursor`, `sort_by` ({"created_at": "asc"}),
        `filter` ({"status": ["failure", "partial_failure"], "trigger": "webhook",
        "automation_id": 12}; a list means any of its values), and `filter_gt`,
        `filter_gteq`, `filter_lt`, `filter_lteq` ({"created_at":
        "2026-01-01T00:00:00Z"}).
        """
        return list_pages(
            self._session,
            "/automation_runs",
            _lists_joined(params),
            AutomationRun.from_json,
            api=CONVEYOR_API_PATH,
        )

    def bulk_cancel(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Cancel every unfinished run the filter matches (`filter` and the range filters
        of `all_runs`). With `dry_run`, change nothing and answer the count and the first
        ids. Otherwise the request carries `idempotency_key` (a new UUID if None): the
        same key again answers the same without acting twice. Answers the server's
        summary: action, dry_run, count, run_ids, skipped."""
        return self._bulk("bulk_cancel", params, {}, dry_run, idempotency_key)

    def bulk_rerun(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        failed_only: bool = False,
        dry_run: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Rerun every finished run the filter matches, as `bulk_cancel` cancels;
        `failed_only`: each rerun plans only its original's failed operations. The
        summary also has rerun_ids, the new runs in the order of run_ids."""
        extra = {"failed_only": "true"} if failed_only else {}
        return self._bulk("bulk_rerun", params, extra, dry_run, idempotency_key)

    def _bulk(
        self,
        action: str,
        params: Mapping[str, Any] | None,
        extra: dict[str, str],
        dry_run: bool,
        key: str | None,
    ) -> dict[str, Any]:
        query = {**_lists_joined(params), **extra}
        headers = {}
        if dry_run:
            query["dry_run"] = "true"
        else:
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        response = self._session.request(
            "POST", f"/automation_runs/{action}", query, api=CONVEYOR_API_PATH, headers=headers
        )
        answer: dict[str, Any] = self._session.decode(response)
        return answer

    def find(self, id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
        """Show one run by id."""
        response = self._session.request("GET", f"/automation_runs/{path_id(id)}", params)
        return decode_one(self._session, response, AutomationRun.from_json)

    def get(self, id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
        """The same as find()."""
        return self.find(id, params)

    def cancel(self, id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
        """Cancel a run: a queued one is `canceled` at once; a running one records the
        request (`cancel_requested_at`) and stops at its next operation boundary.
        A finished run is refused (AlreadyCompletedError, naming its status). Never
        retried."""
        response = self._session.request(
            "POST",
            f"/automation_runs/{path_id(id)}/cancel",
            json=None if params is None else dict(params),
        )
        return decode_one(self._session, response, AutomationRun.from_json)

    def rerun(
        self,
        id: int,
        params: Mapping[str, Any] | None = None,
        *,
        failed_only: bool | None = None,
    ) -> AutomationRun:
        """Rerun a finished run: a new run of the same automation with the same runtime and
        trigger inputs, linked by `rerun_of_run_id`; returns it (queued_for_planning).

        `failed_only=True` plans only the operations that failed in the original
        (the same as `{"node_id": "failed_operations"}`; the nodes are planning,
        execution, failed_operations, docs/api.md). Never retried."""
        body = dict(params or {})
        if failed_only is not None:
            body["failed_only"] = failed_only
        response = self._session.request(
            "POST", f"/automation_runs/{path_id(id)}/rerun", json=body or None
        )
        return decode_one(self._session, response, AutomationRun.from_json)

    def log(self, id: int) -> str:
        """The run's status messages as plain text, one line per message, read through its
        signed `status_messages_url` (found with this client's key, read without it)."""
        return read_log(self._session, self.find(id))

    def follow(
        self,
        id: int,
        interval: float = DEFAULT_FOLLOW_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunLogFollower:
        """Iterate the run's log lines as they are written, each once, until the run is
        finished; `interval` (0.05 to 60 s) is the wait between polls."""
        return RunLogFollower(
            lambda: self.find(id), lambda run: read_log(self._session, run), interval, sleep
        )


class AutomationResource:
    """Automations (Files.com's Automation resource, SPEC 2.4).

    Create and update parameters are the Files.com field names, sent as a
    JSON body: `automation` (create_folder, copy_file, move_file,
    delete_file), `name`, `description`, `path`, `source`, `destinations`,
    `trigger`, `interval`, `recurring_day`, `schedule_days_of_week`,
    `schedule_times_of_day`, `schedule_time_zone`, `trigger_actions`,
    `overwrite_files`, `disabled`, ... These requests are never retried.
    """

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def list(self, params: Mapping[str, Any] | None = None) -> ListObj[Automation]:
        """List the automations the key may see, by id unless sorted.

        Parameters: `per_page` (1..10,000, server default 1,000), `cursor`,
        `sort_by` ({"name": "asc"}; fields name, automation,
        last_modified_at, disabled), `filter` ({"disabled": True}; fields
        disabled, automation).
        """
        return list_pages(self._session, "/automations", params, Automation.from_json)

    def all(self, params: Mapping[str, Any] | None = None) -> ListObj[Automation]:
        """The same as list()."""
        return self.list(params)

    def find(self, id: int, params: Mapping[str, Any] | None = None) -> Automation:
        """Show one automation by id."""
        response = self._session.request("GET", f"/automations/{path_id(id)}", params)
        return decode_one(self._session, response, Automation.from_json)

    def get(self, id: int, params: Mapping[str, Any] | None = None) -> Automation:
        """The same as find()."""
        return self.find(id, params)

    def create(self, params: Mapping[str, Any] | None = None) -> Automation:
        """Create an automation; the server validates every field."""
        response = self._session.request("POST", "/automations", json=dict(params or {}))
        return decode_one(self._session, response, Automation.from_json)

    def update(self, id: int, params: Mapping[str, Any] | None = None) -> Automation:
        """Change the given fields of an automation; the others keep their values."""
        response = self._session.request(
            "PATCH", f"/automations/{path_id(id)}", json=dict(params or {})
        )
        return decode_one(self._session, response, Automation.from_json)

    def delete(self, id: int, params: Mapping[str, Any] | None = None) -> None:
        """Delete an automation; its runs stay readable."""
        self._session.request("DELETE", f"/automations/{path_id(id)}", params)

    def destroy(self, id: int, params: Mapping[str, Any] | None = None) -> None:
        """The same as delete(), the official SDK's other name."""
        self.delete(id, params)

    def manual_run(self, id: int, params: Mapping[str, Any] | None = None) -> AutomationRun:
        """Run the automation now; returns the created run (queued_for_planning)."""
        response = self._session.request(
            "POST",
            f"/automations/{path_id(id)}/manual_run",
            json=None if params is None else dict(params),
        )
        return decode_one(self._session, response, AutomationRun.from_json)


class PermissionResource:
    """Folder permissions (Files.com's Permission resource).

    Admins grant and revoke; any key may list, a non-admin's only its own.
    Create and delete are never retried.
    """

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def list(self, params: Mapping[str, Any] | None = None) -> ListObj[Permission]:
        """List permissions, by id unless sorted.

        Parameters: `per_page`, `cursor`, `sort_by` ({"path": "asc"}; fields
        path, user_id), `filter` ({"path": "out"}; fields path, user_id),
        `filter_prefix` ({"path": "out/"}), `path` (the permissions that
        apply at that path: on it or on a folder above it), `user_id`.
        """
        return list_pages(self._session, "/permissions", params, Permission.from_json)

    def all(self, params: Mapping[str, Any] | None = None) -> ListObj[Permission]:
        """The same as list()."""
        return self.list(params)

    def create(self, params: Mapping[str, Any] | None = None) -> Permission:
        """Grant a permission: `path` ("" for the root), `permission` (full, readonly,
        writeonly, list), `user_id` or `username`, `recursive` (default True)."""
        response = self._session.request("POST", "/permissions", json=dict(params or {}))
        return decode_one(self._session, response, Permission.from_json)

    def delete(self, id: int, params: Mapping[str, Any] | None = None) -> None:
        """Revoke a permission; it stops the owner's next runs (and running ones)."""
        self._session.request("DELETE", f"/permissions/{path_id(id)}", params)

    def destroy(self, id: int, params: Mapping[str, Any] | None = None) -> None:
        """The same as delete(), the official SDK's other name."""
        self.delete(id, params)
