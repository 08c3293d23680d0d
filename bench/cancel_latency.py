"""Cancel latency: from a cancel request to the run's final state, during a large copy.

A real worker (in this process, its own thread, the system clock, default
batching: `outcome_batch_size` 128, `outcome_batch_seconds` 0.2) executes a
copy_file run of FILES files; after a random delay into the execution (drawn
from a seeded generator) this process requests the cancel as the API does
(`store.run_control.request_cancel` in its own write transaction) and polls
the run every millisecond until it is finished. The latency is from just
before the request's transaction to the first poll that sees the run
finished (so it includes up to 1 ms of polling). Each round is a new run
of the same automation, copying to a fresh folder.

Printed per database: p50 and p99 of the latency over the rounds, the mean
time of one operation during those runs (execution time ÷ operations done),
and the goal: at most the outcome-batch interval (0.2 s) plus one operation.

    .venv/bin/python bench/cancel_latency.py                     # both databases
    .venv/bin/python bench/cancel_latency.py --backend sqlite --rounds 10 --files 5000
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import replace

from common import arguments, backends, conveyor_home, load_average, print_machine
from conveyor.config import Settings
from conveyor.domain.runs import RunStage
from conveyor.engine.service import make_engine
from conveyor.engine.worker import Worker
from conveyor.store import automations, engine, run_control, runs, users
from conveyor.store.database import Database

COMMAND = "bench/cancel_latency.py"


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
        per_op: list[float] = []
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
            while True:  # wait for execution to start
                with db.read() as conn:
                    run = runs.get_run(conn, run_id)
                assert run is not None
                if run.run_stage is RunStage.EXECUTING:
                    break
                time.sleep(0.001)
            time.sleep(rng.uniform(0.05, 1.0))
            started = time.perf_counter()
            with db.write() as conn:
                run_control.request_cancel(conn, run_id, by="bench", now=time.time_ns() // 1000)
            while True:
                with db.read() as conn:
                    run = runs.get_run(conn, run_id)
                assert run is not None
                if run.finished:
                    break
                time.sleep(0.001)
            latencies.append(time.perf_counter() - started)
            thread.join()
            with db.read() as conn:
                times = engine.lease_info(conn, run_id)
            assert times is not None and times.executing_at is not None
            assert run.completed_at is not None and run.status.value == "canceled"
            done = run.successful_operations + run.failed_operations
            if done:
                per_op.append((run.completed_at - times.executing_at) / 1e6 / done)
            context.db.dispose()
        db.dispose()
    one_op = statistics.mean(per_op)
    goal = settings.outcome_batch_seconds + one_op
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"{backend}: {rounds} cancels during a {files}-file copy: latency p50 "
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
