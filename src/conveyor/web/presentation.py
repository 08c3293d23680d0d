"""How runs look on a page: status labels and icons, times, durations, chart geometry.

Pure functions over plain values, so the pages and their tests agree on
what a user sees. Times are UTC microseconds (conveyor.clock) and are shown
in UTC, the zone the API speaks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conveyor.clock import to_rfc3339
from conveyor.domain.runs import RunStage, RunStatus

# Text shown next to each status's colour and icon: colour is never the only cue.
STATUS_LABELS = {
    RunStatus.RUNNING.value: "Running",
    RunStatus.SUCCESS.value: "Success",
    RunStatus.PARTIAL_FAILURE.value: "Partial failure",
    RunStatus.FAILURE.value: "Failure",
    RunStatus.QUEUED.value: "Queued",
    RunStatus.SKIPPED.value: "Skipped",
    RunStatus.CANCELED.value: "Canceled",
}
STAGE_LABELS = {
    RunStage.QUEUED_FOR_PLANNING.value: "Queued for planning",
    RunStage.PLANNING.value: "Planning",
    RunStage.QUEUED_FOR_EXECUTION.value: "Queued for execution",
    RunStage.EXECUTING.value: "Executing",
    RunStage.FINISHED.value: "Finished",
}
# Bottom to top in the stacked daily chart: outcomes first, unfinished on top.
# `skipped` is left out: Conveyor never makes a skipped run (docs/api.md).
CHART_STATUSES = (
    RunStatus.SUCCESS.value,
    RunStatus.PARTIAL_FAILURE.value,
    RunStatus.FAILURE.value,
    RunStatus.CANCELED.value,
    RunStatus.QUEUED.value,
    RunStatus.RUNNING.value,
)
DAY_US = 86_400 * 1_000_000


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage)


def iso(us: int | None) -> str:
    """The machine-readable form for a <time datetime=...> attribute."""
    return to_rfc3339(us) or ""


def when(us: int | None) -> str:
    """`2024-02-16 12:46:41 UTC`, or an em dash when the time is not known yet."""
    if us is None:
        return "—"
    stamp = to_rfc3339(us) or ""  # 2024-02-16T12:46:41Z, from the clock's cached parts
    return f"{stamp[:10]} {stamp[11:19]} UTC"


def ago(us: int | None, now: int) -> str:
    """A coarse relative time (`5 min ago`), for a glance; the exact time goes in a title."""
    if us is None:
        return "—"
    seconds = max(0, (now - us) // 1_000_000)
    if seconds < 60:
        return "just now" if seconds < 5 else f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86_400} d ago"


def duration(us: int | None) -> str:
    """`850 ms`, `42 s`, `3 min 05 s`, `2 h 07 min`; an em dash when unknown."""
    if us is None:
        return "—"
    if us < 1_000_000:
        return f"{us // 1000} ms"
    seconds = us // 1_000_000
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def run_duration(created_at: int, completed_at: int | None, now: int) -> int:
    """How long the run took, or has taken so far while it is not finished."""
    end = completed_at if completed_at is not None else now
    return max(0, end - created_at)


# ------------------------------------------------------------------- charts


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of a chart, in SVG user units, with the text a reader needs."""

    x: float
    y: float
    width: float
    height: float
    status: str
    label: str


@dataclass(frozen=True, slots=True)
class AxisLabel:
    x: float
    text: str


@dataclass(frozen=True, slots=True)
class DayRow:
    """One day of the daily chart, for its table twin."""

    date: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class DailyChart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[AxisLabel]
    max_total: int
    days: list[DayRow]
    total: int


def _day_text(day: int) -> str:
    return time.strftime("%b %d", time.gmtime(day * 86_400))


def daily_chart(
    counts: Iterable[tuple[int, str, int]],
    today: int,
    days: int = 30,
    width: int = 720,
    height: int = 160,
) -> DailyChart:
    """Stacked bars of runs per UTC day by status for the `days` days ending `today`
    (a UTC day number), oldest on the left. Heights are in proportion to the
    busiest day."""
    first = today - days + 1
    table: dict[int, dict[str, int]] = {day: {} for day in range(first, today + 1)}
    for day, status, count in counts:
        if day in table:
            table[day][status] = table[day].get(status, 0) + count
    max_total = max((sum(c.values()) for c in table.values()), default=0)
    slot = width / days
    bar_width = max(1.0, slot - 4)
    bars: list[Bar] = []
    labels: list[AxisLabel] = []
    rows: list[DayRow] = []
    for index, day in enumerate(range(first, today + 1)):
        x = index * slot + (slot - bar_width) / 2
        bottom = float(height)
        day_counts = table[day]
        for status in CHART_STATUSES:
            count = day_counts.get(status, 0)
            if count == 0 or max_total == 0:
                continue
            bar_height = height * count / max_total
            bottom -= bar_height
            bars.append(
                Bar(
                    round(x, 2),
                    round(bottom, 2),
                    round(bar_width, 2),
                    round(bar_height, 2),
                    status,
                    f"{_day_text(day)}: {count} {status_label(status).lower()}",
                )
            )
        if index % 5 == 0 or day == today:
            labels.append(AxisLabel(round(x + bar_width / 2, 2), _day_text(day)))
        total = sum(day_counts.values())
        rows.append(
            DayRow(_day_text(day), {s: day_counts.get(s, 0) for s in CHART_STATUSES}, total)
        )
    grand_total = sum(row.total for row in rows)
    return DailyChart(width, height, bars, labels, max_total, rows, grand_total)


@dataclass(frozen=True, slots=True)
class DurationChart:
    width: int
    height: int
    bars: list[Bar]
    longest: str


def duration_chart(
    runs: Sequence[tuple[int, str, int]], width: int = 720, height: int = 120
) -> DurationChart:
    """One bar per run, oldest on the left: (run id, status, duration in µs).
    A running run's bar shows its duration so far."""
    longest = max((d for _, _, d in runs), default=0)
    slot = width / max(len(runs), 1)
    bar_width = max(1.0, min(slot - 3, 40))
    bars = []
    for index, (run_id, status, took) in enumerate(runs):
        bar_height = max(1.0, height * took / longest) if longest else 1.0
        bars.append(
            Bar(
                round(index * slot + (slot - bar_width) / 2, 2),
                round(height - bar_height, 2),
                round(bar_width, 2),
                round(bar_height, 2),
                status,
                f"Run {run_id}: {duration(took)}, {status_label(status).lower()}",
            )
        )
    return DurationChart(width, height, bars, duration(longest) if runs else "—")
