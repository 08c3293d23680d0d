"""Runs per day for the automation page's chart.

The counts are kept current in table run_daily_counts by the transactions
that create, finish and prune runs (store.runs, store.retention), so the
chart reads at most 4 rows per day, always up to date, and nothing is cached.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from conveyor.store.run_views import kept_runs_per_day


def counts(
    conn: Connection, automation_id: int, today: int, days: int
) -> list[tuple[int, str, int]]:
    """(day, status, runs) for the `days` days ending today; only non-zero counts."""
    return kept_runs_per_day(conn, automation_id, today - days + 1, days)
