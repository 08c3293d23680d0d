"""Bounded load test: 50 concurrent clients against `conveyor serve` with its engine busy.

Each client mixes list (with a next-page follow), find, manual_run and
status-message log reads over real HTTP on 127.0.0.1, for `--seconds`;
then the script waits (bounded) for every run it created to finish. A 429
is the intended rate limit: it is counted and the client waits its
Retry-After; anything else that is not 2xx is an error. On SQLite a
`conveyor db backup` is taken halfway through, then checked: it passes
PRAGMA integrity_check and holds every run finished before it began.

    python bench/load.py --backend sqlite        # one `conveyor serve` (2 embedded workers)
    python bench/load.py --backend postgresql    # two `conveyor serve` on one PostgreSQL

Prints p50/p99 latency per request kind, counts, errors; exits 1 on any
error or unfinished run. Everything listens on 127.0.0.1 and stops by itself
(setup excluded, at most --seconds + --drain seconds of load and waiting).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from common import print_machine, stop_process, wait_healthy
from conveyor.domain.permissions import Level
from conveyor.store import migrate, permissions, users
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer, free_port

API = "/api/rest/v1"
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
KEYS = 10  # clients share keys five to one, so the per-key limit is really exercised
AUTOMATIONS = 8
INPUT_FILES = 6


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    limited: int = 0
    errors: list[str] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ServeProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [CONVEYOR, "serve", "--port", str(self.port)],
            env={**env, "CONVEYOR_PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_healthy(self.url, self)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


def prepare(url: str, storage: Path) -> tuple[list[str], list[int]]:
    """Migrate; API keys for one user; automations that copy and make folders."""
    db = Database(url, null_pool=True)
    migrate.upgrade(db)
    now = time.time_ns() // 1000
    with db.write() as conn:
        user = users.ensure_user(conn, "load", False, now)
        keys = [users.create_api_key(conn, user.id, now) for _ in range(KEYS)]
        # A non-admin with folder permissions on the whole storage (docs/permissions.md).
        permissions.ensure_grant(conn, user.id, "", Level.FULL, now)
    db.dispose()
    (storage / "in").mkdir(parents=True, exist_ok=True)
    for n in range(INPUT_FILES):
        (storage / "in" / f"file-{n}.txt").write_text(f"load test input {n}\n" * 50)
    return keys, []


def create_automations(base: str, key: str) -> list[int]:
    ids = []
    with httpx.Client(base_url=base, headers={"X-FilesAPI-Key": key}, timeout=30) as client:
        for n in range(AUTOMATIONS):
            if n % 2:
                body = {
                    "automation": "copy_file",
                    "name": f"copy {n}",
                    "source": "in/*.txt",
                    "destinations": [f"out/{n}/%Y-%m-%d/"],
                    "overwrite_files": True,
                }
            else:
                body = {
                    "automation": "create_folder",
                    "name": f"folders {n}",
                    "destinations": [f"made/{n}/a/", f"made/{n}/b/", f"made/{n}/c/"],
                }
            reply = client.post(f"{API}/automations", json=body)
            reply.raise_for_status()
            ids.append(reply.json()["id"])
    return ids


def client_loop(
    number: int,
    urls: list[str],
    keys: list[str],
    automations: list[int],
    stop_at: float,
    tally: Tally,
) -> None:
    rng = random.Random(number)
    base = urls[number % len(urls)]
    known: list[int] = []
    logs: list[str] = []
    headers = {"X-FilesAPI-Key": keys[number % len(keys)]}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while time.monotonic() < stop_at:
            roll = rng.random()
            automation = rng.choice(automations)
            if roll < 0.45:
                kind, method = "list", "GET"
                path = f"{API}/automation_runs?automation_id={automation}&per_page=50"
            elif roll < 0.70 and known:
                kind, method, path = "find", "GET", f"{API}/automation_runs/{rng.choice(known)}"
            elif roll < 0.93 and logs:
                kind, method, path = "log", "GET", rng.choice(logs)
            elif roll < 0.93:
                continue  # nothing to find or read yet: the next roll decides again
            else:
                kind, method = "manual_run", "POST"
                path = f"{API}/automations/{automation}/manual_run"
            started = time.perf_counter()
            try:
                reply = client.request(method, path)
            except httpx.HTTPError as exc:
                with tally.lock:
                    tally.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            if reply.status_code == 429:
                wait = float(reply.headers.get("Retry-After", "1"))
                with tally.lock:
                    tally.limited += 1
                time.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
                continue
            if reply.status_code >= 300:
                with tally.lock:
                    tally.errors.append(f"{kind} {path}: {reply.status_code} {reply.text[:200]}")
                continue
            with tally.lock:
                tally.latencies[kind].append(elapsed)
            if kind == "manual_run":
                run = reply.json()
                known.append(run["id"])
                with tally.lock:
                    tally.created.append(run["id"])
            elif kind == "list":
                for run in reply.json()[:5]:
                    known.append(run["id"])
                    logs.append(run["status_messages_url"].removeprefix(base))
                cursor = reply.headers.get("X-Files-Cursor-Next")
                if cursor:
                    page = client.get(
                        f"{API}/automation_runs",
                        params={"automation_id": automation, "per_page": 50, "cursor": cursor},
                    )
                    if page.status_code not in (200, 429):
                        with tally.lock:
                            tally.errors.append(f"list next page: {page.status_code}")
            del known[:-200], logs[:-50]


def finished_ids_sqlite(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {
            r[0] for r in conn.execute("SELECT id FROM automation_runs WHERE run_stage='finished'")
        }
    finally:
        conn.close()


def backup_during_load(
    db_path: Path, env: dict[str, str], target: Path, report: dict[str, Any]
) -> None:
    before = finished_ids_sqlite(db_path)
    started = time.perf_counter()
    result = subprocess.run(
        [CONVEYOR, "db", "backup", str(target)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report["seconds"] = time.perf_counter() - started
    report["output"] = (result.stdout or result.stderr).strip()
    if result.returncode != 0:
        report["error"] = f"backup failed: {result.stderr.strip()}"
        return
    conn = sqlite3.connect(target)
    report["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    after = finished_ids_sqlite(target)
    report["finished_before"] = len(before)
    report["missing"] = len(before - after)
    report["in_backup"] = len(after)


def wait_finished(url: str, key: str, created: list[int], drain: float) -> tuple[int, float]:
    """Poll until every created run is finished; returns (unfinished, seconds waited)."""
    started = time.monotonic()
    pending = set(created)
    with httpx.Client(base_url=url, headers={"X-FilesAPI-Key": key}, timeout=30) as client:
        while pending and time.monotonic() - started < drain:
            for run_id in list(pending)[:200]:
                reply = client.get(f"{API}/automation_runs/{run_id}")
                if reply.status_code == 429:
                    time.sleep(float(reply.headers.get("Retry-After", "1")))
                    break
                if reply.status_code == 200 and reply.json()["run_stage"] == "finished":
                    pending.discard(run_id)
            else:
                if pending:
                    time.sleep(0.5)
    return len(pending), time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(backend: str, args: argparse.Namespace) -> bool:
    print(f"\n== {backend}: {args.clients} clients, {args.seconds:.0f} s ==")
    with ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix=f"conveyor-load-{backend}-"))
        stack.callback(shutil.rmtree, home, True)
        env = {
            **os.environ,
            "CONVEYOR_HOME": str(home),
            "CONVEYOR_LOG_LEVEL": "warning",
            "CONVEYOR_EMBEDDED_WORKERS": str(args.workers),
            "CONVEYOR_POLL_INTERVAL": "0.2",
            # Lower than the default, so that the intended 429s really happen.
            "CONVEYOR_RATE_LIMIT_RATE": str(args.rate_limit),
            "CONVEYOR_RATE_LIMIT_BURST": str(args.burst),
        }
        if backend == "postgresql":
            server = PostgresServer(durable=True).start()
            stack.callback(server.stop)
            env["CONVEYOR_DATABASE_URL"] = server.create_database("load")
            processes = 2
        else:
            env["CONVEYOR_DATABASE_URL"] = f"sqlite:///{home / 'conveyor.db'}"
            processes = 1
        metrics = home / "prometheus"
        metrics.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        keys, _ = prepare(env["CONVEYOR_DATABASE_URL"], home / "files")
        serves = []
        for n in range(processes):
            serve = ServeProcess(env, home / f"serve-{n}.log")
            stack.callback(serve.stop)
            serves.append(serve)
        urls = [serve.url for serve in serves]
        automations = create_automations(urls[0], keys[0])
        tally = Tally()
        stop_at = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client_loop, args=(n, urls, keys, automations, stop_at, tally))
            for n in range(args.clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        backup: dict[str, Any] = {}
        if backend == "sqlite" and args.backup:
            time.sleep(args.seconds / 2)
            backup_during_load(home / "conveyor.db", env, home / "backup.db", backup)
        for thread in threads:
            thread.join()
        load_seconds = time.monotonic() - started
        unfinished, waited = wait_finished(urls[-1], keys[-1], tally.created, args.drain)
        scrape = httpx.get(f"{urls[0]}/metrics", timeout=30).text

    total = sum(len(v) for v in tally.latencies.values())
    print(
        f"requests answered 2xx: {total:,} in {load_seconds:.1f} s ({total / load_seconds:,.0f}/s)"
    )
    print(f"{'kind':<11} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    everything: list[float] = []
    for kind in ("list", "find", "manual_run", "log"):
        values = tally.latencies.get(kind, [])
        everything += values
        print(
            f"{kind:<11} {len(values):>7,} {percentile(values, 0.5) * 1000:>8.1f} "
            f"{percentile(values, 0.99) * 1000:>8.1f} {max(values, default=0) * 1000:>8.1f}"
        )
    print(
        f"{'all':<11} {len(everything):>7,} {statistics.median(everything) * 1000:>8.1f} "
        f"{percentile(everything, 0.99) * 1000:>8.1f} {max(everything) * 1000:>8.1f}"
    )
    print(f"intended 429s: {tally.limited:,}; errors: {len(tally.errors)}")
    for error in tally.errors[:10]:
        print(f"  error: {error}")
    print(
        f"runs created: {len(tally.created):,}; unfinished after {waited:.1f} s of waiting: "
        f"{unfinished}"
    )
    finished = [
        line for line in scrape.splitlines() if line.startswith("conveyor_runs_finished_total")
    ]
    print("server metrics (all processes): " + "; ".join(finished))
    ok = not tally.errors and unfinished == 0
    if backup:
        print(
            f"backup during load: {backup.get('output')} in {backup.get('seconds', 0):.2f} s; "
            f"integrity_check={backup.get('integrity')}; finished before it began: "
            f"{backup.get('finished_before')}, missing from it: {backup.get('missing')}"
        )
        ok = ok and backup.get("integrity") == "ok" and backup.get("missing") == 0
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration")
    parser.add_argument("--drain", type=float, default=40.0, help="max wait for runs to finish")
    parser.add_argument("--workers", type=int, default=2, help="embedded workers per process")
    parser.add_argument("--rate-limit", type=float, default=15.0, help="requests/s per API key")
    parser.add_argument("--burst", type=int, default=30, help="bucket size per API key")
    parser.add_argument("--no-backup", dest="backup", action="store_false")
    args = parser.parse_args()
    if args.seconds + args.drain > 60:
        parser.error("--seconds + --drain must stay within 60 s")
    print_machine()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run(backend, args) for backend in backends]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
