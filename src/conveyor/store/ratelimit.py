"""Rate-limit buckets in the database, so every API process shares one bucket per key.

One statement decides and records: an upsert whose SET expressions compute
the refilled bucket from the row as it was (domain.ratelimit.decide, in SQL)
and whose RETURNING reads the decision back. The row lock the UPDATE takes
serializes concurrent requests of the same key on PostgreSQL; on SQLite the
write transaction does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, bindparam, case, func, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

from conveyor.domain.ratelimit import US, retry_after
from conveyor.store.prepared import Prepared, Statement, Steps
from conveyor.store.schema import rate_limit_buckets as buckets_t


def take_token(
    dialect: Dialect, key: str, now: int, rate: float, burst: int
) -> Steps[tuple[bool, int]]:
    """Take a token from `key`'s bucket: (allowed, Retry-After seconds when refused).

    A write: one upsert, run on the request's own connection among its reads
    (in autocommit on PostgreSQL, so it commits at once and holds the bucket's
    row lock only for the statement)."""
    statement = _TAKE[dialect.name].for_dialect(dialect)
    values = {"key": key, "now": now, "rate": float(rate), "burst": float(burst)}
    rows = yield Statement(statement, values, write=True)
    allowed, tokens = rows[0]
    if allowed:
        return True, 0
    return False, retry_after(float(tokens), rate)


def _take_statement(is_pg: bool) -> Any:
    least, greatest = (func.least, func.greatest) if is_pg else (func.min, func.max)
    now = bindparam("now", type_=BigInteger())
    rate = bindparam("rate", type_=Float())
    burst = bindparam("burst", type_=Float())
    elapsed = greatest(literal(0), now - buckets_t.c.updated_at)
    # The same float operations, in the same order, as domain.ratelimit.refill.
    gained = elapsed * rate / literal(float(US))
    refilled: Any = least(burst, buckets_t.c.tokens + gained)
    insert = (postgresql.insert if is_pg else sqlite.insert)(buckets_t).values(
        key=bindparam("key", type_=buckets_t.c.key.type),
        tokens=burst - literal(1.0),
        updated_at=now,
        allowed=True,
    )
    return insert.on_conflict_do_update(
        index_elements=[buckets_t.c.key],
        set_={
            "tokens": case((refilled >= 1.0, refilled - 1.0), else_=refilled),
            "updated_at": greatest(now, buckets_t.c.updated_at),
            "allowed": refilled >= 1.0,
        },
    ).returning(buckets_t.c.allowed, buckets_t.c.tokens)


_TAKE = {
    "postgresql": Prepared(lambda: _take_statement(is_pg=True)),
    "sqlite": Prepared(lambda: _take_statement(is_pg=False)),
}


def forget_all(conn: Connection) -> None:
    """Empty every bucket (tests, or an operator resetting limits)."""
    conn.execute(buckets_t.delete())
