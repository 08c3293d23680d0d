"""Scheduler cost: one pass over 10,000 scheduled automations, its time and its statements.

Seeds N automations (half `daily` with every interval, half `custom_schedule`,
across time zones) on SQLite and on a durable PostgreSQL server, then times
real scheduler passes (`conveyor.engine.scheduler.run_pass`) with a
ManualClock, counting every statement sent to the database with a SQLAlchemy
`before_cursor_execute` listener:

- first pass: every automation is new to the scheduler (state for all N);
- quiet pass: nothing due, nothing changed (the pass every second costs this);
- minute pass: the clock moves one minute; the automations due then run;
- midnight pass: N more automations all due at 00:00 UTC at once (the worst case).

The baseline is one read of all N automation rows (what a scheduler that
looked at every automation each pass would at least pay); passes are
reported as a ratio of it. The statement count is also measured at N/100
automations: the goal is the same count, not one per automation.

    .venv/bin/python bench/scheduler.py                 # recorded: 10,000 automations
    .venv/bin/python bench/scheduler.py --automations 1000 --backend sqlite   # quick
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from common import print_machine
from conveyor.clock import ManualClock, from_datetime
from conveyor.domain.automations import INTERVALS, validate_fields
from conveyor.engine.scheduler import PassResult, run_pass
from conveyor.store import automations, migrate, users
from conveyor.store.automations import SELECT_COLUMNS
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer

# Wednesday 2024-05-15 12:00:30 UTC: between slots, away from DST changes.
START = from_datetime(datetime(2024, 5, 15, 12, 0, 30, tzinfo=UTC))
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Eastern Time (US & Canada)",
    "Berlin",
]
LIMITS = {"week": (0, 6), "month": (1, 31), "quarter": (1, 92), "year": (1, 366)}


def automation_bodies(count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for n in range(count):
        times = sorted(
            {f"{rng.randrange(24):02d}:{rng.randrange(60):02d}" for _ in range(rng.randint(1, 3))}
        )
        body: dict[str, Any] = {
            "automation": "create_folder",
            "destinations": [f"d{n}"],
            "schedule_times_of_day": times,
            "schedule_time_zone": rng.choice(ZONES),
        }
        if n % 2:
            body.update(
                trigger="custom_schedule",
                schedule_days_of_week=rng.sample(range(7), rng.randint(1, 7)),
            )
        else:
            interval = rng.choice(INTERVALS)
            body.update(trigger="daily", interval=interval)
            if interval in LIMITS:
                body["recurring_day"] = rng.randint(*LIMITS[interval])
        yield body


def seed(db: Database, bodies: Iterator[dict[str, Any]], now: int) -> None:
    with db.write() as conn:
        user = users.ensure_user(conn, "bench", True, now).id
        for body in bodies:
            automations.create_automation(conn, user, now, **validate_fields(body))


class StatementCounter:
    """Counts statements sent through the engine (an executemany counts once)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def timed_pass(
    db: Database, clock: ManualClock, counter: StatementCounter
) -> tuple[float, int, PassResult]:
    counter.count = 0
    started = time.perf_counter()
    result = run_pass(db, clock)
    return time.perf_counter() - started, counter.count, result


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


@contextmanager
def database(backend: str) -> Iterator[Database]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
            migrate.upgrade(db)
            yield db
            db.dispose()
    else:
        with PostgresServer(durable=True) as server:
            db = Database(server.create_database("bench"))
            migrate.upgrade(db)
            yield db
            db.dispose()


def measure(backend: str, count: int, rounds: int) -> None:
    rng = random.Random(20240515)
    with database(backend) as db:
        # Created a day before the clock: each automation's latest slot of the
        # past day is due on the first pass (a scheduler starting after downtime).
        seed(db, automation_bodies(count, rng), START - 86_400_000_000)
        counter = StatementCounter(db)
        clock = ManualClock(START)

        def read_all() -> None:
            with db.read() as conn:
                list(conn.execute(select(*SELECT_COLUMNS)))

        baseline = median_seconds(read_all, rounds)
        rows = []
        first = timed_pass(db, clock, counter)
        rows.append(("first pass (all new, missed slots due)", first))
        quiet = [timed_pass(db, clock, counter) for _ in range(rounds)]
        rows.append(("quiet pass (nothing due)", sorted(quiet, key=lambda r: r[0])[rounds // 2]))
        minutes = []
        for _ in range(rounds):
            clock.advance(60)
            minutes.append(timed_pass(db, clock, counter))
        rows.append(("minute pass (clock +60 s)", sorted(minutes, key=lambda r: r[0])[rounds // 2]))
        # N more automations, all at midnight UTC, seen once; then midnight comes.
        seed(
            db,
            (
                {
                    "automation": "create_folder",
                    "destinations": [f"m{n}"],
                    "trigger": "daily",
                    "interval": "day",
                }
                for n in range(count)
            ),
            clock.now(),
        )
        timed_pass(db, clock, counter)
        clock.value = from_datetime(datetime(2024, 5, 16, 0, 0, 1, tzinfo=UTC))
        rows.append((f"midnight pass ({count:,} more due at once)", timed_pass(db, clock, counter)))

        print(
            f"\n{backend}: {count:,} scheduled automations; baseline (read every automation "
            f"row once): {baseline * 1000:.1f} ms"
        )
        print(
            f"  {'pass':44} {'examined':>9} {'runs':>7} {'statements':>10} {'ms':>9} "
            f"{'x baseline':>10}"
        )
        for name, (elapsed, statements, result) in rows:
            print(
                f"  {name:44} {result.examined:9,} {len(result.created):7,} {statements:10} "
                f"{elapsed * 1000:9.1f} {elapsed / baseline:10.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--automations", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        for count in (max(1, args.automations // 100), args.automations):
            measure(backend, count, args.rounds)


if __name__ == "__main__":
    main()
