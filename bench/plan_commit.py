"""The longest wait of another writer while the largest allowed plan is committed.

A copy_file automation over FILES files with DESTINATIONS destinations plans
FILES x DESTINATIONS operations (the default, 10,000 x 10 = 100,000, is
CONVEYOR_MAX_OPERATIONS_PER_RUN's default: the largest plan a run may have).
A real worker (in this process) plans the run and commits the plan; meanwhile
another process, standing for another user's PATCH, runs one small write
transaction after another on the same database (an UPDATE of an automation's
name) and records how long each took from begin to commit. Printed: the
longest and the 99th-percentile write while the plan was being committed, the
planning time, and the same with the plan committed in one transaction
(PLAN_CHUNK set past the plan's size), for comparison.

    .venv/bin/python bench/plan_commit.py --backend sqlite
    .venv/bin/python bench/plan_commit.py --backend sqlite --files 2000   # quick
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import threading
import time
from dataclasses import replace
from typing import Any

from sqlalchemy import update

from common import conveyor_home, load_average, print_machine
from conveyor.config import Settings
from conveyor.engine import planner
from conveyor.engine.service import make_engine
from conveyor.engine.worker import Worker
from conveyor.store import automations, runs, users
from conveyor.store.database import Database
from conveyor.store.schema import automations as automations_t


def writer(url: str, automation_id: int, ready: Any, stop: Any, results: Any) -> None:
    """Another user's writes: one small transaction after another until told to stop;
    puts (start, seconds) of each, start in time.time()."""
    db = Database(url, null_pool=True)
    waits: list[tuple[float, float]] = []
    n = 0
    while not stop.is_set():
        n += 1
        started = time.time()
        # As the API's PATCH does: run_write, which retries while SQLite stays busy
        # past its 5 s busy timeout; the figure is the whole wait.
        db.run_write(
            lambda conn, n=n: conn.execute(
                update(automations_t)
                .where(automations_t.c.id == automation_id)
                .values(name=f"renamed {n}")
            )
        )
        waits.append((started, time.time() - started))
        ready.set()
        time.sleep(0.005)
    results.put(waits)
    db.dispose()


def measure(backend: str, files: int, destinations: int, chunk: int) -> None:
    with conveyor_home(backend, "plan-commit") as home:
        root = home.path / "files"
        (root / "in").mkdir(parents=True)
        for i in range(files):
            (root / "in" / f"f{i:06}.txt").write_bytes(b"x")
        settings = replace(
            Settings.from_env({"CONVEYOR_HOME": str(home.path), "CONVEYOR_DATABASE_URL": home.url}),
            storage_root=root,
        )
        db = Database(home.url)
        now = int(time.time() * 1e6)
        with db.write() as conn:
            user_id = users.ensure_user(conn, "bench", False, now).id
            big = automations.create_automation(
                conn,
                user_id,
                now,
                name="big",
                automation="copy_file",
                trigger="manual",
                path="in",
                source="*.txt",
                destinations=tuple(f"out{d}/" for d in range(destinations)),
            )
            other = automations.create_automation(
                conn,
                user_id,
                now,
                name="other",
                automation="create_folder",
                trigger="manual",
                destinations=("made",),
            )
            run_id = runs.create_run(conn, big, now, now).id
        planner.PLAN_CHUNK = chunk
        engine = make_engine(settings, db)
        held: list[float] = []  # how long each of the planner's write transactions took
        run_write = engine.db.run_write  # the engine's own connections (make_engine)
        planning_thread = threading.get_ident()

        def timed(work: Any, *args: Any, **kwargs: Any) -> Any:
            begun = time.perf_counter()
            try:
                return run_write(work, *args, **kwargs)
            finally:
                if threading.get_ident() == planning_thread:  # not the lease's heartbeat
                    held.append(time.perf_counter() - begun)

        engine.db.run_write = timed  # type: ignore[method-assign]
        context = multiprocessing.get_context("spawn")
        ready, stop, results = context.Event(), context.Event(), context.Queue()
        process = context.Process(target=writer, args=(home.url, other, ready, stop, results))
        process.start()
        assert ready.wait(120), "the writer did not start"
        started = time.time()
        Worker(engine, "bench").step()  # claims and plans the run (the only one)
        ended = time.time()
        took = ended - started
        stop.set()
        # The writes that overlapped planning and its commit.
        waits = [w for s, w in results.get(timeout=300) if s < ended and s + w > started]
        process.join(60)
        with db.read() as conn:
            run = runs.get_run(conn, run_id)
        assert run is not None and run.run_stage.value == "queued_for_execution", run
        during = sorted(waits)
        p99 = during[int(len(during) * 0.99) - 1] if len(during) >= 100 else during[-1]
        print(
            f"{backend:<10} plan of {files * destinations:,} operations "
            f"(PLAN_CHUNK {chunk:,}): planned and committed in {took:.1f} s; the other "
            f"writer's {len(waits)} transactions: longest {max(waits) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, median {statistics.median(waits) * 1000:.1f} ms; "
            f"the planner's longest write transaction {max(held) * 1000:.0f} ms "
            f"({len(held)} in all)",
            flush=True,
        )
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--destinations", type=int, default=10)
    args = parser.parse_args()
    print_machine()
    chunked = planner.PLAN_CHUNK
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        measure(backend, args.files, args.destinations, chunked)
        measure(backend, args.files, args.destinations, 10**9)  # one transaction
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
