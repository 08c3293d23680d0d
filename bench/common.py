"""Shared benchmark parts: seeding millions of runs, server subprocesses, timing, machine facts.

Used by the scripts beside it (paging_depth.py, throughput.py, full_scan.py);
never by the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg
from sqlalchemy import event

from conveyor.domain import runs as lifecycle
from conveyor.domain.listing import RUN_DEFAULT_SORT, Cursor, CursorCodec, RunListQuery
from conveyor.domain.permissions import Level
from conveyor.domain.runs import RunStage
from conveyor.store import automations, migrate, permissions, users
from conveyor.store import runs as runs_store
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.testing.postgres import PostgresServer, free_port

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"
PYTHON = sys.executable
# The server secret both servers and the scripts share, so the scripts can sign
# cursors for any depth exactly as the server would.
SECRET = "bench-secret-not-for-production"
OTHER_AUTOMATIONS = 4
START_US = 1_700_000_000_000_000
RUN_COLUMNS = (
    "automation_id, created_at, runtime, completed_at, status, run_stage, "
    "successful_operations, failed_operations"
)


def arguments(description: str, **extra: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--runs",
        type=int,
        default=1_000_000,
        help="runs of the measured automation; as many again go to other automations "
        "(default 1,000,000: the recorded size)",
    )
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="both",
        help="database(s) to measure (default both)",
    )
    for name, options in extra.items():
        parser.add_argument("--" + name.replace("_", "-"), **options)
    return parser.parse_args()


def backends(args: argparse.Namespace) -> list[str]:
    return ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was."""
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def print_machine() -> None:
    """The facts docs/benchmarks.md records with each figure."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load average {load_average()}")
    print(
        f"machine: {os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    sys.stdout.flush()


# ------------------------------------------------------------------- seeding


def lifecycle_rows(total: int, target: int, others: list[int]) -> Iterator[tuple[Any, ...]]:
    """`total` runs, every other one of the `target` automation, oldest first.

    Each row is a state the domain's lifecycle functions produced (new_run,
    advance, count_operation, finish), one second apart: a mix of successes,
    partial failures, failures and failed plannings, with the newest few still
    executing.
    """
    stages = (RunStage.PLANNING, RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING)
    for i in range(total):
        automation_id = target if i % 2 == 0 else others[(i // 2) % len(others)]
        created = START_US + i * 1_000_000
        run = lifecycle.new_run(automation_id, created)
        if i % 97 == 5:
            run = lifecycle.finish(lifecycle.advance(run, RunStage.PLANNING), created, True)
        else:
            for stage in stages:
                run = lifecycle.advance(run, stage)
            for _ in range(i % 4):
                run = lifecycle.count_operation(run, True)
            if i % 10 == 0:
                run = lifecycle.count_operation(run, False)
            if i < total - 20:
                run = lifecycle.finish(run, created + (i % 7 + 1) * 1_000_000)
        yield (
            run.automation_id,
            run.created_at,
            run.runtime,
            run.completed_at,
            run.status.value,
            run.run_stage.value,
            run.successful_operations,
            run.failed_operations,
        )


@dataclass
class Seeded:
    """A database holding the benchmark's runs, and what a client needs to list them."""

    backend: str
    url: str  # SQLAlchemy URL, as CONVEYOR_DATABASE_URL takes it
    automation_id: int
    runs: int  # runs of automation_id
    api_key: str

    def connect(self) -> Any:
        """A raw driver connection (sqlite3 or psycopg), outside any pool."""
        if self.backend == "sqlite":
            return sqlite3.connect(self.url.removeprefix("sqlite:///"), check_same_thread=False)
        return psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"))


def _prepare(url: str) -> tuple[int, list[int], str]:
    """Migrate, then create the owner, its API key and the automations the store's way."""
    db = Database(url, null_pool=True)
    migrate.upgrade(db)
    with db.write() as conn:
        owner = users.ensure_user(conn, "bench", False, START_US)
        key = users.create_api_key(conn, owner.id, START_US)
        ids = [
            automations.create_automation(conn, owner.id, START_US, name=f"bench {n}")
            for n in range(1 + OTHER_AUTOMATIONS)
        ]
    db.dispose()
    return ids[0], ids[1:], key


def _new_key(url: str) -> str:
    db = Database(url, null_pool=True)
    with db.write() as conn:
        owner = users.ensure_user(conn, "bench", False, START_US)
        key = users.create_api_key(conn, owner.id, START_US)
    db.dispose()
    return key


def seed_sqlite(runs: int) -> Seeded:
    """A SQLite database with the runs, built once per size and kept under bench/.data/."""
    DATA_DIR.mkdir(exist_ok=True)
    # Named by schema revision too: a new migration makes a new file, not a stale one.
    path = DATA_DIR / f"runs-{runs}-rev{migrate.head_revision()}.sqlite"
    url = f"sqlite:///{path}"
    if path.exists():
        return Seeded("sqlite", url, 1, runs, _new_key(url))
    for stale in DATA_DIR.glob(f"runs-{runs}-rev*.sqlite*"):
        stale.unlink()  # built for an older schema
    started = time.perf_counter()
    building = path.with_suffix(".building")
    for leftover in DATA_DIR.glob(building.name + "*"):
        leftover.unlink()
    build_url = f"sqlite:///{building}"
    target, others, _ = _prepare(build_url)
    conn = sqlite3.connect(building, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    insert = f"INSERT INTO automation_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    for batch in _batches(lifecycle_rows(2 * runs, target, others), 50_000):
        conn.executemany(insert, batch)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    building.rename(path)
    print(f"seeded {2 * runs:,} runs into {path} in {time.perf_counter() - started:.0f} s")
    return Seeded("sqlite", url, target, runs, _new_key(url))


@contextmanager
def seeded_postgres(runs: int) -> Iterator[Seeded]:
    """A throwaway durable PostgreSQL server holding the runs, loaded with COPY."""
    started = time.perf_counter()
    with PostgresServer(durable=True) as server:
        url = server.create_database("bench")
        target, others, key = _prepare(url)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            with conn.cursor() as cur:
                copy_sql = f"COPY automation_runs ({RUN_COLUMNS}) FROM STDIN"
                with cur.copy(copy_sql) as copy:
                    for row in lifecycle_rows(2 * runs, target, others):
                        copy.write_row(row)
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) automation_runs")
        print(f"seeded {2 * runs:,} runs into PostgreSQL in {time.perf_counter() - started:.0f} s")
        yield Seeded("postgresql", url, target, runs, key)


@contextmanager
def seeded(backend: str, runs: int) -> Iterator[Seeded]:
    if backend == "sqlite":
        yield seed_sqlite(runs)
    else:
        with seeded_postgres(runs) as db:
            yield db


def _batches(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------- list queries


# Parameter values no real query uses, to tell the captured statement's parameters apart.
_SENTINELS = {
    7_000_000_000_000_000_001: "automation_id",
    7_000_000_000_000_000_002: "key",
    7_000_000_000_000_000_003: "id",
    70_001: "limit",
    70_002: "limit from anchor",  # a page after a cursor also reads the anchor's row
    0: "offset",
}


@dataclass(frozen=True)
class ListSql:
    """The page query Conveyor's store sends to the driver for the default sort.

    Captured from `store.runs.list_runs` itself, so the baseline and the raw
    timings run exactly Conveyor's SQL however the store writes it.
    """

    sql: str
    roles: Any  # tuple of role names (sqlite) or {parameter name: role} (psycopg)

    def params(
        self, automation_id: int, per_page: int, anchor: tuple[int, int] | None, offset: int = 0
    ) -> Any:
        values = {
            "automation_id": automation_id,
            "limit": per_page + 1,
            "limit from anchor": per_page + 2,
            "offset": offset,
        }
        if anchor is not None:
            values.update(key=anchor[0], id=anchor[1])
        if isinstance(self.roles, dict):
            return {name: values[role] for name, role in self.roles.items()}
        return tuple(values[role] for role in self.roles)

    def with_offset(self) -> ListSql:
        """The same query paged by LIMIT/OFFSET, as offset-paged APIs read page N."""
        if isinstance(self.roles, dict):
            if "offset" in self.roles.values():
                return self
            return ListSql(
                self.sql + " OFFSET %(bench_offset)s", {**self.roles, "bench_offset": "offset"}
            )
        if "offset" in self.roles:
            return self
        return ListSql(self.sql + " OFFSET ?", (*self.roles, "offset"))


def list_sql(url: str, keyset: bool) -> ListSql:
    """Capture the page query of `list_runs` (first page, or a page after a cursor)."""
    statements: list[tuple[str, Any]] = []
    database = Database(url, null_pool=True)

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    sentinel = {role: value for value, role in _SENTINELS.items()}
    cursor = Cursor("next", sentinel["key"], sentinel["id"]) if keyset else None
    query = RunListQuery(sentinel["automation_id"], 70_000, RUN_DEFAULT_SORT, None, cursor)
    with database.read() as conn:
        run_steps(conn, runs_store.list_runs(conn.dialect, query))
    database.dispose()
    sql, parameters = next((st, p) for st, p in statements if "FROM automation_runs" in st)
    if isinstance(parameters, dict):
        return ListSql(sql, {name: _SENTINELS[value] for name, value in parameters.items()})
    return ListSql(sql, tuple(_SENTINELS[value] for value in parameters))


def anchor_at(db: Seeded, conn: Any, depth: int) -> tuple[int, int] | None:
    """(created_at, id) of the record just before position `depth` in the default order."""
    if depth == 0:
        return None
    mark = "?" if db.backend == "sqlite" else "%s"
    row = conn.execute(
        f"SELECT created_at, id FROM automation_runs WHERE automation_id = {mark} "
        f"ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET {mark}",
        (db.automation_id, depth - 1),
    ).fetchone()
    return (row[0], row[1])


def signed_cursor(db: Seeded, anchor: tuple[int, int], per_page: int) -> str:
    """The `X-Files-Cursor-Next` the server sends for the page that ends at `anchor`."""
    query = RunListQuery(db.automation_id, per_page, RUN_DEFAULT_SORT, None, None)
    cursor = Cursor("next", anchor[0], anchor[1])
    return CursorCodec(SECRET.encode()).encode(query.scope, query.sort, cursor)


# ------------------------------------------------------------------ servers


def stop_process(process: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServerProcess:
    """`bench/servers.py KIND` in a subprocess on 127.0.0.1; its pid is the server's."""

    def __init__(
        self, kind: str, db: Seeded, home: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.kind = kind
        self.port = free_port()
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CONVEYOR_HOME": str(home),
            "CONVEYOR_DATABASE_URL": db.url,
            "CONVEYOR_SECRET_KEY": SECRET,
            "CONVEYOR_EMBEDDED_WORKERS": "0",
            # Without per-key rate limits (default 50/s), which would answer the load with 429s.
            "CONVEYOR_RATE_LIMIT_RATE": "0",
            "CONVEYOR_PORT": str(self.port),
            **(extra_env or {}),
        }
        # The access log stays on, as by default; it goes to a file, not to the figures.
        self.log = open(home / f"{kind}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [PYTHON, str(BENCH_DIR / "servers.py"), kind],
            env=env,
            cwd=BENCH_DIR,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_started(self.process, lambda: accepts(self.port), f"{kind} server")
        except RuntimeError:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self, field: str) -> int:
        """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far, all threads."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)
        self.log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------- timing


def seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def interleaved_samples(
    cases: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[float]]:
    """Seconds of each case `rounds` times, the cases taking turns so that noise from
    the shared machine falls on all of them alike. One untimed warm-up call each."""
    for work in cases.values():
        work()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, work in cases.items():
            samples[name].append(seconds(work))
    return samples


def interleaved_medians(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each case (`interleaved_samples`)."""
    samples = interleaved_samples(cases, rounds)
    return {name: statistics.median(values) for name, values in samples.items()}


def require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if found is None:
        sys.exit(f"{tool} not found: {hint}")
    return found


# ------------------------------------------- engine benchmarks: counted Conveyor processes

# A Conveyor process started by `CountedProcess` counts every transaction its
# SQLAlchemy engines commit or roll back, by thread role, and writes the
# totals as JSON to this file on SIGUSR1.
COUNTS_ENV = "BENCH_COMMIT_COUNTS"


def thread_role(name: str) -> str:
    """Which part of Conveyor a thread belongs to, from the names the code gives them."""
    if name == "worker-heartbeat":
        return "process heartbeat"
    if name.startswith("worker-"):
        return "engine worker"
    if name == "heartbeat":
        return "lease heartbeat"
    if name == "MainThread" or name.startswith("AnyIO worker thread"):
        return "api"
    return name


def install_commit_counter(path: str) -> None:
    """Count transactions in this process by (thread role, write|read, commit|rollback, changed).

    `write` is a transaction begun by `Database.write()`/`run_write()` (on SQLite
    a `BEGIN IMMEDIATE`), `read` any other; `changed` means it changed a row (a
    claim that found no work changed nothing): on SQLite from the driver's
    `total_changes` at BEGIN and at COMMIT, elsewhere from the row counts of
    its INSERT, UPDATE and DELETE statements.
    Each committed write transaction also goes on a timeline as (role, began,
    done, changed), `done` being when its connection went back to the pool,
    after the COMMIT returned (time.time() seconds).
    """
    import json
    import signal
    import threading

    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.pool import Pool

    from conveyor.store.database import WRITE_OPTION

    counts: dict[str, int] = {}
    timeline: list[list[Any]] = []
    lock = threading.Lock()

    def role() -> str:
        return thread_role(threading.current_thread().name)

    def total_changes(conn: Connection) -> int | None:
        return getattr(conn.connection.dbapi_connection, "total_changes", None)

    def on_begin(conn: Connection) -> None:
        conn.info["bench_began"] = time.time()
        conn.info["bench_wrote"] = False
        conn.info["bench_changes"] = total_changes(conn)

    def after_execute(conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.lstrip()[:6].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and cursor.rowcount > 0:
            conn.info["bench_wrote"] = True

    def bump(conn: Connection, end: str) -> None:
        kind = "write" if conn.get_execution_options().get(WRITE_OPTION) else "read"
        wrote = bool(conn.info.pop("bench_wrote", False))
        before = conn.info.pop("bench_changes", None)
        if before is not None:  # SQLite: exact, whatever the statements reported
            wrote = total_changes(conn) != before
        began = conn.info.pop("bench_began", None)
        key = f"{role()}/{kind}/{end}/{'changed' if wrote else 'unchanged'}"
        with lock:
            counts[key] = counts.get(key, 0) + 1
        if kind == "write" and end == "commit":
            # Completed when the connection is checked in, after the COMMIT.
            conn.connection.info["bench_pending"] = [role(), began, None, wrote]

    def on_checkin(_dbapi: Any, record: Any) -> None:
        entry = record.info.pop("bench_pending", None)
        if entry is not None:
            entry[2] = time.time()
            with lock:
                timeline.append(entry)

    def on_checkout(*_args: object) -> None:
        # A checkout pings the server (pool_pre_ping): a round trip, no transaction.
        key = f"{role()}/pool/checkout"
        with lock:
            counts[key] = counts.get(key, 0) + 1

    event.listen(Pool, "checkout", on_checkout)
    event.listen(Pool, "checkin", on_checkin)
    event.listen(Engine, "begin", on_begin)
    event.listen(Engine, "after_cursor_execute", after_execute)
    event.listen(Engine, "commit", lambda conn: bump(conn, "commit"))
    event.listen(Engine, "rollback", lambda conn: bump(conn, "rollback"))
    requests = [0]

    def dump(_signum: int, _frame: object) -> None:
        requests[0] += 1
        with lock:
            snapshot = {"seq": requests[0], "counts": dict(counts), "timeline": list(timeline)}
            timeline.clear()
        partial = path + ".part"
        with open(partial, "w") as out:
            json.dump(snapshot, out)
        os.replace(partial, path)

    signal.signal(signal.SIGUSR1, dump)


class CountedProcess:
    """`conveyor serve` or `conveyor worker` in a subprocess, counting its transactions."""

    def __init__(self, args: list[str], env: dict[str, str], home: Path, name: str) -> None:
        self.counts_path = home / f"{name}.counts.json"
        self.log = open(home / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [PYTHON, str(BENCH_DIR / "common.py"), "counted", *args],
            env={**env, COUNTS_ENV: str(self.counts_path)},
            cwd=BENCH_DIR,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._asked = 0
        # The write transactions committed between the last two calls of counts().
        self.timeline: list[list[Any]] = []

    def counts(self, timeout: float = 10.0) -> dict[str, int]:
        """The process's transaction counts now (it writes them when signalled)."""
        import json
        import signal

        self._asked += 1
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.counts_path) as counts:
                    snapshot = json.load(counts)
                if snapshot["seq"] >= self._asked:
                    self.timeline = snapshot["timeline"]
                    return dict(snapshot["counts"])
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"no transaction counts from {self.process.args}")

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


class Started(Protocol):
    """A server subprocess and the file its output goes to."""

    process: subprocess.Popen[Any]
    log: IO[Any]


def wait_started(
    process: subprocess.Popen[Any], ready: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    """Poll ready() until it holds; fail as soon as the process exits, or after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.05)


def accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def healthy(url: str) -> bool:
    """Whether the Conveyor server at url answers /healthz with 200."""
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_healthy(url: str, server: Started, timeout: float = 60.0) -> None:
    what = f"{server.process.args} (log: {server.log.name})"
    wait_started(server.process, lambda: healthy(url), what, timeout)


def run_on_seeded(
    description: str, measure: Callable[..., None], **options: dict[str, Any]
) -> None:
    """A benchmark's main: its options, the machine, then measure(db, *option values) on
    each chosen backend's seeded database, in the order the options are given."""
    args = arguments(description, **options)
    print_machine()
    for backend in backends(args):
        with seeded(backend, args.runs) as db:
            measure(db, *(getattr(args, name) for name in options))
    print(f"load average at end: {load_average()}")


@dataclass
class Home:
    """A fresh CONVEYOR_HOME with a migrated database, a user's API key and the server's env."""

    path: Path
    url: str  # SQLAlchemy URL
    key: str
    env: dict[str, str]  # CONVEYOR_HOME, CONVEYOR_DATABASE_URL, CONVEYOR_PORT over os.environ
    port: int
    admin_dsn: str | None  # PostgreSQL: the `postgres` database (server-wide statistics)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def conveyor_home(backend: str, prefix: str, code: Path | None = None) -> Iterator[Home]:
    """A temp home (SQLite in it, or a throwaway durable PostgreSQL), removed afterwards;
    `code`: the `src` folder whose migrations make the schema (another commit's)."""
    from conveyor.clock import SystemClock

    with ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix=f"{prefix}-{backend}-"))
        stack.callback(shutil.rmtree, home, True)
        admin_dsn = None
        if backend == "postgresql":
            server = PostgresServer(durable=True).start()
            stack.callback(server.stop)
            url = server.create_database("bench")
            admin_dsn = server.url("postgres").replace("postgresql+psycopg://", "postgresql://")
        else:
            url = f"sqlite:///{home / 'conveyor.db'}"
        db = Database(url, null_pool=True)
        if code is None:
            migrate.upgrade(db)
        else:  # that code's schema, which this code's migrations may not know
            upgrade = "import sys\nfrom conveyor.store import database, migrate\n"
            upgrade += "migrate.upgrade(database.Database(sys.argv[1], null_pool=True))"
            subprocess.run(
                [PYTHON, "-c", upgrade, url],
                check=True,
                env={**os.environ, "PYTHONPATH": str(code)},
            )
        now = SystemClock().now()
        with db.write() as conn:
            user = users.ensure_user(conn, "bench", False, now)
            key = users.create_api_key(conn, user.id, now)
            # A non-admin with folder permissions on the whole storage (docs/permissions.md).
            permissions.ensure_grant(conn, user.id, "", Level.FULL, now)
        db.dispose()
        port = free_port()
        env = {
            **os.environ,
            "CONVEYOR_HOME": str(home),
            "CONVEYOR_DATABASE_URL": url,
            "CONVEYOR_PORT": str(port),
        }
        yield Home(home, url, key, env, port, admin_dsn)


def count_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after.get(key, 0) - before.get(key, 0) for key in after}


def _counted_main(args: list[str]) -> None:
    """`python bench/common.py counted serve|worker ...`: that command, counting commits."""
    install_commit_counter(os.environ[COUNTS_ENV])
    from conveyor.cli.main import app

    sys.argv = ["conveyor", *args]
    app()


if __name__ == "__main__" and sys.argv[1:2] == ["counted"]:
    _counted_main(sys.argv[2:])
