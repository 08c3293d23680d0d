"""The two servers the benchmarks compare, each run as `python bench/servers.py KIND`.

`conveyor`: Conveyor's real app (create_app on the settings from the
environment), served as `conveyor serve` serves it. `baseline`: a bare ASGI app
that runs the same list SQL through the raw driver and encodes the same JSON
with orjson, the least any server of this API must do. Both use one set of
uvicorn settings.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import orjson
import psycopg
import uvicorn

from conveyor.clock import to_rfc3339  # the same text, at the same cost
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.store.runs import RunRow

# Where each run-control field is in the rows Conveyor's own SQL returns.
_AT = {name: index for index, name in enumerate(RunRow._fields)}

# The baseline does not sign status-message URLs: every run gets this one.
FIXED_STATUS_MESSAGES_URL = (
    "http://127.0.0.1/api/rest/v1/automation_runs/0/status_messages"
    "?expires=1700000000&signature=00000000000000000000000000000000"
)
# As many threads as Conveyor's database pool has connections (Database: 8).
BASELINE_THREADS = 8


def serve(app: Any, settings: Settings) -> None:
    """How `conveyor serve` (cli/server.py) starts serving, for both servers."""
    from conveyor.api.errors import FilesComHttpProtocol

    if not os.environ.get("BENCH_NO_GC_FREEZE"):
        gc.collect()
        gc.freeze()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        http=FilesComHttpProtocol,
    )


def conveyor_app(settings: Settings) -> Any:
    """The app as `conveyor serve` builds it, without its background services (the
    engine, the scheduler, retention: retention would prune the seeded 2023 runs)."""
    from conveyor.app import create_app
    from conveyor.observability.process import setup as setup_process

    setup_process(settings)
    return create_app(settings, Database(settings.database_url))


class Baseline:
    """GET /?automation_id=&per_page=[&after=CREATED_AT,ID]: newest first, keyset."""

    def __init__(self, url: str) -> None:
        from common import list_sql  # Conveyor's own SQL, captured once at start

        self.sqlite = url.startswith("sqlite")
        self.url = url
        self.first = list_sql(url, keyset=False)
        self.keyset = list_sql(url, keyset=True)
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(BASELINE_THREADS)

    def connection(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.sqlite:
                conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            else:
                dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
                conn = psycopg.connect(dsn, autocommit=True)
            self.local.conn = conn
        return conn

    def page(self, params: dict[str, str]) -> tuple[bytes, bytes | None]:
        automation_id = int(params["automation_id"])
        per_page = int(params.get("per_page", "1000"))
        after = params.get("after")
        anchor = None
        if after:
            created_at, run_id = (int(part) for part in after.split(","))
            anchor = (created_at, run_id)
        query = self.first if anchor is None else self.keyset
        parameters = query.params(automation_id, per_page, anchor)
        records = self.connection().execute(query.sql, parameters).fetchall()
        # Conveyor's SQL reads a page after a cursor from the anchor's own row on.
        start = 1 if anchor and records and records[0][0] == anchor[1] else 0
        more = len(records) - start > per_page
        records = records[start : start + per_page]
        body = self.encode(records)
        cursor = f"{records[-1][3]},{records[-1][0]}".encode() if more else None
        return body, cursor

    @staticmethod
    def encode(records: list[Any]) -> bytes:
        return orjson.dumps(
            [
                {
                    "id": r[0],
                    "automation_id": r[1],
                    "completed_at": to_rfc3339(r[2]),
                    "created_at": to_rfc3339(r[3]),
                    "runtime": to_rfc3339(r[4]),
                    "status": r[5],
                    "run_stage": r[6],
                    "successful_operations": r[7],
                    "failed_operations": r[8],
                    "status_messages_url": FIXED_STATUS_MESSAGES_URL,
                    # Run control, at their places in store.runs.RunRow.
                    "retry_at": to_rfc3339(r[_AT["retry_at"]]),
                    "retried_at": to_rfc3339(r[_AT["retried_at"]]),
                    "retried_in_run_id": r[_AT["retried_in_run_id"]],
                    "retry_of_run_id": r[_AT["retry_of_run_id"]],
                    "cancel_requested_at": to_rfc3339(r[_AT["cancel_requested_at"]]),
                    "rerun_of_run_id": r[_AT["rerun_of_run_id"]],
                    "rerun_from_node_id": r[_AT["rerun_from_node_id"]],
                }
                for r in records
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        params = dict(parse_qsl(scope["query_string"].decode()))
        loop = asyncio.get_running_loop()
        body, cursor = await loop.run_in_executor(self.pool, self.page, params)
        headers = [(b"content-type", b"application/json")]
        if cursor is not None:
            headers.append((b"x-files-cursor-next", cursor))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    kind = sys.argv[1]
    settings = Settings.from_env()
    app = conveyor_app(settings) if kind == "conveyor" else Baseline(settings.database_url)
    serve(app, settings)


if __name__ == "__main__":
    main()
