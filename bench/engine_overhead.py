"""Engine overhead: create_folder runs per second end to end, against the database's own ceiling,
in a burst of manual runs, and against Prefect.

Conveyor runs as it is deployed, each process started through
`common.py counted`, which counts every transaction its SQLAlchemy engines
commit (by thread: API, engine worker, lease heartbeat, scheduler, ...):

- SQLite: one `conveyor serve` with its default embedded workers (2);
- PostgreSQL (a throwaway durable server, fsync on): one `conveyor serve`
  with CONVEYOR_EMBEDDED_WORKERS=0 for the API, and `--workers` (3)
  `conveyor worker` processes (1 worker thread each), woken by LISTEN/NOTIFY.

The client triggers `create_folder` automations (one destination each)
with POST /api/rest/v1/automations/{id}/manual_run over HTTP on 127.0.0.1
and learns that a run finished from a read-only connection that polls the
run table every 5 ms. Each round, in turn:

1. ceiling: single-row INSERT + COMMIT loops through the raw driver
   (sqlite3 with WAL and synchronous=NORMAL as Conveyor sets them; psycopg
   with PostgreSQL's default synchronous_commit) on a table in the same
   database, with 1 and with 2 connections; the better is the ceiling;
2. latency: runs one at a time, the workers idle before each: trigger to
   finished, and the share of it the run waited for a worker. Waiting for a
   worker is the time a committed, claimable run sat in a queue stage until
   a worker's claim began: from the COMMIT of the transaction that queued it
   (the API's that created it; the planner's that queued it for execution)
   to `planning_at` / `executing_at`, from the processes' timelines of write
   transactions. That is the goal's figure. The stage stamps alone
   (created_at to planning_at, plus queued_for_execution_at to executing_at)
   are printed too: they also contain the queuing transactions' own work
   and COMMIT (`created_at` is the trigger time, taken before the API's
   INSERT), during which no worker could see the run;
3. throughput: `--clients` closed-loop clients (each triggers a run, waits
   for it to finish, triggers the next) for `--seconds`;
4. burst: `--burst` (1,000) manual_run POSTs sent at once by `--senders` (8)
   connections, spread over the automations; runs/s is how many runs
   finished per second from the first POST to the last `completed_at`
   (issue 17's goal: >= 150 on SQLite, >= 300 on PostgreSQL with 3 workers);
5. Prefect (when it can be imported: `pip install -e '.[bench]'`, or another
   interpreter given with `--prefect-python`): a local `prefect server` with
   its default SQLite database and a flow that makes one folder, called
   `--prefect-runs` times one after another in a client process (Prefect's way
   to run a flow without a worker); runs/s and its median seconds per run.
   Measured in the same rounds as Conveyor's burst, taking turns.

The latency phase also gives p50/p99 from `created_at` to `completed_at` of
runs that did not queue (the workers idle before each; the goal: p50 <= 5 ms).

Figures: runs/s ÷ ceiling transactions/s per round and their median; write
transactions per run (in-process counts; on PostgreSQL also the server's
count of transactions that were assigned a transaction id, and
pg_stat_database.xact_commit). Rate limits are off (CONVEYOR_RATE_LIMIT_RATE=0)
so the client is never answered 429; on PostgreSQL the default limiter
would add one write transaction per API request, which is the API's cost,
not the engine's.

    .venv/bin/python bench/engine_overhead.py                       # both databases, 3 rounds
    .venv/bin/python bench/engine_overhead.py --backend sqlite --rounds 1 --seconds 3   # quick
    .venv/bin/python bench/engine_overhead.py --backend sqlite --prefect-python /path/bin/python

With `--baseline-src DIR` a second Conveyor runs the code in DIR (a `src`
folder, e.g. `git -C /work/main archive HEAD src | tar -x -C /tmp/main`,
then /tmp/main/src) and every round also measures its latency phase and
burst, right after this code's: the script prints this ÷ baseline for the
burst's runs/s, its CPU per run (user + system seconds of Conveyor's
processes, which a loaded machine moves less than wall time) and the p50.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from common import (
    CountedProcess,
    accepts,
    conveyor_home,
    count_delta,
    load_average,
    print_machine,
    stop_process,
    wait_healthy,
    wait_started,
)
from conveyor.testing.postgres import free_port

API = "/api/rest/v1"
POLL_SECONDS = 0.005
# PostgreSQL backends flush their statistics at most once a second and, when idle,
# up to 10 s later: pg_stat_database is read this long after the work stopped.
STATS_SETTLE = 11.0
COMMAND = "bench/engine_overhead.py"


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class Target:
    """A running Conveyor: its API, its processes, and a way to read its database."""

    backend: str
    url: str  # SQLAlchemy URL
    api: str
    key: str
    processes: list[CountedProcess]
    automations: list[int] = field(default_factory=list)
    admin_dsn: str | None = None  # PostgreSQL: the `postgres` database, for pg_stat_database
    # Conveyor's committed write transactions between the last two calls of counts().
    timeline: list[list[Any]] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def connect(self) -> Any:
        """A raw, autocommit driver connection (each statement its own transaction)."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(
                self.url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        return psycopg.connect(self.dsn, autocommit=True)

    @property
    def mark(self) -> str:
        return "?" if self.backend == "sqlite" else "%s"

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) Conveyor's processes used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for process in self.processes:
            with open(f"/proc/{process.process.pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def counts(self) -> dict[str, int]:
        """Transaction counts summed over Conveyor's processes; `timeline` since the last call."""
        total: dict[str, int] = defaultdict(int)
        self.timeline = []
        for process in self.processes:
            for key, value in process.counts().items():
                total[key] += value
            self.timeline += process.timeline
        return dict(total)


# ------------------------------------------------------------------ ceiling


def ceiling(target: Target, connections: int, seconds: float) -> float:
    """Bare single-row INSERT + COMMIT transactions per second, `connections` at once."""
    done = [0] * connections
    stop_at = time.perf_counter() + seconds
    barrier = threading.Barrier(connections + 1)

    def loop(slot: int) -> None:
        if target.backend == "sqlite":
            conn = sqlite3.connect(target.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # as conveyor.store.database sets it
            conn.execute("PRAGMA busy_timeout=30000")
            barrier.wait()
            while time.perf_counter() < stop_at:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO bench_ceiling (created_at, note) VALUES (?, ?)",
                    (now_us(), "a bare write transaction"),
                )
                conn.execute("COMMIT")
                done[slot] += 1
        else:
            conn = psycopg.connect(target.dsn)  # default synchronous_commit (on)
            barrier.wait()
            while time.perf_counter() < stop_at:
                conn.execute(
                    "INSERT INTO bench_ceiling (created_at, note) VALUES (%s, %s)",
                    (now_us(), "a bare write transaction"),
                )
                conn.commit()
                done[slot] += 1
        conn.close()

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def make_ceiling_table(target: Target) -> None:
    conn = target.connect()
    key = "INTEGER PRIMARY KEY" if target.backend == "sqlite" else "BIGSERIAL PRIMARY KEY"
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS bench_ceiling (id {key}, "
        "created_at BIGINT NOT NULL, note TEXT NOT NULL)"
    )
    conn.close()


# ------------------------------------------------------------------ runs


class Finisher:
    """One thread polling the run table for the runs the clients wait on."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.waiting: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.queries = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self) -> Finisher:
        self.conn = self.target.connect()
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()

    def wait(self, run_id: int, timeout: float = 120.0) -> None:
        event = threading.Event()
        with self.lock:
            self.waiting[run_id] = event
        if not event.wait(timeout):
            raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s")

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.waiting)
            if ids:
                marks = ", ".join([self.target.mark] * len(ids))
                rows = self.conn.execute(
                    f"SELECT id FROM automation_runs WHERE id IN ({marks}) "
                    "AND run_stage = 'finished'",
                    ids,
                ).fetchall()
                self.queries += 1
                with self.lock:
                    for (run_id,) in rows:
                        self.waiting.pop(run_id).set()
            time.sleep(POLL_SECONDS)


@dataclass
class Triggered:
    run_id: int
    sent: float  # time.time() when the POST started


def trigger(client: httpx.Client, automation: int) -> Triggered:
    sent = time.time()
    reply = client.post(f"{API}/automations/{automation}/manual_run")
    if reply.status_code != 201:
        raise RuntimeError(f"manual_run answered {reply.status_code}: {reply.text[:200]}")
    return Triggered(reply.json()["id"], sent)


@dataclass
class Phase:
    runs: list[Triggered]
    started: float
    counts: dict[str, int]  # transactions committed by Conveyor's processes meanwhile
    stages: dict[int, Any] = field(default_factory=dict)
    xids: int | None = None  # PostgreSQL: write transactions, from the server
    # PostgreSQL: transactions the bench itself made in the database during the phase
    # (each connection's start-up counts one, each autocommit statement one).
    own_transactions: int = 0
    # Conveyor's committed write transactions: (role, began, done, changed).
    timeline: list[list[Any]] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds Conveyor's processes used during the phase

    @property
    def seconds(self) -> float:
        last = max(row[5] for row in self.stages.values()) / 1e6
        return last - self.started

    @property
    def rate(self) -> float:
        return len(self.runs) / self.seconds

    def latencies(self) -> list[float]:
        return [self.stages[r.run_id][5] / 1e6 - r.sent for r in self.runs]

    def wait_shares(self) -> list[float]:
        shares = []
        for run in self.runs:
            _, created, planning, queued, executing, completed, _ = self.stages[run.run_id]
            waited = (planning - created) + (executing - queued)
            shares.append(waited / 1e6 / (completed / 1e6 - run.sent))
        return shares

    def waits_ms(self, part: str = "both") -> list[float]:
        """Per run, ms waited for a worker: before planning, before executing, or both."""
        waits = []
        for _, created, planning, queued, executing, _, _ in self.stages.values():
            before_plan, before_exec = planning - created, executing - queued
            wait = {"plan": before_plan, "exec": before_exec}.get(part, before_plan + before_exec)
            waits.append(wait / 1000)
        return waits

    def handovers(self) -> tuple[list[tuple[float, float]], int]:
        """Per run (one at a time), seconds a committed, claimable run waited for a claim.

        Before planning: from the COMMIT of the API's transaction that created
        the run to `planning_at` (stamped when the claim begins). Before
        executing: from the COMMIT of the last engine write transaction that
        completed before `executing_at` (the planner's, which queued the run
        for execution) to `executing_at`. Returned: those two gaps per run, and
        how many runs had no such commits on the timeline (left out).
        """
        gaps = []
        odd = 0
        ordered = sorted(self.runs, key=lambda r: r.sent)
        for number, run in enumerate(ordered):
            end = ordered[number + 1].sent if number + 1 < len(ordered) else float("inf")
            mine = [e for e in self.timeline if e[3] and run.sent <= e[2] < end]
            _, _, planning, queued, executing, _, _ = self.stages[run.run_id]
            if queued == executing:  # the plan's commit moved it on to executing itself
                api = [e[2] for e in mine if e[0] == "api"]
                if len(api) == 1:
                    gaps.append((planning / 1e6 - api[0], 0.0))
                else:
                    odd += 1
                continue
            api = [e[2] for e in mine if e[0] == "api"]
            queued = [
                e[2]
                for e in mine
                if e[0] == "engine worker" and planning / 1e6 <= e[2] <= executing / 1e6
            ]
            if len(api) != 1 or not queued:
                odd += 1
                continue
            gaps.append((planning / 1e6 - api[0], executing / 1e6 - max(queued)))
        return gaps, odd

    def per_run(self, predicate: str) -> float:
        matching = sum(v for k, v in self.counts.items() if predicate_match(k, predicate))
        return matching / len(self.runs)


def predicate_match(key: str, predicate: str) -> bool:
    """`key` is role/kind/end[/changed]; `predicate` fields are ANDed, `*` matches anything."""
    parts = key.split("/")
    wanted = predicate.split("/")
    return all(w == "*" or (i < len(parts) and parts[i] == w) for i, w in enumerate(wanted))


def read_stages(target: Target, ids: list[int]) -> dict[int, Any]:
    conn = target.connect()
    marks = ", ".join([target.mark] * len(ids))
    rows = conn.execute(
        "SELECT id, created_at, planning_at, queued_for_execution_at, executing_at, "
        f"completed_at, status FROM automation_runs WHERE id IN ({marks})",
        ids,
    ).fetchall()
    conn.close()
    failed = [row for row in rows if row[6] != "success"]
    if failed or len(rows) != len(ids):
        raise RuntimeError(f"{len(failed)} runs did not succeed: {failed[:3]}")
    return {row[0]: row for row in rows}


def xid_now(target: Target) -> int:
    """The next transaction id PostgreSQL hands out (this probe takes one itself)."""
    with psycopg.connect(target.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
    assert row is not None
    return int(row[0])


def run_phase(target: Target, clients: int, *, count: int = 0, seconds: float = 0.0) -> Phase:
    """`clients` closed-loop clients: `count` runs one at a time (clients=1), or for `seconds`."""
    runs: list[Triggered] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    xid_before = xid_now(target) if target.backend == "postgresql" else None
    before = target.counts()
    started = time.time()
    stop_at = time.monotonic() + seconds

    with Finisher(target) as finisher:

        def client_loop(number: int) -> None:
            automation = target.automations[number]
            headers = {"X-FilesAPI-Key": target.key}
            try:
                with httpx.Client(base_url=target.api, headers=headers, timeout=60) as client:
                    done = 0
                    while (count and done < count) or (seconds and time.monotonic() < stop_at):
                        if count:
                            time.sleep(0.1)  # every worker idle again, waiting for a wakeup
                        made = trigger(client, automation)
                        finisher.wait(made.run_id)
                        with lock:
                            runs.append(made)
                        done += 1
            except BaseException as exc:  # reported by the caller
                errors.append(exc)

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    phase = Phase(runs, started, count_delta(before, target.counts()))
    phase.timeline = target.timeline
    if xid_before is not None:
        # Two probes: the one before took xid_before, the one after takes the last.
        phase.xids = xid_now(target) - xid_before - 1
    phase.stages = read_stages(target, [r.run_id for r in runs])
    # Two xid probes and the stage read (a connection and a statement each), the
    # finisher's connection and its polls.
    phase.own_transactions = 2 * 2 + 2 + 1 + finisher.queries
    return phase


def burst(target: Target, count: int, senders: int) -> Phase:
    """`count` manual_run POSTs sent as fast as `senders` connections allow, spread over
    the automations; the rate is runs finished per second from the first POST to the
    last `completed_at`."""
    runs: list[Triggered] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    before = target.counts()
    cpu_before = target.cpu_seconds()
    left = list(range(count))
    started = time.time()

    def sender(number: int) -> None:
        headers = {"X-FilesAPI-Key": target.key}
        try:
            with httpx.Client(base_url=target.api, headers=headers, timeout=120) as client:
                while True:
                    with lock:
                        if not left:
                            return
                        index = left.pop()
                    made = trigger(client, target.automations[index % len(target.automations)])
                    with lock:
                        runs.append(made)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    conn = target.connect()
    deadline = time.monotonic() + 300
    while True:
        row = conn.execute(
            "SELECT count(*) FROM automation_runs WHERE run_stage != 'finished'"
        ).fetchone()
        if row[0] == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{row[0]} runs still unfinished after 300 s")
        time.sleep(0.02)
    conn.close()
    phase = Phase(runs, started, count_delta(before, target.counts()))
    phase.cpu = target.cpu_seconds() - cpu_before
    phase.stages = read_stages(target, [r.run_id for r in runs])
    return phase


def pg_xact(target: Target) -> tuple[int, int]:
    assert target.admin_dsn is not None
    with psycopg.connect(target.admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = 'bench'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# ------------------------------------------------------------------ setup


def create_automations(target: Target, count: int) -> None:
    headers = {"X-FilesAPI-Key": target.key}
    with httpx.Client(base_url=target.api, headers=headers, timeout=30) as client:
        for n in range(count):
            reply = client.post(
                f"{API}/automations",
                json={
                    "automation": "create_folder",
                    "name": f"overhead {n}",
                    "destinations": [f"made/overhead-{n}"],
                },
            )
            reply.raise_for_status()
            target.automations.append(reply.json()["id"])


def wait_worker_started(process: CountedProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    log = Path(process.log.name)
    while b"Conveyor worker started" not in log.read_bytes():
        if process.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"conveyor worker did not start; see {log}")
        time.sleep(0.1)


@contextmanager
def conveyor(
    backend: str, clients: int, workers: int = 3, code: Path | None = None
) -> Iterator[Target]:
    """Conveyor on a fresh home; `code`: a `src` folder to run instead of this one."""
    with ExitStack() as stack:
        home = stack.enter_context(conveyor_home(backend, "conveyor-overhead"))
        env = {**home.env, "CONVEYOR_RATE_LIMIT_RATE": "0"}
        if code is not None:
            env["PYTHONPATH"] = str(code)
        processes = []
        # SQLite: the default embedded workers; PostgreSQL: none, the API only.
        serve_env = {**env, "CONVEYOR_EMBEDDED_WORKERS": "0"} if backend == "postgresql" else env
        serve = CountedProcess(["serve"], serve_env, home.path, "serve")
        stack.callback(serve.stop)
        processes.append(serve)
        wait_healthy(home.api, serve)
        if backend == "postgresql":
            for n in range(workers):
                worker = CountedProcess(["worker"], env, home.path, f"worker-{n}")
                stack.callback(worker.stop)
                wait_worker_started(worker)
                processes.append(worker)
        target = Target(backend, home.url, home.api, home.key, processes, admin_dsn=home.admin_dsn)
        create_automations(target, clients)
        make_ceiling_table(target)
        yield target


# ------------------------------------------------------------------ report


def describe_counts(counts: dict[str, int], runs: int) -> list[str]:
    """One line per (role, kind, end, changed) with its count per run."""
    lines = []
    for key in sorted(counts):
        if counts[key]:
            lines.append(f"    {key:<52} {counts[key]:>6}  {counts[key] / runs:6.2f}/run")
    return lines


# ------------------------------------------------------------------ Prefect

# The client: a flow that makes one folder, called one run after another in-process.
PREFECT_CLIENT = """
import json, os, sys, time
from prefect import flow

@flow(name="make-folder", persist_result=False)
def make_folder(path: str) -> None:
    os.makedirs(path, exist_ok=True)

folder, count = sys.argv[1], int(sys.argv[2])
make_folder(folder)  # warm-up: registers the flow
times = []
started = time.perf_counter()
for _ in range(count):
    began = time.perf_counter()
    make_folder(folder)
    times.append(time.perf_counter() - began)
print(json.dumps({"seconds": time.perf_counter() - started, "times": times}))
"""


@dataclass
class Prefect:
    python: str
    version: str
    env: dict[str, str]
    home: Path


def prefect_version(python: str) -> str | None:
    """Prefect's version in `python`, or None when it cannot be imported there."""
    found = subprocess.run(
        [python, "-c", "import prefect; print(prefect.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else None


@contextmanager
def prefect_server(python: str) -> Iterator[Prefect | None]:
    """A local `prefect server` (its default SQLite database in a temp home), or None
    with a message when Prefect is not installed in `python`."""
    version = prefect_version(python)
    if version is None:
        print(
            f"Prefect: skipped, it cannot be imported by {python} (install the bench extra: "
            ".venv/bin/pip install -e '.[bench]', or give --prefect-python)"
        )
        yield None
        return
    with ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix="prefect-bench-"))
        stack.callback(shutil.rmtree, home, True)
        port = free_port()
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        log = stack.enter_context(open(home / "server.log", "wb"))
        command = [str(Path(python).parent / "prefect"), "server", "start"]
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(stop_process, server)
        wait_started(
            server,
            lambda: accepts(port) and _prefect_healthy(port),
            f"prefect server (log: {home / 'server.log'})",
            timeout=180,
        )
        print(f"Prefect {version}: a local `prefect server` (SQLite), flows called in-process")
        yield Prefect(python, version, env, home)


def _prefect_healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def prefect_round(prefect: Prefect, count: int) -> tuple[float, float]:
    """`count` flow runs one after another: (runs/s, median seconds per run)."""
    done = subprocess.run(
        [prefect.python, "-c", PREFECT_CLIENT, str(prefect.home / "made"), str(count)],
        env=prefect.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Prefect client failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return count / result["seconds"], statistics.median(result["times"])


def spread(values: list[float], digits: int = 1) -> str:
    """Median with min and max, as the figures are recorded."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def measure(backend: str, args: argparse.Namespace) -> None:
    print(f"\n== {backend} ==")
    with ExitStack() as stack:
        target = stack.enter_context(conveyor(backend, args.clients, args.workers))
        theirs = None
        if args.baseline_src is not None:
            theirs = stack.enter_context(
                conveyor(backend, args.clients, args.workers, args.baseline_src)
            )
            print(f"baseline code: {args.baseline_src} (its burst and latency in every round)")
        prefect = None
        if backend == "sqlite" and args.prefect_runs:
            prefect = stack.enter_context(prefect_server(args.prefect_python))
        layout = (
            "1 `conveyor serve`, 2 embedded workers"
            if backend == "sqlite"
            else f"1 `conveyor serve` (0 embedded workers) + {args.workers} `conveyor worker`"
        )
        print(f"{layout}; {args.clients} closed-loop clients for the throughput phase")
        ratios: list[float] = []
        writes: list[float] = []
        latency_all: list[float] = []
        shares_all: list[float] = []
        waits_all: list[float] = []
        gaps_all: list[tuple[float, float]] = []
        idle_shares_all: list[float] = []
        bursts: list[float] = []
        created_to_completed: list[float] = []
        prefect_rates: list[float] = []
        prefect_each: list[float] = []
        cpu_per_run: list[float] = []
        base_p50: list[float] = []
        base_bursts: list[float] = []
        base_cpu: list[float] = []
        mine_p50: list[float] = []
        for round_number in range(1, args.rounds + 1):
            one = ceiling(target, 1, args.ceiling_seconds)
            two = ceiling(target, 2, args.ceiling_seconds)
            best = max(one, two)
            latency = run_phase(target, 1, count=args.latency_runs)
            if backend == "postgresql":
                time.sleep(STATS_SETTLE)
                xact_before = pg_xact(target)
                counts_before = target.counts()
            load = run_phase(target, args.clients, seconds=args.seconds)
            ratio = load.rate / best
            ratios.append(ratio)
            write_commits = load.per_run("*/write/commit")
            writes.append(write_commits)
            latency_all += latency.latencies()
            shares_all += latency.wait_shares()
            waits_all += latency.waits_ms()
            gaps, odd = latency.handovers()
            gaps_all += gaps
            created_to_completed += [
                (stage[5] - stage[1]) / 1000 for stage in latency.stages.values()
            ]
            idle_shares_all += [
                (plan + execute) / total
                for (plan, execute), total in zip(gaps, latency.latencies(), strict=False)
            ]
            print(
                f"round {round_number}: ceiling {one:,.0f} tx/s (1 connection), "
                f"{two:,.0f} tx/s (2); {len(load.runs)} runs in {load.seconds:.2f} s = "
                f"{load.rate:.1f} runs/s; runs/s / ceiling = {ratio:.5f} "
                f"(1 run = {best / load.rate:,.0f} bare transactions' time)"
            )
            print(
                f"  throughput phase, per run: {write_commits:.2f} write transactions "
                f"committed ({load.per_run('engine worker/write/commit'):.2f} engine worker, "
                f"{load.per_run('api/write/commit'):.2f} API), "
                f"{load.per_run('*/read/commit'):.2f} read transactions, "
                f"{load.per_run('*/write/rollback'):.2f} write rollbacks"
            )
            print(
                "  of the write transactions, per run: changed rows "
                f"{load.per_run('*/write/commit/changed'):.2f}, changed nothing (a claim "
                f"that found no work) {load.per_run('*/write/commit/unchanged'):.2f}; "
                f"pool checkouts {load.per_run('*/pool/checkout'):.2f}"
            )
            if load.xids is not None:
                print(
                    f"  server: {load.xids} transactions were assigned a transaction id "
                    f"(wrote) = {load.xids / len(load.runs):.2f}/run"
                )
            if backend == "postgresql":
                time.sleep(STATS_SETTLE)
                xact_after = pg_xact(target)
                settled = count_delta(counts_before, target.counts())
                conveyor_commits = sum(
                    v for k, v in settled.items() if predicate_match(k, "*/*/commit")
                )
                checkouts = sum(v for k, v in settled.items() if predicate_match(k, "*/pool"))
                committed = xact_after[0] - xact_before[0]
                print(
                    f"  server: pg_stat_database xact_commit +{committed} "
                    f"(xact_rollback +{xact_after[1] - xact_before[1]}) over the phase and "
                    f"{STATS_SETTLE:.0f} s after it; less the bench's own "
                    f"{load.own_transactions} (polls, probes): {committed - load.own_transactions}"
                    f"; Conveyor's processes counted {conveyor_commits} commits (reads "
                    f"included) and {checkouts} pool checkouts in that window"
                )
            print(
                f"  latency phase ({len(latency.runs)} runs one at a time): median "
                f"{statistics.median(latency.latencies()) * 1000:.1f} ms trigger to finished, "
                f"by the stage stamps {statistics.median(latency.waits_ms()):.1f} ms "
                f"(before planning {statistics.median(latency.waits_ms('plan')):.1f}, before "
                f"executing {statistics.median(latency.waits_ms('exec')):.1f}; median share "
                f"{statistics.median(latency.wait_shares()) * 100:.1f} %); "
                f"{latency.per_run('*/write/commit'):.2f} write transactions/run"
            )
            if gaps:
                print(
                    "  waiting for a worker, from the COMMIT that queued the run to the claim: "
                    f"median {statistics.median(g[0] for g in gaps) * 1000:.2f} ms before "
                    f"planning, {statistics.median(g[1] for g in gaps) * 1000:.2f} ms before "
                    f"executing ({len(gaps)} runs; {odd} with another transaction sequence "
                    "left out)"
                )
            mine_p50.append(
                statistics.median((stage[5] - stage[1]) / 1000 for stage in latency.stages.values())
            )
            if args.burst:
                shot = burst(target, args.burst, args.senders)
                bursts.append(shot.rate)
                cpu_per_run.append(shot.cpu / len(shot.runs) * 1000)
                print(
                    f"  burst: {len(shot.runs)} manual_run calls ({args.senders} connections) "
                    f"finished in {shot.seconds:.2f} s = {shot.rate:.1f} runs/s; "
                    f"{shot.per_run('*/write/commit'):.2f} write and "
                    f"{shot.per_run('*/read/commit'):.2f} read transactions per run; "
                    f"Conveyor's processes used {cpu_per_run[-1]:.2f} ms CPU per run"
                )
            if theirs is not None:
                other = run_phase(theirs, 1, count=args.latency_runs)
                base_p50.append(
                    statistics.median((s[5] - s[1]) / 1000 for s in other.stages.values())
                )
                text = f"  baseline code: created_at to completed_at p50 {base_p50[-1]:.1f} ms"
                if args.burst:
                    their_shot = burst(theirs, args.burst, args.senders)
                    base_bursts.append(their_shot.rate)
                    base_cpu.append(their_shot.cpu / len(their_shot.runs) * 1000)
                    text += (
                        f"; burst {their_shot.rate:.1f} runs/s, "
                        f"{their_shot.per_run('*/write/commit'):.2f} write transactions and "
                        f"{base_cpu[-1]:.2f} ms CPU per run"
                    )
                print(text)
            if prefect is not None:
                rate, each = prefect_round(prefect, args.prefect_runs)
                prefect_rates.append(rate)
                prefect_each.append(each * 1000)
                print(
                    f"  Prefect: {args.prefect_runs} flow runs one after another: "
                    f"{rate:.1f} runs/s, median {each * 1000:.0f} ms per run"
                )
            if args.detail:
                print("  throughput phase transactions by role/kind/end:")
                print("\n".join(describe_counts(load.counts, len(load.runs))))
                print("  latency phase transactions by role/kind/end:")
                print("\n".join(describe_counts(latency.counts, len(latency.runs))))
            sys.stdout.flush()
        print(
            f"{backend}: median runs/s / ceiling tx/s = {statistics.median(ratios):.5f}; "
            f"median write transactions per run = {statistics.median(writes):.2f} (goal <= 8); "
            f"trigger to finished: median {statistics.median(latency_all) * 1000:.1f} ms over "
            f"{len(latency_all)} runs"
        )
        if gaps_all:
            print(
                f"{backend}: waiting for a worker (claimable run, COMMIT to claim): median "
                f"{statistics.median(g[0] for g in gaps_all) * 1000:.2f} ms before planning + "
                f"{statistics.median(g[1] for g in gaps_all) * 1000:.2f} ms before executing; "
                f"median share of trigger to finished "
                f"{statistics.median(idle_shares_all) * 100:.1f} % (goal < 10 %; "
                f"{len(gaps_all)} runs)"
            )
        print(
            f"{backend}: created_at to completed_at, one run at a time (not queued): p50 "
            f"{percentile(created_to_completed, 0.5):.1f} ms, p99 "
            f"{percentile(created_to_completed, 0.99):.1f} ms over "
            f"{len(created_to_completed)} runs (goal: p50 <= 5 ms)"
        )
        if bursts:
            goal = 150 if backend == "sqlite" else 300
            print(
                f"{backend}: burst of {args.burst}: runs/s median {spread(bursts)} over "
                f"{len(bursts)} rounds (goal >= {goal})"
            )
        if cpu_per_run:
            cpu = spread(cpu_per_run, 2)
            print(f"{backend}: burst, ms CPU of Conveyor's processes per run: {cpu}")
        if base_p50:
            p50_ratios = [m / b for m, b in zip(mine_p50, base_p50, strict=True)]
            print(
                f"{backend}: vs the baseline code, same rounds: created_at to completed_at "
                f"p50 this {spread(mine_p50)} ms, baseline {spread(base_p50)} ms, "
                f"this ÷ baseline {spread(p50_ratios, 2)}"
            )
        if base_bursts:
            rate_ratios = [m / b for m, b in zip(bursts, base_bursts, strict=True)]
            cpu_ratios = [m / b for m, b in zip(cpu_per_run, base_cpu, strict=True)]
            print(
                f"{backend}: vs the baseline code, same rounds: burst runs/s this ÷ baseline "
                f"{spread(rate_ratios, 2)} (baseline {spread(base_bursts)}); CPU per run "
                f"this ÷ baseline {spread(cpu_ratios, 2)} (baseline {spread(base_cpu, 2)} ms)"
            )
        if prefect_rates:
            ratios_p = [c / p for c, p in zip(bursts, prefect_rates, strict=False)]
            print(
                f"{backend}: Prefect {prefect.version if prefect else ''}: runs/s median "
                f"{spread(prefect_rates)}, ms per run median {spread(prefect_each, 0)}; "
                f"Conveyor's burst / Prefect, same round: median {spread(ratios_p)} "
                "(goal >= 30)"
            )
        print(f"load average now: {load_average()}")
        print(
            f"{backend}: by the stage stamps (queuing transactions included): median "
            f"{statistics.median(waits_all):.1f} ms = median share "
            f"{statistics.median(shares_all) * 100:.1f} %"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput phase length")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop clients")
    parser.add_argument("--latency-runs", type=int, default=15, help="one-at-a-time runs/round")
    parser.add_argument("--ceiling-seconds", type=float, default=2.0)
    parser.add_argument("--detail", action="store_true", help="transactions by thread role")
    parser.add_argument("--burst", type=int, default=1000, help="manual runs per burst (0: none)")
    parser.add_argument("--senders", type=int, default=8, help="connections sending the burst")
    parser.add_argument("--workers", type=int, default=3, help="PostgreSQL: worker processes")
    parser.add_argument(
        "--prefect-runs", type=int, default=100, help="Prefect flow runs per round (0: none)"
    )
    parser.add_argument(
        "--prefect-python",
        default=sys.executable,
        help="the interpreter Prefect is installed in (default: this one)",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also measure, in each round, Conveyor running the code in this `src` folder "
        "(git -C <main> archive HEAD src | tar -x -C /tmp/base, then /tmp/base/src)",
    )
    args = parser.parse_args()
    print(f"command: .venv/bin/python {COMMAND} {' '.join(sys.argv[1:])}".rstrip())
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        measure(backend, args)


if __name__ == "__main__":
    main()
