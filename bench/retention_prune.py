"""Pruning 1,000,000 expired runs while the API answers: the longest request during it.

Seeds (or reuses, copied) the benchmark database of bench/common.py: by default
2 x 500,000 runs, all but the newest 20 finished, plus one status message for
every fourth run. A ManualClock 200 days later makes every finished run
expired (retention 90 days). Conveyor's API runs as a server subprocess;
four client threads list and find runs before and during the prune, which
runs here through the real Pruner (batches of CONVEYOR_RETENTION_BATCH_SIZE,
CONVEYOR_RETENTION_PAUSE between them).

    python bench/retention_prune.py --backend sqlite --runs 500000
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx

from common import (
    START_US,
    Seeded,
    ServerProcess,
    arguments,
    backends,
    print_machine,
    seeded,
)
from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.domain.retention import DAY_US
from conveyor.engine.retention import Pruner
from conveyor.store.database import Database

CLIENTS = 4


def hammer(url: str, db: Seeded, stop: threading.Event, out: list[float], seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, headers={"X-FilesAPI-Key": db.api_key}, timeout=120) as client:
        while not stop.is_set():
            if rng.random() < 0.5:
                path = f"/api/rest/v1/automation_runs?automation_id={db.automation_id}&per_page=100"
            else:
                path = f"/api/rest/v1/automation_runs/{rng.randint(1, 2 * db.runs)}"
            started = time.perf_counter()
            reply = client.get(path)
            out.append(time.perf_counter() - started)
            if reply.status_code not in (200, 404):
                raise RuntimeError(f"{path}: {reply.status_code} {reply.text[:200]}")


def measure(url: str, db: Seeded, work: object) -> tuple[list[float], float]:
    """Run `work()` (or sleep `work` seconds) while CLIENTS threads call the API."""
    stop = threading.Event()
    samples: list[list[float]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=hammer, args=(url, db, stop, samples[n], n)) for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    if callable(work):
        work()
    else:
        time.sleep(float(work))  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    return [value for values in samples for value in values], elapsed


def describe(name: str, values: list[float], seconds: float) -> None:
    ordered = sorted(values)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    print(
        f"{name:<14} {len(values):>7,} requests in {seconds:6.1f} s; p50 "
        f"{statistics.median(values) * 1000:6.1f} ms, p99 {p99 * 1000:7.1f} ms, "
        f"longest {ordered[-1] * 1000:7.1f} ms"
    )


def add_messages(db: Seeded) -> None:
    conn = db.connect()
    conn.execute(
        "INSERT INTO run_messages (run_id, created_at, level, message) "
        "SELECT id, created_at, 'info', 'copied in/a.txt to out/a.txt' "
        "FROM automation_runs WHERE id % 4 = 0"
    )
    conn.commit()
    conn.close()


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    print_machine()
    for backend in backends(args):
        with seeded(backend, args.runs) as source:
            work_dir = Path(tempfile.mkdtemp(prefix="conveyor-prune-"))
            db = source
            if backend == "sqlite":
                # The seeded file is shared with other benchmarks: prune a copy.
                copy = work_dir / "prune.sqlite"
                shutil.copyfile(source.url.removeprefix("sqlite:///"), copy)
                db = replace(source, url=f"sqlite:///{copy}")
            add_messages(db)
            settings = Settings.from_env(
                {"CONVEYOR_HOME": str(work_dir / "home"), "CONVEYOR_DATABASE_URL": db.url}
            )
            print(
                f"\n== {backend}: {2 * db.runs:,} runs, retention {settings.retention_days} days, "
                f"batches of {settings.retention_batch_size}, pause {settings.retention_pause} s =="
            )
            clock = ManualClock(START_US + 200 * DAY_US)
            database = Database(db.url)
            pruner = Pruner(database, clock, settings)
            pruned: list[int] = []
            with ServerProcess("conveyor", db, work_dir / "home") as server:
                before, seconds = measure(server.url, db, 10)
                describe("before prune", before, seconds)
                during, seconds = measure(
                    server.url, db, lambda p=pruner, out=pruned: out.append(p.prune())
                )
                describe("during prune", during, seconds)
            batches = -(-pruned[0] // settings.retention_batch_size)
            print(
                f"pruned {pruned[0]:,} runs in {seconds:.1f} s ({pruned[0] / seconds:,.0f} runs/s, "
                f"{batches:,} batches)"
            )
            conn = db.connect()
            left = conn.execute("SELECT count(*) FROM automation_runs").fetchone()[0]
            unfinished = conn.execute(
                "SELECT count(*) FROM automation_runs WHERE run_stage <> 'finished'"
            ).fetchone()[0]
            messages = conn.execute("SELECT count(*) FROM run_messages").fetchone()[0]
            conn.close()
            print(f"left: {left} runs ({unfinished} unfinished), {messages} status messages")
            database.dispose()
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
