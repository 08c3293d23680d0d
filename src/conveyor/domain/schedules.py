"""Schedule arithmetic for `daily` and `custom_schedule` triggers, and their descriptions.

Pure Python on zoneinfo. A schedule is a set of local dates (from `interval`
and `recurring_day`, or from `schedule_days_of_week`) times a set of local
times of day, in one time zone. Each local date-time maps to one instant, a
*slot*, by two rules for daylight-saving changes:

- a local time that does not exist that day (the clock jumps over it) runs
  once at the next valid instant: the moment the clock jumps, e.g. 02:30 on
  the spring-forward day in New York runs at 03:00 EDT;
- a local time that occurs twice (the clock falls back) runs once, at its
  first occurrence, e.g. 01:30 on the fall-back day in New York runs at
  01:30 EDT, not again at 01:30 EST.

Two local times that map to the same instant are one slot. Slots are integer
microseconds since the epoch, like every stored time (`conveyor.clock`).

`decide` is the scheduler's per-automation rule, kept here so it is pure:
which slot (if any) a pass runs, and what the scheduler remembers.
`human_readable_schedule` renders what Files.com shows in the field of the
same name.
"""

from __future__ import annotations

import calendar
from collections.abc import Container, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from conveyor.domain.automations import Automation, Trigger, holiday_calendar, resolve_time_zone

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_INTERVAL_WORDS = {
    "day": "every day",
    "week": "every week",
    "week_end": "at the end of every week",
    "month": "every month",
    "month_end": "at the end of every month",
    "quarter": "every quarter",
    "quarter_end": "at the end of every quarter",
    "year": "every year",
    "year_end": "at the end of every year",
}
SCHEDULED_TRIGGERS = (Trigger.DAILY, Trigger.CUSTOM_SCHEDULE)
SATURDAY = 6  # Files.com numbers days from 0 = Sunday; a week ends on Saturday
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# No valid schedule needs more periods than this to find its next date (a
# custom schedule hits within 7 days, a yearly one within a year); the bound
# only stops a corrupt row from looping forever.
_MAX_PERIODS = 800


# ------------------------------------------------------------------ schedules


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an automation runs: an interval (or "custom" days of week) at times, in a zone."""

    interval: str  # one of INTERVALS, or "custom" for custom_schedule
    recurring_day: int | None
    days_of_week: frozenset[int]  # 0 = Sunday; used by "custom"
    times: tuple[time, ...]  # sorted, distinct
    zone: ZoneInfo
    zone_name: str
    # recurring_days, or (recurring_day,): the days of a week/month/quarter/year it runs on
    recurring_days: tuple[int, ...] = ()
    # The public holidays of `holiday_region` (local dates): no slot falls on one.
    holidays: Container[date] | None = None


def recurring_days_of(automation: Automation) -> tuple[int, ...]:
    """The days in its period a daily automation runs on: recurring_days, else recurring_day."""
    if automation.recurring_days:
        return tuple(sorted(set(automation.recurring_days)))
    return () if automation.recurring_day is None else (automation.recurring_day,)


def schedule_of(automation: Automation) -> Schedule | None:
    """The automation's schedule; None when its trigger is not a schedule."""
    if automation.trigger not in SCHEDULED_TRIGGERS:
        return None
    zone_name = automation.schedule_time_zone or "UTC"
    times = sorted(
        {time(int(text[:2]), int(text[3:5])) for text in automation.schedule_times_of_day}
    ) or [time(0, 0)]
    if automation.trigger is Trigger.CUSTOM_SCHEDULE:
        interval = "custom"
        days = frozenset(automation.schedule_days_of_week)
    else:
        interval = automation.interval or "day"
        days = frozenset()
    return Schedule(
        interval=interval,
        recurring_day=automation.recurring_day,
        days_of_week=days,
        times=tuple(times),
        zone=resolve_time_zone(zone_name),
        zone_name=zone_name,
        recurring_days=recurring_days_of(automation),
        holidays=holiday_calendar(automation.holiday_region) if automation.holiday_region else None,
    )


def fingerprint(automation: Automation) -> str:
    """Everything that decides when the automation runs, as one comparable string.

    The scheduler starts the automation's schedule afresh when this changes
    (a new schedule, or disabled/enabled), so slots missed before the change
    are never replayed.
    """
    return "|".join(
        (
            automation.trigger.value,
            "disabled" if automation.disabled or automation.deleted else "enabled",
            str(automation.interval),
            str(automation.recurring_day),
            ",".join(str(d) for d in recurring_days_of(automation)),
            automation.holiday_region,
            ",".join(str(d) for d in sorted(set(automation.schedule_days_of_week))),
            ",".join(sorted(set(automation.schedule_times_of_day))),
            automation.schedule_time_zone,
        )
    )


# ---------------------------------------------------------------- local time


def _instant(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _moment(instant: int) -> datetime:
    return _EPOCH + timedelta(microseconds=instant)


def local_to_instant(local: datetime, zone: ZoneInfo) -> int:
    """The slot (microseconds, UTC) of a naive local date-time, by the module's DST rules."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return _instant(first)  # fold=0 is the first of two occurrences
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second.astimezone(zone).replace(tzinfo=None) == local:
        return _instant(second)
    # `local` falls in a gap. The jump happens between the two readings: find
    # the first whole second whose local reading is past `local`.
    low = int(min(first, second).timestamp())  # its local reading is before the gap
    high = int(max(first, second).timestamp())  # its local reading is past `local`
    while high - low > 1:
        middle = (low + high) // 2
        reading = datetime.fromtimestamp(middle, zone).replace(tzinfo=None)
        if reading > local:
            high = middle
        else:
            low = middle
    return high * _US


def local_date(instant: int, zone: ZoneInfo) -> date:
    return _moment(instant).astimezone(zone).date()


def local_iso(instant: int, zone: ZoneInfo) -> str:
    """E.g. `2024-03-10T03:00:00-04:00`: the slot as a person in the zone reads it."""
    return _moment(instant).astimezone(zone).isoformat(timespec="seconds")


# --------------------------------------------------------------------- dates


def _sunday_based(day: date) -> int:
    return (day.weekday() + 1) % 7


def _quarter_start(year: int, quarter: int) -> date:
    return date(year, 3 * quarter + 1, 1)


def _quarter_end(year: int, quarter: int) -> date:
    month = 3 * quarter + 3
    return date(year, month, calendar.monthrange(year, month)[1])


def _period_dates(schedule: Schedule, period: int) -> list[date]:
    """The run dates of a month/quarter/year period, in order, one per recurring day."""
    wanted = schedule.recurring_days or (1,)
    return sorted({_period_date(schedule, period, day) for day in wanted})


def _period_date(schedule: Schedule, period: int, wanted: int) -> date:
    """The run date of a month/quarter/year period (counted from year 0) for one recurring day.

    A recurring day past the period's end (the 31st in April, day 92 of a
    90-day quarter, day 366 of a common year) means the period's last day.
    """
    interval = schedule.interval
    wanted = wanted or 1
    if interval in ("month", "month_end"):
        year, month = divmod(period, 12)
        month += 1
        last = calendar.monthrange(year, month)[1]
        return date(year, month, last if interval == "month_end" else min(wanted, last))
    if interval in ("quarter", "quarter_end"):
        year, quarter = divmod(period, 4)
        end = _quarter_end(year, quarter)
        if interval == "quarter_end":
            return end
        return min(_quarter_start(year, quarter) + timedelta(days=wanted - 1), end)
    end = date(period, 12, 31)
    if interval == "year_end":
        return end
    return min(date(period, 1, 1) + timedelta(days=wanted - 1), end)


def _period_of(schedule: Schedule, day: date) -> int:
    if schedule.interval in ("month", "month_end"):
        return day.year * 12 + day.month - 1
    if schedule.interval in ("quarter", "quarter_end"):
        return day.year * 4 + (day.month - 1) // 3
    return day.year


def _runs_on(schedule: Schedule, day: date) -> bool:
    """For the day-granular intervals: does the schedule run on this date?"""
    if schedule.interval == "day":
        return True
    if schedule.interval == "week":
        return _sunday_based(day) in (schedule.recurring_days or (0,))
    if schedule.interval == "week_end":
        return _sunday_based(day) == SATURDAY
    return _sunday_based(day) in schedule.days_of_week  # custom


def run_dates(schedule: Schedule, start: date, forward: bool = True) -> Iterator[date]:
    """The schedule's dates from `start` (included) onwards, or backwards when not `forward`.

    Public holidays of the schedule's holiday region are left out.
    """
    holidays = schedule.holidays
    for day in _all_run_dates(schedule, start, forward):
        if holidays is None or day not in holidays:
            yield day


def _all_run_dates(schedule: Schedule, start: date, forward: bool) -> Iterator[date]:
    step = 1 if forward else -1
    if schedule.interval in ("day", "week", "week_end", "custom"):
        if schedule.interval == "custom" and not schedule.days_of_week:
            return
        day = start
        for _ in range(_MAX_PERIODS * 31):
            if _runs_on(schedule, day):
                yield day
            day += timedelta(days=step)
        return
    period = _period_of(schedule, start)
    for _ in range(_MAX_PERIODS):
        dates = _period_dates(schedule, period)
        for day in dates if forward else reversed(dates):
            if (day >= start) if forward else (day <= start):
                yield day
        period += step


def _day_slots(schedule: Schedule, day: date) -> list[int]:
    instants = [local_to_instant(datetime.combine(day, t), schedule.zone) for t in schedule.times]
    return sorted(set(instants))


# --------------------------------------------------------------------- slots


def next_slot(schedule: Schedule, after: int) -> int | None:
    """The first slot strictly after `after`; None only for a schedule with no dates."""
    # Start a day early: a slot on the previous local date can fall after
    # `after` when a gap pushes it forward.
    start = local_date(after, schedule.zone) - timedelta(days=1)
    for day in run_dates(schedule, start):
        for slot in _day_slots(schedule, day):
            if slot > after:
                return slot
    return None


def latest_slot(schedule: Schedule, at_or_before: int) -> int | None:
    """The last slot at or before `at_or_before`."""
    start = local_date(at_or_before, schedule.zone) + timedelta(days=1)
    for day in run_dates(schedule, start, forward=False):
        for slot in reversed(_day_slots(schedule, day)):
            if slot <= at_or_before:
                return slot
    return None


def slots_between(schedule: Schedule, start: int, end: int) -> list[int]:
    """Every slot in [start, end), in order."""
    found: list[int] = []
    cursor = start - 1
    while True:
        slot = next_slot(schedule, cursor)
        if slot is None or slot >= end:
            return found
        found.append(slot)
        cursor = slot


def upcoming_slots(schedule: Schedule, after: int, count: int) -> list[int]:
    """The next `count` slots strictly after `after`."""
    found: list[int] = []
    cursor = after
    while len(found) < count:
        slot = next_slot(schedule, cursor)
        if slot is None:
            break
        found.append(slot)
        cursor = slot
    return found


# ------------------------------------------------------------ scheduler rule


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the scheduler remembers about one automation between passes."""

    fingerprint: str
    seen_modified_at: int  # the automation's last_modified_at when last looked at
    since: int  # slots before this instant never run (schedule set or enabled then)
    next_slot: int | None  # the first slot not yet handled; None: nothing to do
    last_slot: int | None  # the last slot a run was created for


@dataclass(frozen=True, slots=True)
class Decision:
    run_slot: int | None  # create a run for this slot (at most one per pass)
    state: ScheduleState
    caught_up: bool = False  # run_slot is the latest of several slots that passed


def decide(automation: Automation, state: ScheduleState | None, now: int) -> Decision:
    """One scheduler pass over one automation.

    A pass runs only the most recent slot at or before `now` that has not
    been handled, so a scheduler that was down for a week runs a daily
    automation once on start-up, not seven times. A new or changed schedule,
    or re-enabling, starts from the automation's last_modified_at (the
    moment of the change): slots before it are never run.
    """
    mark = fingerprint(automation)
    fresh = state is None or state.fingerprint != mark
    since = automation.last_modified_at if fresh or state is None else state.since
    last = None if fresh or state is None else state.last_slot
    schedule = None
    if not (automation.disabled or automation.deleted):
        schedule = schedule_of(automation)
    if schedule is None:
        return Decision(None, ScheduleState(mark, automation.last_modified_at, since, None, last))
    if fresh or state is None or state.next_slot is None:
        floor = next_slot(schedule, since - 1)
    else:
        floor = state.next_slot
    run = None
    caught_up = False
    if floor is not None and floor <= now:
        run = latest_slot(schedule, now)
        if run is not None and run < floor:
            run = None
        caught_up = run is not None and run != floor
    following = next_slot(schedule, now)
    if floor is not None and floor > now:
        following = floor
    return Decision(
        run,
        ScheduleState(
            mark, automation.last_modified_at, since, following, run if run is not None else last
        ),
        caught_up,
    )


# -------------------------------------------------------------- description


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def human_readable_schedule(automation: Automation) -> str | None:
    """E.g. "Every Monday and Friday at 09:00, 17:30 (America/New_York)"; None if unscheduled."""
    zone = automation.schedule_time_zone or "UTC"
    times = ", ".join(sorted(set(automation.schedule_times_of_day))) or "00:00"
    if automation.trigger is Trigger.CUSTOM_SCHEDULE:
        days = [DAY_NAMES[d] for d in sorted(set(automation.schedule_days_of_week))]
        if len(days) == 7:
            when = "Every day"
        elif len(days) > 1:
            when = "Every " + ", ".join(days[:-1]) + " and " + days[-1]
        else:
            when = "Every " + (days[0] if days else "day")
        return f"{when} at {times} ({zone}){_holidays(automation)}"
    if automation.trigger is Trigger.DAILY:
        interval = automation.interval or "day"
        words = _INTERVAL_WORDS.get(interval, interval)
        recurring = recurring_days_of(automation)
        if interval == "week":
            names = [DAY_NAMES[d % 7] for d in recurring or (0,)]
            words = f"every week on {_joined(names)}"
        elif interval in ("month", "quarter", "year"):
            numbers = recurring or (1,)
            words = f"{words} on its {_joined([_ordinal(d) for d in numbers])} day"
            if max(numbers) > {"month": 28, "quarter": 90, "year": 365}[interval]:
                words += f" (the last day of a shorter {interval})"
        return f"{words[0].upper()}{words[1:]} at {times} ({zone}){_holidays(automation)}"
    return None


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _holidays(automation: Automation) -> str:
    region = automation.holiday_region
    return f", except public holidays in {region}" if region else ""
