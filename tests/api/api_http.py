"""Raw HTTP against the live server and checks of what a client sees: status, body, headers.

Requests go through `http.client`, which sends the request target byte for byte
as written (percent escapes, repeated keys, brackets), unlike clients that
normalise URLs.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from conveyor.store.database import Database
from conveyor.store.schema import api_keys, automation_runs, automations, run_messages, users

API = "/api/rest/v1"
ERROR_FIELDS = {"error", "http-code", "instance", "title", "type"}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def next_cursor(self) -> str | None:
        return self.headers.get("x-files-cursor-next")

    @property
    def prev_cursor(self) -> str | None:
        return self.headers.get("x-files-cursor-prev")


def fetch(base_url: str, target: str, key: str | None = None, method: str = "GET") -> Reply:
    """Send one request for `target` (path and query, already encoded) to the server."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        if key is not None:
            conn.putheader("X-FilesAPI-Key", key)
        conn.endheaders()
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, headers, response.read())
    finally:
        conn.close()


def fetch_raw(base_url: str, request: bytes) -> Reply:
    """Send bytes that no HTTP client library would send (raw non-ASCII in the URL)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, headers, response.read())


def title_of(error_type: str) -> str:
    """Files.com's title is the last segment of the type in title case."""
    return " ".join(word.capitalize() for word in error_type.split("/")[-1].split("-"))


def assert_error(
    reply: Reply, status: int, error_type: str, title: str | None = None
) -> dict[str, Any]:
    """The reply is exactly a Files.com error of this status and type; returns the body."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert set(body) == ERROR_FIELDS, body
    assert body["http-code"] == status
    assert body["type"] == error_type, body
    assert body["title"] == (title or title_of(error_type))
    assert isinstance(body["error"], str) and body["error"], body
    assert "Traceback" not in body["error"] and 'File "' not in body["error"]
    assert body["instance"] == reply.headers["x-request-id"]
    assert len(body["instance"]) == 16
    return dict(body)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a read request could change, to compare before and after."""
    tables = (users, api_keys, automations, automation_runs, run_messages)
    with db.read() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(select(table).order_by(table.c.id))]
            for table in tables
        }


def rfc3339(us: int | None) -> str | None:
    """Expected wire form of a stored time: UTC, whole seconds, `Z`."""
    if us is None:
        return None
    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
