"""Where a list page's time goes: Conveyor's layers against the baseline's, in one process.

Calls each layer directly (no network, no load generator), a page of 1,000
and of 10,000 runs from the first page, and prints the best and the mean CPU time
of N calls of each: the raw SQL, the store's `list_runs`, the encoder, the whole handler,
the whole ASGI app with its middleware; and the baseline's SQL + encoding and
its whole ASGI app. Differences between the lines are the cost of each layer.
This explains figure 2 (throughput.py); it is not itself a goal.

    .venv/bin/python bench/breakdown.py --backend sqlite
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from common import (
    SECRET,
    Seeded,
    list_sql,
    run_on_seeded,
)


def cpu_ms(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, mean) CPU time of the process (all threads) over `repeat` calls, in ms.

    CPU time, not wall time, because on a shared machine a call may wait for a
    core. The best is the layer's own work; the mean also carries what comes
    only now and then, such as the cyclic garbage collector's full passes.
    """
    work()
    times = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times) * 1000, sum(times) / len(times) * 1000


# One event loop per app, its lifespan started there once (see asgi_get).
_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}
_LIFESPANS: list[asyncio.Task[Any]] = []


def app_loop(app: Any) -> asyncio.AbstractEventLoop:
    """The app's private event loop, on which its lifespan has started, as under uvicorn
    (Conveyor opens its asyncio read pool there on PostgreSQL, so the run list reads
    as in production). The lifespan is left waiting for a shutdown: the process ends."""
    loop = _LOOPS.get(id(app))
    if loop is not None:
        return loop
    loop = _LOOPS[id(app)] = asyncio.new_event_loop()
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start() -> None:
        await startup.put({"type": "lifespan.startup"})
        lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        _LIFESPANS.append(loop.create_task(app(lifespan, startup.get, started.put)))
        message = await started.get()
        assert message["type"] == "lifespan.startup.complete", message

    loop.run_until_complete(start())
    return loop


def asgi_get(app: Any, path: str, query: str, key: str) -> Callable[[], None]:
    """One GET through an ASGI app on its event loop (`app_loop`), body discarded."""
    loop = app_loop(app)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8080"), (b"x-filesapi-key", key.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    def call() -> None:
        loop.run_until_complete(app(dict(scope, state={}), receive, send))

    return call


def measure(db: Seeded, repeat: int) -> None:
    os.environ.update(
        {
            "CONVEYOR_HOME": tempfile.mkdtemp(prefix="conveyor-bench-"),
            "CONVEYOR_DATABASE_URL": db.url,
            "CONVEYOR_SECRET_KEY": SECRET,
            "CONVEYOR_EMBEDDED_WORKERS": "0",
            "CONVEYOR_RATE_LIMIT_RATE": "0",
            "CONVEYOR_ACCESS_LOG": "false",
            "CONVEYOR_LOG_LEVEL": "warning",
        }
    )
    from conveyor.api.encode import RunEncoder
    from conveyor.config import Settings
    from conveyor.domain.listing import RUN_DEFAULT_SORT, RunListQuery
    from conveyor.domain.signing import UrlSigner
    from conveyor.store import runs as runs_store
    from conveyor.store.database import Database
    from conveyor.store.prepared import run_steps
    from servers import Baseline, conveyor_app

    settings = Settings.from_env()
    app = conveyor_app(settings)
    baseline = Baseline(settings.database_url)
    database = Database(settings.database_url)
    raw = db.connect()
    first = list_sql(db.url, keyset=False)
    encoder = RunEncoder("http://127.0.0.1:8080", UrlSigner(SECRET.encode()), 1_700_000_000)

    def layers(per_page: int) -> dict[str, tuple[float, float]]:
        query = RunListQuery(db.automation_id, per_page, RUN_DEFAULT_SORT, None, None)
        params = f"automation_id={db.automation_id}&per_page={per_page}"
        values = first.params(db.automation_id, per_page, None)
        lines = {
            "raw SQL (sqlite3/psycopg fetchall)": cpu_ms(
                lambda: raw.execute(first.sql, values).fetchall(), repeat
            )
        }
        with database.read() as conn:
            rows = run_steps(conn, runs_store.list_runs(conn.dialect, query)).rows
            lines["store.runs.list_runs (driver tuples)"] = cpu_ms(
                lambda: run_steps(conn, runs_store.list_runs(conn.dialect, query)), repeat
            )
        plain = [tuple(row) for row in rows]
        lines["baseline encoding (dicts + orjson)"] = cpu_ms(lambda: baseline.encode(plain), repeat)
        lines["RunEncoder.runs (+ signed URL per run)"] = cpu_ms(lambda: encoder.runs(rows), repeat)
        lines["baseline ASGI app, whole request"] = cpu_ms(
            asgi_get(baseline, "/", params, db.api_key), repeat
        )
        conveyor_get = asgi_get(app, "/api/rest/v1/automation_runs", params, db.api_key)
        baseline_get = asgi_get(baseline, "/", params, db.api_key)
        lines["Conveyor ASGI app, whole request"] = cpu_ms(conveyor_get, repeat)
        # What the cyclic collector costs: the same requests with every object made
        # so far (the app, its modules) frozen out of its passes.
        gc.collect()
        gc.freeze()
        lines["baseline ASGI app, after gc.freeze()"] = cpu_ms(baseline_get, repeat)
        lines["Conveyor ASGI app, after gc.freeze()"] = cpu_ms(conveyor_get, repeat)
        gc.unfreeze()
        return lines

    for per_page in (1000, 10_000):
        for label, (best, mean) in layers(per_page).items():
            print(
                f"{db.backend:<10} per_page {per_page:>6,}  {label:<42} "
                f"best {best:7.2f} ms  mean {mean:7.2f} ms"
            )
    raw.close()
    database.dispose()


def main() -> None:
    run_on_seeded(
        __doc__.splitlines()[0],
        measure,
        repeat={"type": int, "default": 60, "help": "calls of each layer"},
    )


if __name__ == "__main__":
    main()
