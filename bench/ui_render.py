"""Web UI: the automation page (200,000 runs) and a run page (50,000 log lines) against the API.

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

The run page: the automation's newest run gets LOG_LINES log lines (bulk
loaded, one line in 50 an error). Its page (fields, timeline, the log's last
500 lines) is timed against the API's show of the same run, and with a level
filter and a text search (which read the whole log) against the API's
status_messages download of the whole log. Then Debian's Chromium (as
tests/e2e) opens the page and reports its time to interactive: the
navigation's DOMContentLoaded end (the HTML parsed and the deferred scripts
run) and load end, as the browser's own Navigation Timing gives them.

    .venv/bin/python bench/ui_render.py            # recorded: 200,000 runs, both databases
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
    interleaved_samples,
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
LOG_LINES = 50_000
COPY_MESSAGES = "COPY run_messages (run_id, created_at, level, message) FROM STDIN"
BROWSER_SAMPLES = 5


def spread(values: list[float]) -> str:
    """The samples' range, min-max in ms: the medians' context on a shared machine."""
    return f"min-max {min(values) * 1000:.1f}-{max(values) * 1000:.1f} ms"


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
        log_run = newest_run(conn.execute, ids[0])
        conn.executemany(
            "INSERT INTO run_messages (run_id, created_at, level, message) VALUES (?, ?, ?, ?)",
            log_rows(log_run, now),
        )
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
            log_run = newest_run(conn.execute, ids[0])
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY run_messages (run_id, created_at, level, message) FROM STDIN"
                ) as copy,
            ):
                for line in log_rows(log_run, now):
                    copy.write_row(line)
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) automation_runs")
            conn.execute("VACUUM (ANALYZE) run_messages")
        took = time.perf_counter() - started
        print(f"seeded {len(ids) * runs:,} runs into PostgreSQL in {took:.1f} s")
        yield Seeded("postgresql", url, ids[0], runs, key)


def newest_run(execute: Any, automation_id: int) -> int:
    found = execute(
        f"SELECT MAX(id) FROM automation_runs WHERE automation_id = {int(automation_id)}"
    ).fetchone()
    return int(found[0])


def log_rows(run_id: int, now: int) -> Iterator[tuple[Any, ...]]:
    """LOG_LINES lines for the run, a millisecond apart, one in 50 an error."""
    for n in range(LOG_LINES):
        level = "error" if n % 50 == 0 else "info"
        yield (run_id, now - (LOG_LINES - n) * 1000, level, f"Copied in/file-{n:06d}.csv to out/")


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
        samples = interleaved_samples(cases, rounds)
        medians = {name: statistics.median(values) for name, values in samples.items()}
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
                f"({verdict} the goal <= {GOAL:g}); "
                f"{spread(samples[f'ui{ui_size}'])} / {spread(samples[f'api{api_size}'])}"
            )
        print(
            f"{db.backend}: first render (nothing cached), median of {len(cold)}: "
            f"{cold_s * 1000:.1f} ms / API page of {UI_PAGE} runs = {cold_ratio:.2f} "
            f"({'meets' if cold_ratio <= GOAL else 'misses'} the goal <= {GOAL:g})"
        )
        measure_run_page(db, srv.url, ui, api, rounds)
        sign_in_s = seconds(lambda: signed_in_client(srv.url, db.api_key).close())
        print(
            f"{db.backend}: one sign-in (form + session) {sign_in_s * 1000:.1f} ms (single sample)"
        )


def measure_run_page(
    db: Seeded, base_url: str, ui: httpx.Client, api: httpx.Client, rounds: int
) -> None:
    """The run page with a LOG_LINES-line log: server render against the API, and the
    browser's time to interactive."""
    run = api.get(
        "/api/rest/v1/automation_runs",
        params={"automation_id": db.automation_id, "per_page": 1, "sort_by[automation_id]": "desc"},
    ).json()[0]
    run_id = int(run["id"])

    def page(**params: str) -> httpx.Response:
        response = ui.get(f"/runs/{run_id}", params=params)
        assert response.status_code == 200, response.text[:300]
        return response

    def show() -> httpx.Response:
        response = api.get(f"/api/rest/v1/automation_runs/{run_id}")
        assert response.status_code == 200
        return response

    def download() -> httpx.Response:
        response = httpx.get(run["status_messages_url"], timeout=60)
        assert response.status_code == 200
        return response

    tail = page().text
    assert tail.count('<li class="line') == 500, "the page does not show the log's last 500 lines"
    assert download().text.count("\n") == LOG_LINES
    errors_shown = page(level="error").text.count('<li class="line')
    print(
        f"{db.backend}: run {run_id}: page of {len(tail):,} bytes, {errors_shown} error lines shown"
    )
    samples = interleaved_samples(
        {
            "page": page,
            "level": lambda: page(level="error"),
            "search": lambda: page(q="file-049999"),
            "show": show,
            "download": download,
        },
        rounds,
    )
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, against in (("page", "show"), ("level", "download"), ("search", "download")):
        ratio = medians[name] / medians[against]
        print(
            f"{db.backend}: run page ({name}) {medians[name] * 1000:.1f} ms / API {against} "
            f"{medians[against] * 1000:.1f} ms = {ratio:.2f} "
            f"({'meets' if ratio <= GOAL else 'misses'} the goal <= {GOAL:g}); "
            f"{spread(samples[name])} / {spread(samples[against])}"
        )
    browser_timing(base_url, db.api_key, f"/runs/{run_id}", db.backend)


def browser_timing(base_url: str, key: str, path: str, backend: str) -> None:
    """Median Navigation Timing of BROWSER_SAMPLES loads of the page in Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        browser = running.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base_url + "/sign-in")
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        page.wait_for_url("**/automations")
        ready, loaded, scripted = [], [], []
        for _ in range(BROWSER_SAMPLES):
            page.goto(base_url + path)
            timing = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return {ready: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"
            )
            # How long the log's script takes to answer a scroll (one handler run).
            scripted.append(
                page.evaluate(
                    "() => { const l = document.getElementById('log'); const t = performance.now();"
                    " l.scrollTop = 0; l.dispatchEvent(new Event('scroll'));"
                    " return performance.now() - t; }"
                )
            )
            ready.append(timing["ready"])
            loaded.append(timing["load"])
        browser.close()
    print(
        f"{backend}: browser, run page with a {LOG_LINES:,}-line log, median of {BROWSER_SAMPLES}: "
        f"interactive (DOMContentLoaded end) {statistics.median(ready):.0f} ms, "
        f"load end {statistics.median(loaded):.0f} ms, a scroll handled in "
        f"{statistics.median(scripted):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000, help="runs of the automation")
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
