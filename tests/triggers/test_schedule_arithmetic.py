"""Schedule slots: every interval, month ends, leap years and DST, against an independent oracle.

The property test draws thousands of random automations (interval,
recurring_day, days of week, times, zone) and windows of simulated time,
half of them placed around a daylight-saving change, and compares Conveyor's
slots with the croniter-based oracle in schedule_oracle.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schedule_oracle import oracle_slots

from conveyor.clock import from_datetime, to_datetime
from conveyor.domain.automations import (
    INTERVALS,
    Automation,
    AutomationType,
    Trigger,
    validate_fields,
)
from conveyor.domain.schedules import (
    human_readable_schedule,
    latest_slot,
    local_to_instant,
    next_slot,
    schedule_of,
    slots_between,
    upcoming_slots,
)

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
# DST in both hemispheres, a 30-minute DST (Lord Howe), a zone changing at
# midnight (Santiago), no DST (Kolkata), +12:45/+13:45 (Chatham).
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Eastern Time (US & Canada)",
    "Central Time (US & Canada)",
]
IANA = {
    "Eastern Time (US & Canada)": "America/New_York",
    "Central Time (US & Canada)": "America/Chicago",
}
RECURRING_LIMITS = {"week": (0, 6), "month": (1, 31), "quarter": (1, 92), "year": (1, 366)}
# Windows long enough for a good number of slots of each interval.
WINDOW_DAYS = {
    "day": 20,
    "custom": 40,
    "week": 150,
    "week_end": 150,
    "month": 700,
    "month_end": 700,
    "quarter": 1800,
    "quarter_end": 1800,
    "year": 5500,
    "year_end": 5500,
}
FIRST = datetime(1996, 1, 1, tzinfo=UTC)
LAST = datetime(2036, 1, 1, tzinfo=UTC)


def make(trigger: Trigger = Trigger.DAILY, **fields: object) -> Automation:
    return Automation(
        id=1, user_id=1, automation=AutomationType.CREATE_FOLDER, trigger=trigger, **fields
    )  # type: ignore[arg-type]


def utc(*parts: int) -> int:
    return from_datetime(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


def local(zone: ZoneInfo, slot: int) -> datetime:
    return to_datetime(slot).astimezone(zone)


@cache
def transition_days(zone_name: str) -> list[int]:
    """Instants (midnight UTC) of days on which the zone's UTC offset changes, 1996-2035."""
    zone = ZoneInfo(IANA.get(zone_name, zone_name))
    days = []
    moment = FIRST
    previous = moment.astimezone(zone).utcoffset()
    while moment < LAST:
        moment += timedelta(days=1)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            days.append(from_datetime(moment - timedelta(days=1)))
        previous = offset
    return days


# ------------------------------------------------------------------ property


@st.composite
def automations(draw: st.DrawFn) -> tuple[Automation, int, int]:
    kind = draw(st.sampled_from(["custom", *INTERVALS]))
    zone = draw(st.sampled_from(ZONES))
    # Night hours are where DST changes happen; draw them often.
    hour = st.one_of(st.integers(0, 3), st.integers(0, 23))
    times = draw(
        st.lists(st.tuples(hour, st.sampled_from([0, 15, 30, 45, 59])), min_size=1, max_size=3)
    )
    texts = [f"{h:02d}:{m:02d}" for h, m in times]
    if kind == "custom":
        days = draw(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True))
        body = {"trigger": "custom_schedule", "schedule_days_of_week": days}
    else:
        body = {"trigger": "daily", "interval": kind}
        if kind in RECURRING_LIMITS and draw(st.booleans()):
            low, high = RECURRING_LIMITS[kind]
            # The ends of the range are where clamping to a shorter period happens.
            body["recurring_day"] = draw(
                st.one_of(st.integers(low, high), st.sampled_from([low, high, high - 1]))
            )
    body.update(
        automation="create_folder",
        destinations=["out"],
        schedule_times_of_day=texts,
        schedule_time_zone=zone,
    )
    values = validate_fields(body)  # only automations the API would accept
    automation = make(
        Trigger(values["trigger"]),
        interval=values.get("interval"),
        recurring_day=values.get("recurring_day"),
        schedule_days_of_week=tuple(values.get("schedule_days_of_week") or ()),
        schedule_times_of_day=tuple(texts),
        schedule_time_zone=zone,
    )
    window = WINDOW_DAYS[kind] * 86_400_000_000
    if draw(st.booleans()):
        anchors = transition_days(zone) or [from_datetime(FIRST)]
        anchor = draw(st.sampled_from(anchors))
        start = anchor - draw(st.integers(0, min(window // 2, 10 * 86_400_000_000)))
    else:
        start = draw(st.integers(from_datetime(FIRST), from_datetime(LAST) - window))
    return automation, start, start + window


@seed(20240310)
@settings(
    max_examples=2000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(automations())
def test_slots_match_the_independent_computation(case: tuple[Automation, int, int]) -> None:
    automation, start, end = case
    schedule = schedule_of(automation)
    assert schedule is not None
    times = sorted({(int(t[:2]), int(t[3:])) for t in automation.schedule_times_of_day})
    expected = oracle_slots(
        schedule.interval,
        automation.recurring_day,
        list(automation.schedule_days_of_week),
        times,
        schedule.zone,
        start,
        end,
    )
    assert slots_between(schedule, start, end) == expected
    # The neighbours of any instant agree with the listing.
    middle = (start + end) // 2
    before = [slot for slot in expected if slot <= middle]
    after = [slot for slot in expected if slot > middle]
    if before:
        assert latest_slot(schedule, middle) == before[-1]
    if after:
        assert next_slot(schedule, middle) == after[0]


# ----------------------------------------------------------------- DST rules


def dst_days(zone: ZoneInfo, year: int) -> tuple[date, date]:
    """(the day clocks go forward, the day they go back) in `year`."""
    changes = []
    day = date(year, 1, 1)
    while day.year == year:
        before = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
        after_day = day + timedelta(days=1)
        after = datetime(after_day.year, after_day.month, after_day.day, tzinfo=zone).utcoffset()
        if before != after:
            assert before is not None and after is not None
            changes.append((day, after > before))
        day = after_day
    forward = next(d for d, ahead in changes if ahead)
    back = next(d for d, ahead in changes if not ahead)
    return forward, back


@pytest.mark.parametrize(
    ("zone_name", "gap_time", "jump_to", "fold_time"),
    [
        ("America/New_York", "02:30", (3, 0), "01:30"),
        ("Europe/London", "01:30", (2, 0), "01:30"),
        ("Australia/Sydney", "02:30", (3, 0), "02:30"),
    ],
)
def test_dst_gaps_run_once_at_the_jump_and_folds_once_at_the_first_occurrence(
    zone_name: str, gap_time: str, jump_to: tuple[int, int], fold_time: str
) -> None:
    zone = ZoneInfo(zone_name)
    for year in range(2015, 2031):
        forward, back = dst_days(zone, year)
        gap = schedule_of(make(schedule_times_of_day=(gap_time,), schedule_time_zone=zone_name))
        fold = schedule_of(make(schedule_times_of_day=(fold_time,), schedule_time_zone=zone_name))
        assert gap is not None and fold is not None

        day_start = from_datetime(datetime(forward.year, forward.month, forward.day, tzinfo=zone))
        slots = slots_between(gap, day_start, day_start + 86_400_000_000)
        assert len(slots) == 1
        moment = local(zone, slots[0])
        # The local time does not exist: it runs once, the moment the clock jumps.
        assert (moment.date(), moment.hour, moment.minute) == (forward, *jump_to)
        assert local(zone, slots[0] - 1_000_000).hour < int(gap_time[:2]) + 1

        day_start = from_datetime(datetime(back.year, back.month, back.day, tzinfo=zone))
        slots = slots_between(fold, day_start, day_start + 86_400_000_000 + 3_600_000_000)
        assert len(slots) == 1
        moment = local(zone, slots[0])
        assert moment.strftime("%H:%M") == fold_time and moment.date() == back
        # The first of the two occurrences: still on summer time.
        assert moment.dst() != timedelta(0)


def test_times_that_meet_in_a_gap_are_one_slot() -> None:
    schedule = schedule_of(
        make(
            schedule_times_of_day=("02:00", "02:30", "03:00"), schedule_time_zone="America/New_York"
        )
    )
    assert schedule is not None
    slots = slots_between(schedule, utc(2024, 3, 10), utc(2024, 3, 11))
    assert [local(NEW_YORK, s).isoformat() for s in slots] == ["2024-03-10T03:00:00-04:00"]
    assert local_to_instant(datetime(2024, 11, 3, 1, 30), NEW_YORK) == utc(2024, 11, 3, 5, 30)


# ------------------------------------------------------- calendar edge cases


def dates(automation: Automation, start: int, end: int) -> list[str]:
    schedule = schedule_of(automation)
    assert schedule is not None
    return [
        local(schedule.zone, s).strftime("%Y-%m-%d %H:%M %a")
        for s in slots_between(schedule, start, end)
    ]


def test_month_day_31_runs_on_the_last_day_of_shorter_months_and_feb_29_in_leap_years() -> None:
    found = dates(make(interval="month", recurring_day=31), utc(2023, 1, 1), utc(2024, 6, 1))
    assert [d[:10] for d in found] == [
        "2023-01-31",
        "2023-02-28",
        "2023-03-31",
        "2023-04-30",
        "2023-05-31",
        "2023-06-30",
        "2023-07-31",
        "2023-08-31",
        "2023-09-30",
        "2023-10-31",
        "2023-11-30",
        "2023-12-31",
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
        "2024-05-31",
    ]


def test_year_days_follow_leap_years() -> None:
    day_60 = dates(make(interval="year", recurring_day=60), utc(2023, 1, 1), utc(2026, 1, 1))
    assert [d[:10] for d in day_60] == ["2023-03-01", "2024-02-29", "2025-03-01"]
    day_366 = dates(make(interval="year", recurring_day=366), utc(2023, 1, 1), utc(2026, 1, 1))
    assert [d[:10] for d in day_366] == ["2023-12-31", "2024-12-31", "2025-12-31"]
    year_end = dates(make(interval="year_end"), utc(2023, 1, 1), utc(2025, 1, 1))
    assert [d[:10] for d in year_end] == ["2023-12-31", "2024-12-31"]
    first = dates(make(interval="year"), utc(2023, 1, 1), utc(2025, 1, 2))
    assert [d[:10] for d in first] == ["2023-01-01", "2024-01-01", "2025-01-01"]


def test_quarter_days_clamp_to_each_quarter_and_quarter_ends() -> None:
    day_92 = dates(make(interval="quarter", recurring_day=92), utc(2024, 1, 1), utc(2025, 1, 1))
    assert [d[:10] for d in day_92] == ["2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31"]
    day_91 = dates(make(interval="quarter", recurring_day=91), utc(2023, 1, 1), utc(2024, 1, 1))
    assert [d[:10] for d in day_91] == ["2023-03-31", "2023-06-30", "2023-09-29", "2023-12-30"]
    ends = dates(
        make(interval="quarter_end", schedule_times_of_day=("23:59",)),
        utc(2024, 1, 1),
        utc(2025, 1, 1),
    )
    assert ends == [
        "2024-03-31 23:59 Sun",
        "2024-06-30 23:59 Sun",
        "2024-09-30 23:59 Mon",
        "2024-12-31 23:59 Tue",
    ]


def test_weeks_start_on_sunday_and_end_on_saturday() -> None:
    start, end = utc(2024, 5, 1), utc(2024, 5, 22)
    assert dates(make(interval="week"), start, end) == [
        "2024-05-05 00:00 Sun",
        "2024-05-12 00:00 Sun",
        "2024-05-19 00:00 Sun",
    ]
    assert dates(make(interval="week", recurring_day=3), start, end) == [
        "2024-05-01 00:00 Wed",
        "2024-05-08 00:00 Wed",
        "2024-05-15 00:00 Wed",
    ]
    assert dates(make(interval="week_end"), start, end) == [
        "2024-05-04 00:00 Sat",
        "2024-05-11 00:00 Sat",
        "2024-05-18 00:00 Sat",
    ]
    assert dates(make(interval="month_end"), utc(2024, 1, 1), utc(2024, 4, 1)) == [
        "2024-01-31 00:00 Wed",
        "2024-02-29 00:00 Thu",
        "2024-03-31 00:00 Sun",
    ]


def test_custom_schedule_in_a_files_com_zone() -> None:
    automation = make(
        Trigger.CUSTOM_SCHEDULE,
        schedule_days_of_week=(1, 5),
        schedule_times_of_day=("17:30", "09:00"),
        schedule_time_zone="Eastern Time (US & Canada)",
    )
    schedule = schedule_of(automation)
    assert schedule is not None
    slots = upcoming_slots(schedule, utc(2024, 3, 8, 15), 5)
    assert [local(NEW_YORK, s).isoformat() for s in slots] == [
        "2024-03-08T17:30:00-05:00",
        "2024-03-11T09:00:00-04:00",
        "2024-03-11T17:30:00-04:00",
        "2024-03-15T09:00:00-04:00",
        "2024-03-15T17:30:00-04:00",
    ]


def test_default_time_is_midnight_utc() -> None:
    assert dates(make(interval="day"), utc(2024, 2, 28), utc(2024, 3, 2)) == [
        "2024-02-28 00:00 Wed",
        "2024-02-29 00:00 Thu",
        "2024-03-01 00:00 Fri",
    ]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"interval": "day"}, "Every day at 00:00 (UTC)"),
        ({"interval": "week", "recurring_day": 2}, "Every week on Tuesday at 00:00 (UTC)"),
        ({"interval": "week"}, "Every week on Sunday at 00:00 (UTC)"),
        (
            {"interval": "month", "recurring_day": 15, "schedule_times_of_day": ("06:00",)},
            "Every month on its 15th day at 06:00 (UTC)",
        ),
        (
            {"interval": "month", "recurring_day": 31},
            "Every month on its 31st day (the last day of a shorter month) at 00:00 (UTC)",
        ),
        (
            {"interval": "quarter_end", "schedule_time_zone": "London"},
            "At the end of every quarter at 00:00 (London)",
        ),
    ],
)
def test_human_readable_schedule(fields: dict[str, object], text: str) -> None:
    assert human_readable_schedule(make(**fields)) == text  # type: ignore[arg-type]
    assert human_readable_schedule(make(Trigger.MANUAL)) is None


# ----------------------------------------------- recurring_days and holiday_region


def _daily(**fields: object) -> Automation:
    return Automation(
        id=1, user_id=1, automation=AutomationType.CREATE_FOLDER, trigger=Trigger.DAILY, **fields
    )  # type: ignore[arg-type]


def _utc(*args: int) -> int:
    return from_datetime(datetime(*args, tzinfo=UTC))


def test_recurring_days_run_on_each_listed_day_of_the_period() -> None:
    weekly = schedule_of(
        _daily(interval="week", recurring_days=(5, 1), schedule_times_of_day=("08:00",))
    )
    assert weekly is not None
    slots = upcoming_slots(weekly, _utc(2026, 12, 6), 4)  # a Sunday
    assert [to_datetime(s).strftime("%a %d") for s in slots] == [
        "Mon 07",
        "Fri 11",
        "Mon 14",
        "Fri 18",
    ]
    quarterly = schedule_of(_daily(interval="quarter", recurring_days=(92, 1)))
    assert quarterly is not None
    slots = upcoming_slots(quarterly, _utc(2026, 1, 1, 1), 3)
    # Day 92 of a 90-day quarter is its last day.
    assert [to_datetime(s).date().isoformat() for s in slots] == [
        "2026-03-31",
        "2026-04-01",
        "2026-06-30",
    ]


def test_a_holiday_region_skips_the_slots_on_its_public_holidays() -> None:
    automation = _daily(schedule_times_of_day=("09:00",), holiday_region="us")
    schedule = schedule_of(automation)
    assert schedule is not None
    slots = upcoming_slots(schedule, _utc(2026, 12, 23, 12), 3)
    assert [to_datetime(s).date().isoformat() for s in slots] == [
        "2026-12-24",
        "2026-12-26",  # Christmas Day is a US public holiday
        "2026-12-27",
    ]
    assert latest_slot(schedule, _utc(2026, 12, 25, 23)) == _utc(2026, 12, 24, 9)
    # A region's own holidays, observed days included: in the UK Boxing Day (a Saturday in
    # 2026) is observed on Monday the 28th.
    uk = schedule_of(_daily(schedule_times_of_day=("09:00",), holiday_region="gb"))
    assert uk is not None
    assert upcoming_slots(uk, _utc(2026, 12, 24, 12), 2) == [
        _utc(2026, 12, 27, 9),
        _utc(2026, 12, 29, 9),
    ]


def test_h_mm_times_are_stored_as_hh_mm() -> None:
    values = validate_fields(
        {
            "automation": "create_folder",
            "destinations": ["x"],
            "trigger": "custom_schedule",
            "schedule_days_of_week": [1],
            "schedule_times_of_day": ["7:30", "07:45", "0:00"],
        }
    )
    assert values["schedule_times_of_day"] == ("07:30", "07:45", "00:00")
