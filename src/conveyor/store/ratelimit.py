"""Rate-limit buckets in the database, so every API process shares one bucket per key.

One statement decides and records: an upsert whose SET expressions compute
the refilled bucket from the row as it was (domain.ratelimit.decide, in SQL)
and whose RETURNING reads the decision back. The row lock the UPDATE takes
serializes concurrent requests of the same key on PostgreSQL; on SQLite the
write transaction does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from conveyor.domain.ratelimit import US, retry_after
from conveyor.store.schema import rate_limit_buckets as buckets_t


def take(conn: Connection, key: str, now: int, rate: float, burst: int) -> tuple[bool, int]:
    """Take a token from `key`'s bucket: (allowed, Retry-After seconds when refused)."""
    is_pg = conn.dialect.name == "postgresql"
    least, greatest = (func.least, func.greatest) if is_pg else (func.min, func.max)
    elapsed = greatest(literal(0), literal(now) - buckets_t.c.updated_at)
    # The same float operations, in the same order, as domain.ratelimit.refill.
    gained = elapsed * literal(float(rate)) / literal(float(US))
    refilled: Any = least(literal(float(burst)), buckets_t.c.tokens + gained)
    insert = (postgresql.insert if is_pg else sqlite.insert)(buckets_t).values(
        key=key, tokens=float(burst) - 1.0, updated_at=now, allowed=True
    )
    statement = insert.on_conflict_do_update(
        index_elements=[buckets_t.c.key],
        set_={
            "tokens": case((refilled >= 1.0, refilled - 1.0), else_=refilled),
            "updated_at": greatest(literal(now), buckets_t.c.updated_at),
            "allowed": refilled >= 1.0,
        },
    ).returning(buckets_t.c.allowed, buckets_t.c.tokens)
    allowed, tokens = conn.execute(statement).one()
    if allowed:
        return True, 0
    return False, retry_after(float(tokens), rate)


def forget_all(conn: Connection) -> None:
    """Empty every bucket (tests, or an operator resetting limits)."""
    conn.execute(buckets_t.delete())
