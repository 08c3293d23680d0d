"""Reads the web UI needs beyond the API's: recent runs per automation, runs per day,
stage times and the tail of a run's log.

Each read is an index range of bounded size, so a page costs the same for an
automation with ten runs as for one with millions (docs/ui.md says which
index serves which read).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, literal, literal_column, select, union_all
from sqlalchemy.engine import Connection

from conveyor.domain.runs import RunStatus
from conveyor.store import run_log
from conveyor.store.automations import may_see
from conveyor.store.runs import RUN_COLUMNS, RunRow, as_run_row
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import run_daily_counts as daily_t
from conveyor.store.users import User

DAY_US = 86_400 * 1_000_000


def recent_runs(
    conn: Connection, automation_ids: Iterable[int], limit: int
) -> dict[int, list[RunRow]]:
    """The newest `limit` runs of each automation, newest first.

    One query per automation: each is a short backwards walk of
    ix_runs_automation_created, where a single query over all of them would
    have to rank every run of every automation.
    """
    found: dict[int, list[RunRow]] = {}
    for automation_id in automation_ids:
        found[automation_id] = [
            as_run_row(row)
            for row in conn.execute(
                select(*RUN_COLUMNS)
                .where(runs_t.c.automation_id == automation_id)
                .order_by(runs_t.c.created_at.desc(), runs_t.c.id.desc())
                .limit(limit)
            ).all()
        ]
    return found


@functools.lru_cache(maxsize=4)
def _per_day_statement(days: int) -> Any:
    """The counts of `runs_per_day`, built once per number of days: day i is the range
    [bound{i}, bound{i+1}), and its number comes back as the constant i."""
    arms = []
    for status in RunStatus:
        for i in range(days):
            count = (
                select(func.count())
                .where(
                    runs_t.c.automation_id == bindparam("automation_id"),
                    runs_t.c.status == status.value,
                    runs_t.c.created_at >= bindparam(f"bound{i}"),
                    runs_t.c.created_at < bindparam(f"bound{i + 1}"),
                )
                .scalar_subquery()
            )
            arms.append(select(literal_column(str(i)), literal(status.value), count))
    return union_all(*arms)


def runs_per_day(
    conn: Connection, automation_id: int, first_day: int, days: int
) -> list[tuple[int, str, int]]:
    """(UTC day number, status, runs) for the automation's runs created on the `days`
    days from `first_day` on; only non-zero counts.

    One statement of a count per (status, day): each count is a range of
    ix_runs_automation_status_created, read from the index alone (grouping by
    an expression of created_at instead sorts every run of the period). It
    walks every run of the period; the chart reads `kept_runs_per_day` (as part
    of `charts_data`), and this recount is what those kept counts must equal.
    """
    params: dict[str, int] = {"automation_id": automation_id}
    for i in range(days + 1):
        params[f"bound{i}"] = (first_day + i) * DAY_US
    rows = conn.execute(_per_day_statement(days), params)
    return [(first_day + int(i), str(status), int(n)) for i, status, n in rows if n]


def kept_runs_per_day(
    conn: Connection, automation_id: int, first_day: int, days: int
) -> list[tuple[int, str, int]]:
    """What `runs_per_day` counts, read from run_daily_counts, which the run
    lifecycle and retention keep current: one range of its primary key, at most
    4 rows per day, however many runs there are."""
    rows = conn.execute(
        select(daily_t.c.day, daily_t.c.status, daily_t.c.count)
        .where(
            daily_t.c.automation_id == automation_id,
            daily_t.c.day >= first_day,
            daily_t.c.day < first_day + days,
        )
        .order_by(daily_t.c.day, daily_t.c.status)
    )
    return [(int(day), str(status), int(n)) for day, status, n in rows if n]


@dataclass(frozen=True, slots=True)
class StageTimes:
    """When the run entered each stage after its creation (None: not (yet) entered)."""

    trigger: str
    planning_at: int | None
    queued_for_execution_at: int | None
    executing_at: int | None


# Where arm 1 of the charts statement puts a count's day, status and number.
_COUNT_IN = {
    "id": daily_t.c.day,
    "status": daily_t.c.status,
    "successful_operations": daily_t.c.count,
}


def _charts_statement() -> Any:
    """`recent_runs` of one automation and its `kept_runs_per_day`, as one UNION ALL:
    arm 0 is the runs (RUN_COLUMNS), arm 1 the counts as (day, status, count) in the
    columns of id, status and successful_operations (NULL in the others)."""
    recent = (
        select(literal_column("0").label("arm"), *RUN_COLUMNS)
        .where(runs_t.c.automation_id == bindparam("automation_id"))
        .order_by(runs_t.c.created_at.desc(), runs_t.c.id.desc())
        .limit(bindparam("recent"))
        .subquery()
    )
    counts = select(
        literal_column("1"),
        *(_COUNT_IN.get(column.name, literal(None, type_=column.type)) for column in RUN_COLUMNS),
    ).where(
        daily_t.c.automation_id == bindparam("automation_id"),
        daily_t.c.day >= bindparam("first_day"),
        daily_t.c.day < bindparam("end_day"),
    )
    return union_all(select(recent), counts)


_CHARTS = _charts_statement()


def charts_data(
    conn: Connection, automation_id: int, recent: int, first_day: int, days: int
) -> tuple[list[RunRow], list[tuple[int, str, int]]]:
    """`recent_runs(conn, [automation_id], recent)` and `kept_runs_per_day(conn,
    automation_id, first_day, days)` in one statement: the automation page's charts
    in one round trip instead of two."""
    rows = conn.execute(
        _CHARTS,
        {
            "automation_id": automation_id,
            "recent": recent,
            "first_day": first_day,
            "end_day": first_day + days,
        },
    ).all()
    runs = sorted(
        (as_run_row(r[1:]) for r in rows if r[0] == 0),
        key=lambda r: (r.created_at, r.id),
        reverse=True,  # newest first, as recent_runs reads them
    )
    counts = (as_run_row(r[1:]) for r in rows if r[0] == 1)
    per_day = sorted(
        (int(c.id), str(c.status), int(c.successful_operations))
        for c in counts
        if c.successful_operations
    )
    return runs, per_day


@dataclass(frozen=True, slots=True)
class AutomationLabel:
    """How a run's page names the run's automation."""

    id: int
    name: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class RunPageRow:
    """What a run's page shows besides its log: the run (RUN_COLUMNS), its stage
    times, its automation (None if that row is gone) and the automation's log
    retention override."""

    run: RunRow
    times: StageTimes
    automation: AutomationLabel | None
    retention_override: int | None


_RUN_PAGE = (
    select(
        *RUN_COLUMNS,
        runs_t.c.planning_at,
        runs_t.c.queued_for_execution_at,
        runs_t.c.executing_at,
        automations_t.c.id,
        automations_t.c.name,
        automations_t.c.deleted,
        automations_t.c.retention_days,
        automations_t.c.user_id,
    )
    .select_from(runs_t.outerjoin(automations_t, automations_t.c.id == runs_t.c.automation_id))
    .where(runs_t.c.id == bindparam("run_id"))
)


def run_page_row(conn: Connection, run_id: int, user: User) -> RunPageRow | None:
    """The run if `user` may see it (the rule of `store.runs.find_visible_run`), with
    what its page shows besides the log, in one statement (one round trip where the
    page used to make four)."""
    row = conn.execute(_RUN_PAGE, {"run_id": run_id}).first()
    if row is None:
        return None
    width = len(RUN_COLUMNS)
    run = as_run_row(row[:width])
    planning_at, queued_at, executing_at = row[width : width + 3]
    automation_id, name, deleted, retention_days, owner_id = row[width + 3 :]
    if not (user.is_admin if owner_id is None else may_see(user, owner_id)):
        return None
    label = None
    if automation_id is not None:
        label = AutomationLabel(automation_id, name or "", bool(deleted))
    return RunPageRow(
        run,
        StageTimes(run.trigger, planning_at, queued_at, executing_at),
        label,
        retention_days,
    )


@dataclass(frozen=True, slots=True)
class LogPage:
    """Log lines (cursor, created_at, level, message) oldest first, and whether
    matching lines exist before the first and after the last."""

    lines: list[run_log.LogLine]
    has_earlier: bool
    has_later: bool


def message_page(
    conn: Connection,
    run_id: int,
    limit: int,
    *,
    before: run_log.Cursor | None = None,
    after: run_log.Cursor | None = None,
    level: str | None = None,
    search: str | None = None,
) -> LogPage:
    """A page of the log among the lines that have `level` and contain `search`
    (case-insensitive): the first `limit` after the line at cursor `after`, else the
    last `limit` before cursor `before` (the tail when both are None), read by
    `store.run_log` along its indexes."""
    if after is not None:
        rows = run_log.lines(conn, run_id, limit + 1, after=after, level=level, search=search)
        # Lines at or before `after`: before the cursor just past it.
        past = (after[0], after[1], after[2] + 1)
        earlier = run_log.lines(
            conn, run_id, 1, before=past, newest_first=True, level=level, search=search
        )
        return LogPage(rows[:limit], bool(earlier), len(rows) > limit)
    rows = run_log.lines(
        conn, run_id, limit + 1, before=before, newest_first=True, level=level, search=search
    )
    has_earlier = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    has_later = False
    if before is not None:  # lines at or after `before`: after the cursor just short of it
        short = (before[0], before[1], before[2] - 1)
        has_later = bool(run_log.lines(conn, run_id, 1, after=short, level=level, search=search))
    return LogPage(rows, has_earlier, has_later)
