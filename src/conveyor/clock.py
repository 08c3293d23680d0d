"""Time as integer microseconds since the Unix epoch (UTC), from an injectable clock.

All stored times are such integers: exact, portable across SQLite and
PostgreSQL, and sortable. `to_rfc3339` renders them for the wire.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> int:
        """Microseconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> int:
        return time.time_ns() // 1000


class ManualClock:
    """A clock that only moves when told to; for tests of schedules and leases."""

    def __init__(self, start: int = 1_700_000_000_000_000) -> None:
        self.value = start

    def now(self) -> int:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += int(seconds * 1_000_000)


def to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; give a timezone")
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# Formatting is on the hot path of every listed run (two or three times per run),
# and strftime is most of that cost: the text up to the hour is formatted once per
# hour and kept (bounded: a few years of hours), minutes and seconds come from a
# table. A walk over a million runs a second apart touches 278 hours. The API's
# encoder (conveyor.api.encode) reads these two tables itself, in its loop.
HOUR_PREFIXES: dict[int, str] = {}
_HOUR_PREFIXES_MAX = 50_000
MINUTES_SECONDS = [f"{m:02d}:{s:02d}Z" for m in range(60) for s in range(60)]


def hour_prefix(hour: int) -> str:
    """`2024-02-16T12:` for an hour since the epoch, formatted once and kept."""
    prefix = HOUR_PREFIXES.get(hour)
    if prefix is None:
        if len(HOUR_PREFIXES) >= _HOUR_PREFIXES_MAX:
            HOUR_PREFIXES.clear()
        prefix = time.strftime("%Y-%m-%dT%H:", time.gmtime(hour * 3600))
        HOUR_PREFIXES[hour] = prefix
    return prefix


def to_rfc3339(us: int | None) -> str | None:
    """`2024-02-16T12:46:41Z`: whole seconds, UTC, as SPEC 1 shows them."""
    if us is None:
        return None
    seconds = us // 1_000_000
    hour = seconds // 3600
    return (HOUR_PREFIXES.get(hour) or hour_prefix(hour)) + MINUTES_SECONDS[seconds % 3600]
