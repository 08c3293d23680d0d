"""One-time form tokens: a form that creates something does it once, however often it is sent.

The web UI's create form carries a token issued with the page. Submitting it
claims the token in the same transaction that creates the record, and keeps
where the record can be seen; a second submit of the same form (a double
click, a reload that re-posts) finds the claim and is sent to the first
result instead of creating again. Claims live in the `settings` table under
`form:` + token (its primary key makes the claim atomic on both databases;
on PostgreSQL a concurrent second claim waits for the first transaction and
then sees it). A token starts with its issue time, so claims older than
MAX_AGE_US are one key range, removed whenever a new claim is made.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from conveyor.store.schema import settings

PREFIX = "form:"
MAX_AGE_US = 24 * 3600 * 1_000_000
_TIME_DIGITS = 10  # issue time in seconds, hex: fixed width so keys sort by time
_RANDOM_HEX = 32


def issue(now: int) -> str:
    """A new token: its issue time and 128 random bits, as 42 hex digits."""
    return f"{now // 1_000_000:0{_TIME_DIGITS}x}{secrets.token_hex(_RANDOM_HEX // 2)}"


def issued_at(token: str) -> int | None:
    """When the token was issued (µs), or None if it is not one this module issues."""
    if len(token) != _TIME_DIGITS + _RANDOM_HEX or not all(c in "0123456789abcdef" for c in token):
        return None
    return int(token[:_TIME_DIGITS], 16) * 1_000_000


def claim(conn: Connection, token: str, now: int) -> str | None:
    """Claim the token in this transaction. None when it was free (go on and create);
    otherwise what the earlier claim recorded with `record` (where its result is)."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    cutoff = f"{PREFIX}{max(0, now - MAX_AGE_US) // 1_000_000:0{_TIME_DIGITS}x}"
    conn.execute(delete(settings).where(settings.c.key >= PREFIX, settings.c.key < cutoff))
    claimed = conn.execute(
        insert(settings)
        .values(key=PREFIX + token, value="")
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(settings.c.key)
    ).first()
    if claimed is not None:
        return None
    value = conn.execute(
        select(settings.c.value).where(settings.c.key == PREFIX + token)
    ).scalar_one_or_none()
    return value or ""


def record(conn: Connection, token: str, result: str) -> None:
    """Keep what the claim produced (a page's path) for a repeated submit to find."""
    conn.execute(update(settings).where(settings.c.key == PREFIX + token).values(value=result))
