"""Web UI: an automation page with 100,000 runs renders its first page about as fast as the API's.

Times the automation page (/automations/ID: settings, next times, the
30-day runs-per-day chart, the durations chart and the first page of the
runs table, rendered to HTML) against the API's first page of the same runs
(/api/rest/v1/automation_runs), both over HTTP from Conveyor's real app
(bench/servers.py conveyor) in a subprocess, taking turns. The ratio
page-render time / API-page time is the figure; the goal is <= 3.

The runs are bulk-loaded (executemany on SQLite, COPY on PostgreSQL) from
states the domain's lifecycle functions produce (common.lifecycle_rows),
spread over the last 30 days so that the chart has every day to count.
Five more automations have as many runs each: their pages' first renders
are the uncached samples.

    .venv/bin/python bench/ui_render.py            # recorded: 100,000 runs, both databases
    .venv/bin/python bench/ui_render.py --runs 20000 --backend sqlite --rounds 10   # quick
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from common import (
    RUN_COLUMNS,
    START_US,
    Seeded,
    ServerProcess,
    interleaved_medians,
    lifecycle_rows,
    print_machine,
    seconds,
)
from conveyor.clock import SystemClock
from conveyor.store import automations, migrate, users
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer

DAYS = 30
UI_PAGE = 25  # the automation page's default page size
PAIRS = ((25, 25), (100, 100), (25, 1000))  # (UI per_page, API per_page); 1000 is the API default
GOAL = 3.0
# The measured automation and five more with as many runs each, whose first renders
# are the cold samples (the chart's counts of past days not cached yet).
AUTOMATIONS = 6


def run_rows(runs: int, owners: list[int], now: int) -> Iterator[tuple[Any, ...]]:
    """`runs` runs of each automation, the benchmarks' usual mix of lifecycle states
    (common.lifecycle_rows), moved to spread evenly over the last DAYS days."""
    span = DAYS * 86_400 * 1_000_000
    step = span // runs
    for owner in owners:
        for row in lifecycle_rows(runs, owner, [owner]):
            automation_id, created, runtime, completed, *rest = row
            shift = now - span + (created - START_US) // 1_000_000 * step - created
            moved_completed = None if completed is None else completed + shift
            yield (automation_id, created + shift, runtime + shift, moved_completed, *rest)


# The bulk load bypasses store.runs, which keeps run_daily_counts current for
# the chart; the counts are then filled the way migration 0006 backfills them.
BACKFILL_DAILY_COUNTS = (
    "INSERT INTO run_daily_counts (automation_id, day, status, count) "
    "SELECT automation_id, created_at / 86400000000, status, COUNT(*) FROM automation_runs "
    "GROUP BY automation_id, created_at / 86400000000, status"
)


def prepare(url: str, now: int) -> tuple[list[int], str]:
    """Schema, owner, key and the automations, the store's way; all are scheduled, so
    their pages compute next times too. The first is the measured one; the others
    give each a first (uncached) render of its chart."""
    db = Database(url, null_pool=True)
    migrate.upgrade(db)
    with db.write() as conn:
        owner = users.ensure_user(conn, "bench", False, now)
        key = users.create_api_key(conn, owner.id, now)
        ids = [
            automations.create_automation(
                conn,
                owner.id,
                now,
                name=f"bench {n}",
                automation="create_folder",
                trigger="custom_schedule",
                destinations=["reports/%Y-%m-%d"],
                schedule_days_of_week=[1, 2, 3, 4, 5],
                schedule_times_of_day=["06:00", "18:00"],
                schedule_time_zone="Europe/Paris",
            )
            for n in range(AUTOMATIONS)
        ]
    db.dispose()
    return ids, key


@contextmanager
def seeded(backend: str, runs: int, folder: Path) -> Iterator[Seeded]:
    now = SystemClock().now()
    started = time.perf_counter()
    if backend == "sqlite":
        path = folder / "ui.sqlite"
        url = f"sqlite:///{path}"
        ids, key = prepare(url, now)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO automation_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_rows(runs, ids, now),
        )
        conn.execute(BACKFILL_DAILY_COUNTS)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        print(
            f"seeded {len(ids) * runs:,} runs into SQLite in {time.perf_counter() - started:.1f} s"
        )
        yield Seeded("sqlite", url, ids[0], runs, key)
        return
    with PostgresServer(durable=True) as server:
        url = server.create_database("bench")
        ids, key = prepare(url, now)
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY automation_runs ({RUN_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in run_rows(runs, ids, now):
                    copy.write_row(row)
            conn.execute(BACKFILL_DAILY_COUNTS)
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) automation_runs")
        took = time.perf_counter() - started
        print(f"seeded {len(ids) * runs:,} runs into PostgreSQL in {took:.1f} s")
        yield Seeded("postgresql", url, ids[0], runs, key)


def signed_in_client(base_url: str, key: str) -> httpx.Client:
    """A client holding a UI session, signed in through the form as a browser does."""
    client = httpx.Client(base_url=base_url, timeout=60)
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post("/sign-in", data={"api_key": key, "csrf_token": token.group(1)})
    assert done.status_code == 303, done.text
    return client


def measure(db: Seeded, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as home, ServerProcess("conveyor", db, Path(home)) as srv:
        ui = signed_in_client(srv.url, db.api_key)
        api = httpx.Client(base_url=srv.url, headers={"X-FilesAPI-Key": db.api_key}, timeout=60)

        def page(per_page: int, automation_id: int = db.automation_id) -> httpx.Response:
            response = ui.get(f"/automations/{automation_id}", params={"per_page": per_page})
            assert response.status_code == 200, response.text[:300]
            return response

        def api_page(per_page: int) -> httpx.Response:
            params = {"automation_id": db.automation_id, "per_page": per_page}
            response = api.get("/api/rest/v1/automation_runs", params=params)
            assert response.status_code == 200, response.text
            return response

        # Checked once, outside the timing: the page shows the same runs as the API,
        # and its chart shows every run of the automation in the 30 days.
        first = page(UI_PAGE).text
        shown = [int(i) for i in re.findall(r'<tr data-run-id="(\d+)">', first)]
        assert shown == [r["id"] for r in api_page(UI_PAGE).json()], "UI and API disagree"
        counted = re.search(r"(\d+) runs in the last 30 days", first)
        assert counted is not None, "no runs-per-day chart on the page"
        print(
            f"{db.backend}: page of {len(first):,} bytes; chart counts {int(counted.group(1)):,} "
            f"of the automation's {db.runs:,} runs (the oldest day is partly outside the window)"
        )

        cases: dict[str, Any] = {}
        for ui_size, api_size in PAIRS:
            cases[f"ui{ui_size}"] = lambda n=ui_size: page(n)
            cases[f"api{api_size}"] = lambda n=api_size: api_page(n)
        medians = interleaved_medians(cases, rounds)
        # First renders of the other automations' pages: nothing of theirs cached yet.
        others = range(db.automation_id + 1, db.automation_id + AUTOMATIONS)
        cold = [seconds(lambda a=a: page(UI_PAGE, a)) for a in others]
        cold_s = statistics.median(cold)
        cold_ratio = cold_s / medians[f"api{UI_PAGE}"]
        for ui_size, api_size in PAIRS:
            ui_s, api_s = medians[f"ui{ui_size}"], medians[f"api{api_size}"]
            ratio = ui_s / api_s
            verdict = "meets" if ratio <= GOAL else "misses"
            print(
                f"{db.backend}: UI page of {ui_size} runs {ui_s * 1000:.1f} ms / "
                f"API page of {api_size} runs {api_s * 1000:.1f} ms = {ratio:.2f} "
                f"({verdict} the goal <= {GOAL:g})"
            )
        print(
            f"{db.backend}: first render (nothing cached), median of {len(cold)}: "
            f"{cold_s * 1000:.1f} ms / API page of {UI_PAGE} runs = {cold_ratio:.2f} "
            f"({'meets' if cold_ratio <= GOAL else 'misses'} the goal <= {GOAL:g})"
        )
        sign_in_s = seconds(lambda: signed_in_client(srv.url, db.api_key).close())
        print(
            f"{db.backend}: one sign-in (form + session) {sign_in_s * 1000:.1f} ms (single sample)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs of the automation")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="both", help="database(s)"
    )
    parser.add_argument("--rounds", type=int, default=30, help="timed requests per case")
    args = parser.parse_args()
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        with (
            tempfile.TemporaryDirectory() as folder,
            seeded(backend, args.runs, Path(folder)) as db,
        ):
            measure(db, args.rounds)


if __name__ == "__main__":
    main()
