"""Runs per day for the automation page's chart, with the finished days kept for a minute.

Counting an automation's runs of the last 30 days walks every one of them in
the index (about 4 ms per 100,000 on SQLite), more than the rest of the
page. The counts of past days only change when a run created on one of them
finishes or retention deletes runs, so they are kept for CACHE_SECONDS per
automation and process; today's counts are always read live. The chart's past
days may therefore lag up to CACHE_SECONDS behind; docs/ui.md says so.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.engine import Connection

from conveyor.store.run_views import runs_per_day

CACHE_SECONDS = 60
MAX_AUTOMATIONS = 1024


class DailyCounts:
    """One per app (app.state), so apps on different databases never share counts."""

    def __init__(self, ttl_seconds: float = CACHE_SECONDS) -> None:
        self._ttl_us = int(ttl_seconds * 1_000_000)
        self._lock = threading.Lock()
        # (automation id, first day, days) -> (read at, counts of the days before today)
        self._past: OrderedDict[tuple[int, int, int], tuple[int, list[tuple[int, str, int]]]]
        self._past = OrderedDict()

    def counts(
        self, conn: Connection, automation_id: int, today: int, days: int, now: int
    ) -> list[tuple[int, str, int]]:
        """(day, status, runs) for the `days` days ending today, as runs_per_day gives them."""
        key = (automation_id, today - days + 1, days)
        with self._lock:
            hit = self._past.get(key)
            if hit is not None:
                self._past.move_to_end(key)
        if hit is None or now - hit[0] >= self._ttl_us:
            past = runs_per_day(conn, automation_id, today - days + 1, days - 1)
            with self._lock:
                self._past[key] = (now, past)
                self._past.move_to_end(key)
                while len(self._past) > MAX_AUTOMATIONS:
                    self._past.popitem(last=False)
        else:
            past = hit[1]
        return past + runs_per_day(conn, automation_id, today, 1)
