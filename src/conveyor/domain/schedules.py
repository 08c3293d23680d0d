"""Schedule arithmetic for `daily` and `custom_schedule` triggers, and their descriptions.

Pure Python on zoneinfo. `human_readable_schedule` renders what Files.com
shows in the field of the same name.
"""

from __future__ import annotations

from conveyor.domain.automations import Automation, Trigger

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


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def human_readable_schedule(automation: Automation) -> str | None:
    """E.g. "Every Monday and Friday at 09:00, 17:30 (America/New_York)"; None if unscheduled."""
    zone = automation.schedule_time_zone or "UTC"
    times = ", ".join(automation.schedule_times_of_day) or "00:00"
    if automation.trigger is Trigger.CUSTOM_SCHEDULE:
        days = [DAY_NAMES[d] for d in sorted(set(automation.schedule_days_of_week))]
        if len(days) == 7:
            when = "Every day"
        elif len(days) > 1:
            when = "Every " + ", ".join(days[:-1]) + " and " + days[-1]
        else:
            when = "Every " + (days[0] if days else "day")
        return f"{when} at {times} ({zone})"
    if automation.trigger is Trigger.DAILY:
        interval = automation.interval or "day"
        words = _INTERVAL_WORDS.get(interval, interval)
        day = automation.recurring_day
        if day and interval == "week":
            words = f"every week on {DAY_NAMES[day % 7]}"
        elif day and interval in ("month", "quarter", "year"):
            words = f"{words} on day {_ordinal(day)}"
        return f"{words[0].upper()}{words[1:]} at {times} ({zone})"
    return None
