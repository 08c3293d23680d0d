"""Cancel latency: from a cancel request to the run's final state, during a large copy.

A real worker (in this process, its own thread, the system clock, default
batching: `outcome_batch_size` 128, `outcome_batch_seconds` 0.2) executes a
copy_file run of FILES files; once its first batch is committed (the copy is
under way: loading a large run's pending operations comes before it), and
after a random delay more (drawn from a seeded generator), this process
requests the cancel as the API does
(`store.run_control.request_cancel` in its own write transaction) and polls
the run every 5 ms until it is finished. The latency is from just before the
request's transaction to the first poll that sees the run finished (so it
includes up to 5 ms of polling); the engine side is the run's own
`completed_at - cancel_requested_at`. Each round is a new run
of the same automation, copying to a fresh folder.

Printed per database: p50 and p99 of the latency over the rounds, the mean
time of one operation during those runs (the delay ÷ the operations it saw
committed),
and the goal: at most the outcome-batch interval (0.2 s) plus one operation.

    .venv/bin/python bench/cancel_latency.py                     # both databases
    .venv/bin/python bench/cancel_latency.py --backend sqlite --rounds 10 --files 5000
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from common import arguments, backends, conveyor_home, load_average, print_machine
from conveyor.config import Settings
from conveyor.domain.errors import AlreadyCompleted
from conveyor.domain.runs import AutomationRun, RunStatus
from conveyor.engine.service import make_engine
from conveyor.engine.worker import Worker
from conveyor.store import automations, run_control, runs, users
from conveyor.store.database import Database

COMMAND = "bench/cancel_latency.py"
# How often the run is read while waiting for it to finish (seconds): often enough
# for the figure, rarely enough not to take the worker's thread's time.
POLL = 0.005


def _wait(db: Database, run_id: int, until: Callable[[AutomationRun], bool]) -> AutomationRun:
    """Read the run every POLL seconds until `until` holds; the run then."""
    while True:
        with db.read() as conn:
            run = runs.get_run(conn, run_id)
        assert run is not None
        if until(run):
            return run
        time.sleep(POLL)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(backend: str, files: int, rounds: int) -> None:
    rng = random.Random(20261207)
    with conveyor_home(backend, "cancel") as home:
        root = home.path / "files"
        for i in range(files):
            folder = root / "in" / f"d{i % 20:02}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i:06}.bin").write_bytes(rng.randbytes(4096))
        settings = replace(Settings.from_env(home.env), storage_root=root)
        db = Database(home.url)
        with db.write() as conn:
            user = users.ensure_user(conn, "bench", False, 0)
        latencies: list[float] = []
        engine_side: list[float] = []  # completed_at - cancel_requested_at (database times)
        requests: list[float] = []  # the request's own write transaction
        per_op: list[float] = []
        finished_first = 0  # rounds whose copy finished before the cancel was sent
        for round_ in range(rounds):
            with db.write() as conn:
                automation = automations.create_automation(
                    conn,
                    user.id,
                    time.time_ns() // 1000,
                    name=f"copy {round_}",
                    automation="copy_file",
                    trigger="manual",
                    path="in",
                    source="**/*",
                    destinations=(f"out-{round_}/",),
                )
                run_id = runs.create_run(conn, automation, time.time_ns() // 1000).id
            context = make_engine(settings, db)
            worker = Worker(context, "bench")
            assert worker.step()  # planned
            thread = threading.Thread(target=worker.step)
            thread.start()
            # Wait for the copy to be under way (its first batch committed), then
            # for a random moment of it; the operations done meanwhile give the
            # time of one operation.
            first = _wait(db, run_id, lambda run: run.successful_operations > 0)
            since = time.perf_counter()
            time.sleep(rng.uniform(0.05, 1.0))
            before = _wait(db, run_id, lambda run: True)
            elapsed = time.perf_counter() - since
            if before.successful_operations > first.successful_operations:
                per_op.append(
                    elapsed / (before.successful_operations - first.successful_operations)
                )
            started = time.perf_counter()
            try:
                with db.write() as conn:
                    now = time.time_ns() // 1000
                    run_control.request_cancel(conn, run_id, by="bench", now=now)
            except AlreadyCompleted:  # the copy finished before the cancel: nothing to time
                finished_first += 1
                thread.join()
                context.db.dispose()
                continue
            requests.append(time.perf_counter() - started)
            run = _wait(db, run_id, lambda run: run.finished)
            latencies.append(time.perf_counter() - started)
            thread.join()
            assert run.completed_at is not None and run.status is RunStatus.CANCELED
            assert run.cancel_requested_at is not None
            engine_side.append((run.completed_at - run.cancel_requested_at) / 1e6)
            context.db.dispose()
        db.dispose()
    if finished_first:
        print(f"{backend}: {finished_first} runs finished before their cancel (not timed)")
    if not latencies:
        print(f"{backend}: no cancel arrived during a copy; use more --files")
        return
    one_op = statistics.mean(per_op)
    goal = settings.outcome_batch_seconds + one_op
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"{backend}: the request's own transaction: p50 "
        f"{percentile(requests, 0.5) * 1000:.0f} ms, p99 {percentile(requests, 0.99) * 1000:.0f} ms"
    )
    print(
        f"{backend}: engine side (the request's commit to the finish's, database times): "
        f"p50 {percentile(engine_side, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(engine_side, 0.99) * 1000:.0f} ms"
    )
    print(
        f"{backend}: {len(latencies)} cancels during a {files}-file copy: latency p50 "
        f"{p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"one operation {one_op * 1000:.2f} ms; goal <= {goal * 1000:.0f} ms "
        f"({'met' if p99 <= goal else 'missed'} at p99)"
    )


def main() -> None:
    args = arguments(
        __doc__.splitlines()[0],
        files={"type": int, "default": 20_000, "help": "files in the copy (default 20,000)"},
        rounds={"type": int, "default": 30, "help": "cancels per database (default 30)"},
    )
    print_machine()
    print(f"load average at start: {load_average()}")
    for backend in backends(args):
        measure(backend, args.files, args.rounds)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
