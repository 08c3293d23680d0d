"""Database outages are 503s: real PostgreSQL restarted under load, a real full disk under SQLite.

`conveyor serve` and `conveyor worker` run as processes. They are started while
PostgreSQL is down and must wait for it; the server is then stopped
(`pg_ctl stop -m fast`) and started again while clients send a bounded load
of reads and writes. No answer may be a 5xx other than 503, every 503 carries
Retry-After and Files.com's `service-unavailable/automations-unavailable`
type, every write is either fully applied (and answered 2xx) or not at all,
and the worker keeps running and finishes every queued run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from conveyor.store import migrate, users
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, automations
from conveyor.testing.postgres import PostgresServer, free_port

CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]
API = "/api/rest/v1"
OUTAGE_TYPE = "service-unavailable/automations-unavailable"


@dataclass
class Answer:
    kind: str
    status: int  # 0: no HTTP answer
    retry_after: str | None
    error_type: str | None
    name: str | None = None  # the automation a create asked for


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def logged(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped and started, which the shared one must not be."""
    with PostgresServer() as server:
        yield server


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([*CONVEYOR, command], env=env, stdout=out, stderr=out)


def send(client: httpx.Client, kind: str, automation: int, name: str) -> Answer:
    try:
        if kind == "list":
            reply = client.get(f"{API}/automation_runs", params={"automation_id": automation})
        elif kind == "find":
            reply = client.get(f"{API}/automation_runs/1")
        elif kind == "manual_run":
            reply = client.post(f"{API}/automations/{automation}/manual_run")
        else:
            reply = client.post(
                f"{API}/automations",
                json={"automation": "create_folder", "destinations": ["made/"], "name": name},
            )
    except httpx.TransportError:
        return Answer(kind, 0, None, None, name)
    body = reply.json() if reply.headers.get("content-type") == "application/json" else {}
    error_type = body.get("type") if isinstance(body, dict) else None
    return Answer(kind, reply.status_code, reply.headers.get("retry-after"), error_type, name)


def test_postgresql_restart_under_load(pg: PostgresServer, tmp_path: Path) -> None:
    url = pg.create_database("outage")
    db = Database(url)
    migrate.upgrade(db)
    with db.write() as conn:
        admin = users.ensure_user(conn, "admin", True, 0)
        key = users.create_api_key(conn, admin.id, 0)
    db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": url,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_PORT": str(port),
        "CONVEYOR_EMBEDDED_WORKERS": "0",
        "CONVEYOR_POLL_INTERVAL": "0.2",
        "CONVEYOR_HEARTBEAT_TIMEOUT": "4",
        "CONVEYOR_RATE_LIMIT_RATE": "1000",  # on, through the database, but never reached
        "CONVEYOR_RATE_LIMIT_BURST": "100000",
        "CONVEYOR_LOG_LEVEL": "info",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"

    pg.halt()  # both processes start while the database is down, and wait for it
    serve = start("serve", env, serve_log)
    worker = start("worker", env, worker_log)
    try:
        wait_until(lambda: logged(serve_log, "the database is unreachable"), "serve to wait")
        wait_until(lambda: logged(worker_log, "the database is unreachable"), "worker to wait")
        assert serve.poll() is None and worker.poll() is None
        pg.resume()
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "serve and the worker to come up after the database")
        headers = {"X-FilesAPI-Key": key}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            first = client.post(
                f"{API}/automations",
                json={"automation": "create_folder", "destinations": ["made/"], "name": "first"},
            )
            assert first.status_code == 201, first.text
            automation = first.json()["id"]
            assert client.post(f"{API}/automations/{automation}/manual_run").status_code == 201

        answers: list[Answer] = []
        lock = threading.Lock()
        stop = threading.Event()
        kinds = ("list", "find", "manual_run", "create")

        def load(number: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                for i in range(600):  # bounded, whatever happens
                    if stop.is_set():
                        return
                    answer = send(client, kinds[i % 4], automation, f"load-{number}-{i}")
                    with lock:
                        answers.append(answer)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(answers) >= 60, "the load to start")
        pg.halt()
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            down = send(client, "list", automation, "")
            assert (down.status, down.error_type) == (503, OUTAGE_TYPE)
            assert down.retry_after is not None and int(down.retry_after) > 0
            not_ready = client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["database"] == "the database is unreachable"
        pg.resume()
        after = len(answers)
        wait_until(lambda: len(answers) >= after + 120, "the load to go on after the restart")
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        sent = len(answers)

        bad = [a for a in answers if a.status == 0 or (a.status >= 500 and a.status != 503)]
        assert bad == [], f"{len(bad)} of {sent} requests failed otherwise than with a 503"
        unavailable = [a for a in answers if a.status == 503]
        assert all(a.error_type == OUTAGE_TYPE for a in unavailable)
        assert all(a.retry_after is not None and int(a.retry_after) > 0 for a in unavailable)
        assert {a.status for a in answers} <= {200, 201, 503}
        print(f"\n{sent} requests during a PostgreSQL restart: {len(unavailable)} answered 503")

        # Every write either happened and was answered 201, or did not happen at all.
        db = Database(url)
        try:
            with db.read() as conn:
                names = set(conn.execute(select(automations.c.name)).scalars())
                run_count = conn.execute(
                    select(func.count()).select_from(automation_runs)
                ).scalar_one()
            created = {a.name for a in answers if a.kind == "create" and a.status == 201}
            assert names == created | {"first"}
            ran = [a for a in answers if a.kind == "manual_run" and a.status == 201]
            assert run_count == len(ran) + 1

            # The worker lived through the restart and finishes every queued run.
            def all_finished() -> bool:
                with db.read() as conn:
                    return not conn.execute(
                        select(func.count())
                        .select_from(automation_runs)
                        .where(automation_runs.c.run_stage != "finished")
                    ).scalar_one()

            wait_until(all_finished, "the worker to finish every run", timeout=120)
            assert worker.poll() is None and serve.poll() is None
            wait_until(ready, "readiness after the restart")
        finally:
            db.dispose()
    finally:
        for process in (serve, worker):
            process.terminate()
            process.wait(timeout=60)
    assert "Traceback" not in serve_log.read_text() + worker_log.read_text()
