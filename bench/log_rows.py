"""Per-file log rows: what the "Planned #N" and outcome lines cost the engine per file.

In one process, per backend (a SQLite file with Conveyor's settings; a
throwaway durable PostgreSQL), `--rounds` times, taking turns, for a run of
`--files` copy operations:

- **plan**: the planner's commit of its operations, PLAN_CHUNK (2,000) rows per
  transaction, each row holding its `Planned #N` line's place (as
  `planner._insert_chunk` writes them), and the same plus one `run_messages`
  row per line (as before migration 0015);
- **outcomes**: `store.engine.complete_operations` in batches of 128 (one
  transaction each, as the executor commits them), and the same plus one
  `run_messages` row per outcome (as before).

It prints microseconds per file for each variant (median, min-max over the
rounds) and the difference: the per-file cost of log lines stored as message
rows on the database side of the engine, to compare with a file's whole cost
(`copy_throughput.py`).

    .venv/bin/python bench/log_rows.py --backend both --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Connection

from common import load_average, print_machine
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.engine.operations import Action, Kind, Operation
from conveyor.engine.planner import PLAN_CHUNK
from conveyor.store import engine as engine_store
from conveyor.store import migrate, run_log
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, run_messages
from conveyor.testing.postgres import PostgresServer
from conveyor.testing.seed import Seeder

COMMAND = "bench/log_rows.py"
BATCH = 128
WORKER = "bench:1:1"


@contextmanager
def database(backend: str) -> Iterator[Database]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            db = Database(f"sqlite:///{Path(folder) / 'conveyor.db'}")
            migrate.upgrade(db)
            yield db
            db.dispose()
        return
    server = PostgresServer(durable=True).start()
    try:
        db = Database(server.url())
        migrate.upgrade(db)
        yield db
        db.dispose()
    finally:
        server.stop()


def operations(files: int) -> list[Operation]:
    return [
        Operation(
            seq,
            Kind.COPY,
            source=f"src-small/d{seq % 20:02d}/f{seq:06d}.bin",
            destination=f"copies/bench/d{seq % 20:02d}/f{seq:06d}.bin",
            action=Action.WRITE,
            size=4096,
        )
        for seq in range(1, files + 1)
    ]


def executing_run(db: Database, seeder: Seeder, automation: int) -> int:
    run = seeder.run(automation, stage=RunStage.EXECUTING)
    with db.write() as conn:
        conn.execute(
            update(automation_runs)
            .where(automation_runs.c.id == run.id)
            .values(lease_owner=WORKER, lease_generation=1, lease_expires_at=2**62)
        )
    return run.id


def plan(db: Database, run_id: int, ops: list[Operation], lines: bool) -> float:
    """Seconds to commit the plan's operations (plus Planned message rows if `lines`)."""
    started = time.perf_counter()
    for start in range(0, len(ops), PLAN_CHUNK):
        chunk = ops[start : start + PLAN_CHUNK]

        def work(conn: Connection, chunk: list[Operation] = chunk) -> None:
            now = time.time_ns() // 1000
            after = run_log.anchor(conn, run_id)
            engine_store.insert_operations(
                conn,
                run_id,
                [
                    {
                        "seq": op.seq,
                        "kind": op.kind.value,
                        "source": op.source,
                        "destination": op.destination,
                        "detail": op.detail(),
                        "planned_at": now,
                        "planned_after": after,
                    }
                    for op in chunk
                ],
            )
            if lines:
                text = [(MessageLevel.INFO, f"Planned #{op.seq}: {op.describe()}.") for op in chunk]
                engine_store.insert_messages(conn, run_id, now, text)

        db.run_write(work)
    return time.perf_counter() - started


def outcomes(db: Database, run_id: int, ops: list[Operation], lines: bool) -> float:
    """Seconds to commit every operation's outcome in batches (plus message rows if `lines`)."""
    with db.read() as conn:
        ids = [row.id for row in engine_store.pending_operations(conn, run_id)]
    started = time.perf_counter()
    for start in range(0, len(ops), BATCH):
        batch = []
        for op, op_id in zip(ops[start : start + BATCH], ids[start : start + BATCH], strict=True):
            message = f"Copied {op.source} to {op.destination} (4096 bytes)."
            at = time.time_ns() // 1000
            batch.append(
                engine_store.OperationOutcome(op_id, "done", True, at, message, op.detail(message))
            )

        def work(conn: Connection, batch: list[engine_store.OperationOutcome] = batch) -> None:
            engine_store.complete_operations(conn, run_id, WORKER, 1, 2**62, batch)
            if lines:
                conn.execute(
                    run_messages.insert(),
                    [
                        {
                            "run_id": run_id,
                            "created_at": o.finished_at,
                            "level": "info",
                            "message": o.message,
                        }
                        for o in batch
                    ],
                )

        db.run_write(work)
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def measure(backend: str, files: int, rounds: int) -> None:
    ops = operations(files)
    with database(backend) as db:
        seeder = Seeder(db)
        owner = seeder.account("bench", admin=True)
        automation = seeder.automation(owner, "log rows")
        results: dict[tuple[str, bool], list[float]] = {
            (phase, lines): [] for phase in ("plan", "outcomes") for lines in (True, False)
        }
        for number in range(rounds + 1):  # round 0 warms up, not counted
            for lines in (True, False) if number % 2 else (False, True):
                run_id = executing_run(db, seeder, automation)
                planned = plan(db, run_id, ops, lines)
                done = outcomes(db, run_id, ops, lines)
                if number:
                    results["plan", lines].append(planned / files * 1e6)
                    results["outcomes", lines].append(done / files * 1e6)
        for phase in ("plan", "outcomes"):
            with_lines, without = results[phase, True], results[phase, False]
            saved = [a - b for a, b in zip(with_lines, without, strict=True)]
            print(
                f"{backend}/{phase}: µs per file with message rows {spread(with_lines)}, "
                f"without {spread(without)}; the message rows cost {spread(saved)} µs per file "
                f"({statistics.median(saved) / statistics.median(with_lines) * 100:.0f} % "
                f"of this phase)  [median (min-max) of {rounds} rounds]"
            )
        total = [results["plan", True][i] + results["outcomes", True][i] for i in range(rounds)]
        bare = [results["plan", False][i] + results["outcomes", False][i] for i in range(rounds)]
        print(
            f"{backend}: database work per file {spread(total)} µs with message rows (before), "
            f"{spread(bare)} µs without (now)"
        )
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=4000)
    args = parser.parse_args()
    print(f"command: .venv/bin/python {COMMAND} {' '.join(sys.argv[1:])}".rstrip())
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        measure(backend, args.files, args.rounds)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
