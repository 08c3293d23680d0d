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
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import files_sdk
import httpx
import psycopg
import pytest
from sqlalchemy import event, func, select

from conveyor.app import create_app
from conveyor.store import migrate, users
from conveyor.store.database import Database, driver_conninfo
from conveyor.store.schema import automation_runs, automations
from conveyor.testing.postgres import PostgresServer, free_port
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread
from suite_support import make_database_url, suite_settings

CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]
API = "/api/rest/v1"
OUTAGE_TYPE = "service-unavailable/automations-unavailable"
SDK_SETTINGS = ("base_url", "the_api_key", "session_id", "max_network_retries")


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
        "CONVEYOR_LEASE_SECONDS": "6",  # a step the restart interrupted is taken over soon
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
        # Every sixth request a manual run: each is a run the worker must finish afterwards.
        kinds = ("list", "find", "manual_run", "create", "list", "find")

        def load(number: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                for i in range(600):  # bounded, whatever happens
                    if stop.is_set():
                        return
                    answer = send(client, kinds[i % 6], automation, f"load-{number}-{i}")
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
            page = client.get("/sign-in")  # the web UI: a 503 page, not a 500
            assert page.status_code == 503 and "briefly unavailable" in page.text
            assert page.headers["content-type"].startswith("text/html")
            assert int(page.headers["retry-after"]) > 0
        pg.resume()
        after = len(answers)
        wait_until(lambda: len(answers) >= after + 100, "the load to go on after the restart")
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


class SmallDisk:
    """A file system that really fills up: a 16 MiB tmpfs, or (where mounting is not
    allowed) the same effect from SQLite itself.

    Mounting needs root. Without it the database is capped with SQLite's
    `PRAGMA max_page_count` on every connection, so writes fail with the very
    error a full disk gives (SQLITE_FULL, "database or disk is full"), but the
    file system keeps its space, so /readyz learns of it from the failed writes
    alone.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / "disk"
        self.path.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(self.path)],
            capture_output=True,
            check=False,
        )
        self.tmpfs = mounted.returncode == 0
        self.mounted = self.tmpfs
        self.filler = self.path / "filler"
        self.db: Database | None = None
        self.pages: int | None = None  # the cap while "full", without tmpfs

    def attach(self, db: Database) -> None:
        self.db = db
        if not self.tmpfs:

            @event.listens_for(db.engine, "connect")
            def _cap(dbapi_conn: Any, _record: Any) -> None:
                if self.pages is not None:
                    dbapi_conn.execute(f"PRAGMA max_page_count = {self.pages}")

    def fill(self) -> None:
        assert self.db is not None
        if self.tmpfs:
            # Unbuffered: nothing is left in a buffer to fail again when the file closes.
            with open(self.filler, "wb", buffering=0) as out:
                chunk = b"\0" * (1 << 16)
                try:
                    while True:
                        out.write(chunk)
                except OSError:  # ENOSPC: the disk is full
                    pass
        else:
            with self.db.read() as conn:
                self.pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
            self.db.engine.dispose()  # new connections get the cap

    def free(self) -> None:
        assert self.db is not None
        if self.tmpfs:
            self.filler.unlink()
        else:
            self.pages = None
            self.db.engine.dispose()

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path)
    yield disk
    disk.close()


def test_sqlite_full_disk(small_disk: SmallDisk, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{small_disk.path / 'conveyor.db'}")
    small_disk.attach(db)
    migrate.upgrade(db)
    seed = Seeder(db)
    alice = seed.account("alice")
    automation = seed.automation(alice, name="before")
    settings = suite_settings(tmp_path / "home", db.url, CONVEYOR_READY_REQUIRES_WORKERS="false")
    with ServerThread(create_app(settings, db)) as server:
        client = httpx.Client(
            base_url=server.url, headers={"X-FilesAPI-Key": alice.key}, timeout=30
        )
        assert client.get("/readyz").status_code == 200
        small_disk.fill()

        # Automations, runs and web sessions created until the disk refused each kind
        # twice (the WAL, or free pages under the cap, may hold a few first).
        web = httpx.Client(base_url=server.url, timeout=30)
        answers: list[tuple[str, httpx.Response]] = []
        for i in range(600):
            if i % 3 == 0:
                body = {"automation": "create_folder", "destinations": ["made/"], "name": f"n{i}"}
                answers.append((f"n{i}", client.post(f"{API}/automations", json=body)))
            elif i % 3 == 1:
                answers.append(("run", client.post(f"{API}/automations/{automation}/manual_run")))
            else:
                web.cookies.clear()
                token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/sign-in").text)
                assert token is not None
                form = {"api_key": alice.key, "csrf_token": unescape(token.group(1))}
                answers.append(("web", web.post("/sign-in", data=form)))
            refused = [(what, reply) for what, reply in answers if reply.status_code == 503]
            kinds = [what if what in ("run", "web") else "automation" for what, _ in refused]
            if min(kinds.count(kind) for kind in ("automation", "run", "web")) >= 2:
                break
        statuses = [reply.status_code for _, reply in answers]
        assert set(statuses) <= {201, 303, 503}, statuses
        assert min(kinds.count(kind) for kind in ("automation", "run", "web")) >= 2, statuses
        for what, full in refused:
            assert int(full.headers["retry-after"]) > 0
            if what == "web":  # the web UI's page, not a 500
                assert full.headers["content-type"].startswith("text/html")
                assert "briefly unavailable" in full.text and "Traceback" not in full.text
            else:
                assert full.json()["type"] == OUTAGE_TYPE
                assert full.json()["error"].startswith("Service unavailable: the database")

        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        full_disk = "the database's disk is full"
        full_database = "the database or its disk is full"
        expected = full_disk if small_disk.tmpfs else full_database
        assert not_ready.json()["checks"]["database"] == expected
        # Reads go on.
        runs = client.get(f"{API}/automation_runs", params={"automation_id": automation})
        assert runs.status_code == 200
        # The official SDK raises its class for the type (`files` fixture's settings).
        saved = {name: getattr(files_sdk, name) for name in SDK_SETTINGS}
        files_sdk.base_url = server.url
        files_sdk.set_api_key(alice.key)
        files_sdk.max_network_retries = 0
        try:
            with pytest.raises(files_sdk.error.AutomationsUnavailableError) as raised:
                for _ in range(20):  # until a run does not fit (free pages may hold one)
                    files_sdk.automation.manual_run(automation)
                    answers.append(("run", httpx.Response(201)))
            assert raised.value.http_status == 503
        finally:
            files_sdk.close()
            for name, value in saved.items():
                setattr(files_sdk, name, value)

        # No write was half-applied: exactly the automations and runs answered 201 exist.
        with db.read() as conn:
            names = set(conn.execute(select(automations.c.name)).scalars())
            run_count = conn.execute(select(func.count()).select_from(automation_runs)).scalar_one()
        created = [what for what, reply in answers if reply.status_code == 201]
        assert names == {"before"} | {what for what in created if what != "run"}
        assert run_count == created.count("run")

        small_disk.free()
        again = client.post(
            f"{API}/automations",
            json={"automation": "create_folder", "destinations": ["made/"], "name": "after"},
        )
        assert again.status_code == 201, again.text
        assert client.get("/readyz").status_code == 200
        client.close()
        web.close()
    db.dispose()


def test_read_only_postgresql(
    pg_server: PostgresServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A read-only database (a standby, `default_transaction_read_only`): writes are 503s,
    reads go on, /readyz says why; writable again, everything works."""
    url = make_database_url("postgresql", request, tmp_path)
    name = url.rsplit("/", 1)[1]
    db = Database(url)
    seed = Seeder(db)
    alice = seed.account("alice")
    automation = seed.automation(alice, name="before")
    settings = suite_settings(tmp_path / "home", url, CONVEYOR_READY_REQUIRES_WORKERS="false")

    def read_only(on: bool) -> None:
        with psycopg.connect(driver_conninfo(pg_server.url()), autocommit=True) as conn:
            value = "on" if on else "off"
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
        db.engine.dispose()  # the setting applies to new connections

    with ServerThread(create_app(settings, db)) as server:
        client = httpx.Client(
            base_url=server.url, headers={"X-FilesAPI-Key": alice.key}, timeout=30
        )
        read_only(True)
        refused = client.post(f"{API}/automations/{automation}/manual_run")
        assert refused.status_code == 503
        assert refused.json()["type"] == OUTAGE_TYPE
        assert refused.json()["error"] == (
            "Service unavailable: the database is read-only. Retry in a few seconds."
        )
        assert int(refused.headers["retry-after"]) > 0
        runs = client.get(f"{API}/automation_runs", params={"automation_id": automation})
        assert runs.status_code == 200 and runs.json() == []
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["database"] == "the database is read-only"

        read_only(False)
        assert client.post(f"{API}/automations/{automation}/manual_run").status_code == 201
        assert client.get("/readyz").status_code == 200
        client.close()
    db.dispose()


def test_a_database_server_that_does_not_answer(tmp_path: Path) -> None:
    """A PostgreSQL address that takes the connection but never answers (as a host behind a
    network partition may): requests and /readyz fail as an outage after the connect timeout
    (CONNECT_TIMEOUT, 5 s) instead of hanging for the operating system's TCP timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes handshakes; nobody ever reads or answers
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/conveyor"
        db = Database(url)
        settings = suite_settings(
            tmp_path / "home", url, CONVEYOR_SECRET_KEY="fixed-secret-for-the-test"
        )
        with ServerThread(create_app(settings, db)) as server:
            ready = httpx.get(f"{server.url}/readyz", timeout=120)
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "the database is unreachable"}
            runs = httpx.get(
                f"{server.url}{API}/automation_runs",
                params={"automation_id": 1},
                headers={"X-FilesAPI-Key": "any"},
                timeout=120,
            )
            assert runs.status_code == 503 and runs.json()["type"] == OUTAGE_TYPE
        db.dispose()
