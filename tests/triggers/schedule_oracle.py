"""An independent computation of schedule slots, for comparing with conveyor.domain.schedules.

Local dates and times come from croniter (a cron library with its own
calendar code, including `L` for a month's last day); each local time is
turned into an instant by brute force over the UTC offsets the zone uses
around it, following the documented rules: the first occurrence of a
repeated local time, and the first instant after a skipped one.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from conveyor.clock import from_datetime, to_datetime


def oracle_instant(local: datetime, zone: ZoneInfo) -> int:
    """The slot of a naive local time, found by trying every nearby UTC offset."""
    approx = local.replace(tzinfo=UTC)
    offsets = set()
    for hours in range(-48, 49, 3):
        offset = (approx + timedelta(hours=hours)).astimezone(zone).utcoffset()
        assert offset is not None
        offsets.add(offset)
    valid = []
    for offset in offsets:
        candidate = (local - offset).replace(tzinfo=UTC)
        if candidate.astimezone(zone).replace(tzinfo=None) == local:
            valid.append(candidate)
    if valid:
        return from_datetime(min(valid))
    # Skipped: walk forward a minute at a time from the earliest reading, then
    # back a second at a time, to the first instant whose reading is later.
    moment = min((local - o).replace(tzinfo=UTC) for o in offsets)
    while moment.astimezone(zone).replace(tzinfo=None) <= local:
        moment += timedelta(minutes=1)
    while (moment - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None) > local:
        moment -= timedelta(seconds=1)
    return from_datetime(moment)


def _cron(expression: str, start: datetime, end: datetime) -> list[datetime]:
    found = []
    walker = croniter(expression, start - timedelta(minutes=1))
    while True:
        moment = walker.get_next(datetime)
        if moment > end:
            return found
        found.append(moment)


def _period_days(starts_expression: str, wanted: int, start: datetime, end: datetime) -> list[date]:
    """Day `wanted` (1-based) of each period whose first days croniter lists, or the
    period's last day if the period is shorter."""
    firsts = _cron(starts_expression, start - timedelta(days=400), end + timedelta(days=400))
    days = []
    for first, following in itertools.pairwise(firsts):
        last = following.date() - timedelta(days=1)
        days.append(min(first.date() + timedelta(days=wanted - 1), last))
    return days


def oracle_local_times(
    interval: str,
    recurring_day: int | None,
    days_of_week: list[int],
    times: list[tuple[int, int]],
    start: datetime,
    end: datetime,
) -> list[datetime]:
    """Naive local date-times of the schedule between `start` and `end` (naive, local)."""
    found: list[datetime] = []
    for hour, minute in times:
        head = f"{minute} {hour}"
        if interval == "custom":
            found += _cron(f"{head} * * {','.join(map(str, sorted(days_of_week)))}", start, end)
        elif interval == "day":
            found += _cron(f"{head} * * *", start, end)
        elif interval == "week":
            found += _cron(f"{head} * * {recurring_day or 0}", start, end)
        elif interval == "week_end":
            found += _cron(f"{head} * * 6", start, end)
        elif interval == "month":
            wanted = recurring_day or 1
            found += _cron(f"{head} {wanted} * *", start, end)
            if wanted > 28:  # months without that day run on their last day
                for moment in _cron(f"{head} L * *", start, end):
                    if moment.day < wanted:
                        found.append(moment)
        elif interval == "month_end":
            found += _cron(f"{head} L * *", start, end)
        elif interval == "quarter_end":
            found += _cron(f"{head} L 3,6,9,12 *", start, end)
        elif interval == "year_end":
            found += _cron(f"{head} 31 12 *", start, end)
        elif interval in ("quarter", "year"):
            starts = "0 0 1 1,4,7,10 *" if interval == "quarter" else "0 0 1 1 *"
            for day in _period_days(starts, recurring_day or 1, start, end):
                moment = datetime(day.year, day.month, day.day, hour, minute)
                if start <= moment <= end:
                    found.append(moment)
        else:
            raise ValueError(interval)
    return found


def oracle_slots(
    interval: str,
    recurring_day: int | None,
    days_of_week: list[int],
    times: list[tuple[int, int]],
    zone: ZoneInfo,
    start: int,
    end: int,
) -> list[int]:
    """Every slot in [start, end), by the independent computation."""
    # Local readings of the window, widened by two days for offsets and gaps.
    local_start = to_datetime(start).astimezone(zone).replace(tzinfo=None) - timedelta(days=2)
    local_end = to_datetime(end).astimezone(zone).replace(tzinfo=None) + timedelta(days=2)
    locals_ = oracle_local_times(
        interval, recurring_day, days_of_week, times, local_start, local_end
    )
    slots = {oracle_instant(moment, zone) for moment in locals_}
    return sorted(slot for slot in slots if start <= slot < end)
