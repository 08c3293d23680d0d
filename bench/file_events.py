"""File-event latency: from a file's write completing to its run being finished.

Runs the real `conveyor serve` (API, embedded workers, scheduler, file
watcher) as a subprocess on SQLite and on a durable PostgreSQL server, with
a `copy_file` automation triggered by `create` under `in/`. The script
writes one 64 KiB file at a time and reads the database for the run that
names it: latency = the run's completed_at minus the moment the write
returned (both from this machine's clock). The figure is the median latency
as a multiple of the debounce interval (goal <= 2x), for several intervals.
A burst of 1,000 files then gives the number of runs it became and the time
from the last write to the last run finished, again in debounce intervals.

    .venv/bin/python bench/file_events.py                    # recorded
    .venv/bin/python bench/file_events.py --backend sqlite --files 5 --debounce 0.5   # quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import select

from common import print_machine, stop_process
from conveyor.clock import SystemClock
from conveyor.domain.automations import validate_fields
from conveyor.store import automations, migrate, users
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, run_inputs
from conveyor.testing.postgres import PostgresServer, free_port

PAYLOAD = os.urandom(64 * 1024)


@contextmanager
def database_url(backend: str, home: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{home / 'conveyor.db'}"
    else:
        with PostgresServer(durable=True) as server:
            yield server.create_database("bench")


@contextmanager
def serve(url: str, home: Path, root: Path, debounce: float) -> Iterator[None]:
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(home),
        "CONVEYOR_DATABASE_URL": url,
        "CONVEYOR_STORAGE_ROOT": str(root),
        "CONVEYOR_PORT": str(free_port()),
        "CONVEYOR_EMBEDDED_WORKERS": "2",
        "CONVEYOR_WATCH_DEBOUNCE": str(debounce),
        "CONVEYOR_RATE_LIMIT_RATE": "0",
    }
    with open(home / f"serve-{debounce}.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli.main", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            stop_process(process)


def finished_run_for(db: Database, path: str) -> tuple[int, int] | None:
    """(created_at, completed_at) of the finished run whose files include `path`."""
    with db.read() as conn:
        rows = conn.execute(
            select(
                automation_runs.c.created_at, automation_runs.c.completed_at, run_inputs.c.payload
            )
            .join(run_inputs, run_inputs.c.run_id == automation_runs.c.id)
            .where(automation_runs.c.run_stage == "finished")
            .order_by(automation_runs.c.id.desc())
            .limit(50)
        )
        for created, completed, payload in rows:
            if any(entry["path"] == path for entry in orjson.loads(payload)["files"]):
                return created, completed
    return None


def wait_for(db: Database, path: str, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        found = finished_run_for(db, path)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"no finished run for {path} within {timeout} s")
        time.sleep(0.01)


def watching(db: Database) -> bool:
    from conveyor.store.triggers import list_watch_roots

    with db.read() as conn:
        return "in" in list_watch_roots(conn)


def measure(backend: str, debounces: list[float], files: int, burst: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        root = home / "files"
        (root / "in").mkdir(parents=True)
        with database_url(backend, home) as url:
            db = Database(url)
            migrate.upgrade(db)
            clock = SystemClock()
            with db.write() as conn:
                user = users.ensure_user(conn, "bench", True, clock.now()).id
                values = validate_fields(
                    {
                        "automation": "copy_file",
                        "path": "in",
                        "source": "*",
                        "destinations": ["out/"],
                        "trigger": "action",
                        "trigger_actions": ["create"],
                    }
                )
                automations.create_automation(conn, user, clock.now(), **values)
            print(f"\n{backend}: copy_file on create under in/, 64 KiB files, one at a time")
            print(
                f"  {'debounce s':>10} {'files':>6} {'median to run created':>22} "
                f"{'median to finished':>19} {'x debounce':>11}"
            )
            for debounce in debounces:
                with serve(url, home, root, debounce):
                    deadline = time.monotonic() + 60
                    while not watching(db):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the server never started watching in/")
                        time.sleep(0.05)
                    time.sleep(2 * debounce)  # the watcher's start-up comparison is done
                    created, done = [], []
                    for n in range(files):
                        name = f"in/d{debounce}-{n:03d}.bin"
                        with open(root / name, "wb") as handle:
                            handle.write(PAYLOAD)
                        wrote = clock.now()
                        made, completed = wait_for(db, name, 30 + 10 * debounce)
                        created.append((made - wrote) / 1e6)
                        done.append((completed - wrote) / 1e6)
                    median_done = statistics.median(done)
                    print(
                        f"  {debounce:10.2f} {files:6} {statistics.median(created):21.3f}s "
                        f"{median_done:18.3f}s {median_done / debounce:10.2f}x"
                    )
                    if debounce == debounces[-1] and burst:
                        burst_figures(db, root, debounce, burst, clock)
            db.dispose()


def burst_figures(
    db: Database, root: Path, debounce: float, count: int, clock: SystemClock
) -> None:
    with db.read() as conn:
        before = conn.execute(
            select(automation_runs.c.id).order_by(automation_runs.c.id.desc()).limit(1)
        ).scalar_one()
    names = [f"in/burst-{n:05d}.txt" for n in range(count)]
    for name in names:
        (root / name).write_bytes(name.encode())
    wrote = clock.now()
    deadline = time.monotonic() + 300
    while True:
        with db.read() as conn:
            rows = list(
                conn.execute(
                    select(
                        automation_runs.c.run_stage,
                        automation_runs.c.completed_at,
                        run_inputs.c.payload,
                        automation_runs.c.created_at,
                    )
                    .join(run_inputs, run_inputs.c.run_id == automation_runs.c.id)
                    .where(automation_runs.c.id > before)
                )
            )
        listed = [e["path"] for _s, _c, p, _m in rows for e in orjson.loads(p)["files"]]
        if len(listed) >= count and all(row[0] == "finished" for row in rows):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the burst was not handled within 300 s")
        time.sleep(0.05)
    assert sorted(listed) == names, "a burst file was missed or listed twice"
    last = max(row[1] for row in rows)
    made = max(row[3] for row in rows)
    copied = sum(1 for name in names if (root / "out" / name.removeprefix("in/")).exists())
    print(
        f"  burst: {count:,} files written in a loop became {len(rows)} run(s), every file "
        f"listed once, {copied:,} copied. After the last write: last run created "
        f"{(made - wrote) / 1e6:.2f} s = {(made - wrote) / 1e6 / debounce:.2f}x debounce; "
        f"last run finished {(last - wrote) / 1e6:.2f} s (the engine copying {count:,} files)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--files", type=int, default=15, help="files per debounce interval")
    parser.add_argument("--debounce", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        measure(backend, args.debounce, args.files, args.burst)


if __name__ == "__main__":
    main()
