"""How long a finished run and its log are kept: the default, a per-automation override.

Days, from the run's `completed_at`; 0 keeps runs forever. An unfinished run
has no expiry: it is never pruned.
"""

from __future__ import annotations

DAY_US = 86_400 * 1_000_000


def retention_days(override: int | None, default: int) -> int:
    """The automation's own setting when it has one, else CONVEYOR_RETENTION_DAYS."""
    return default if override is None else override


def log_expires_at(completed_at: int | None, override: int | None, default: int) -> int | None:
    """When the run (and its status messages) becomes eligible for pruning, or None: never."""
    days = retention_days(override, default)
    if completed_at is None or days <= 0:
        return None
    return completed_at + days * DAY_US


def cutoff(now: int, days: int) -> int:
    """Runs completed before this time have expired."""
    return now - days * DAY_US
