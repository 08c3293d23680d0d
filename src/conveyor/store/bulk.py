"""Bulk cancel and rerun: the remembered answers of their Idempotency-Keys.

A bulk request that acts writes its answer here in the same transaction as its
cancels or reruns, keyed by (user, Idempotency-Key) with a hash of what it was
asked. Repeated, it finds the row and answers the same without acting again;
two at once cannot both act, as the second insert of the key conflicts (and
rolls back everything it did).

A key is remembered for `KEY_LIFETIME_US` (24 hours, as common APIs keep
theirs) and then forgotten by the retention pass (`expire_keys`, from
`engine.retention`): after that, the same key is a new request. The table thus
holds about a day of bulk requests, so the pass reads it whole, without an index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from conveyor.store.schema import bulk_requests

KEY_LIFETIME_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class Remembered:
    request_hash: str
    result: str  # the answer's JSON


def remembered(conn: Connection, user_id: int, key: str) -> Remembered | None:
    row = conn.execute(
        select(bulk_requests.c.request_hash, bulk_requests.c.result).where(
            bulk_requests.c.user_id == user_id, bulk_requests.c.idempotency_key == key
        )
    ).first()
    return None if row is None else Remembered(row.request_hash, row.result)


def remember(
    conn: Connection, user_id: int, key: str, request_hash: str, result: str, now: int
) -> None:
    conn.execute(
        bulk_requests.insert().values(
            user_id=user_id,
            idempotency_key=key,
            request_hash=request_hash,
            result=result,
            created_at=now,
        )
    )


def claim(conn: Connection, user_id: int, key: str, request_hash: str, now: int) -> None:
    """Take the key first in the acting transaction: a concurrent request with the
    same key waits on it (PostgreSQL) and then fails to insert it, so only one acts."""
    remember(conn, user_id, key, request_hash, "", now)


def settle(conn: Connection, user_id: int, key: str, result: str) -> None:
    """Record the answer of the request that claimed the key."""
    conn.execute(
        bulk_requests.update()
        .where(bulk_requests.c.user_id == user_id, bulk_requests.c.idempotency_key == key)
        .values(result=result)
    )


def expire_keys(conn: Connection, now: int, limit: int) -> int:
    """Forget at most `limit` keys remembered for longer than `KEY_LIFETIME_US`;
    returns how many went."""
    old = (
        select(bulk_requests.c.user_id, bulk_requests.c.idempotency_key)
        .where(bulk_requests.c.created_at < now - KEY_LIFETIME_US)
        .limit(limit)
    )
    result = conn.execute(
        delete(bulk_requests).where(
            tuple_(bulk_requests.c.user_id, bulk_requests.c.idempotency_key).in_(old)
        )
    )
    return int(result.rowcount)
