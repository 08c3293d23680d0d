"""Rate limits: a token bucket per API key, checked right after authentication, and one
per automation's webhook, checked once its secret matched.

Two limiters follow the same arithmetic (conveyor.domain.ratelimit):
`MemoryLimiter` keeps buckets in this process (the SQLite deployment, one
API process); `DatabaseLimiter` keeps them in the database, so N API
processes on PostgreSQL share one bucket per key. CONVEYOR_RATE_LIMIT_STORE
picks one; `auto` means memory on SQLite and database on PostgreSQL.
A refused request is a 429 `rate-limited/too-many-requests` with Retry-After.
"""

from __future__ import annotations

import threading
from typing import Protocol

from fastapi import Request

from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.domain import errors
from conveyor.domain.ratelimit import Bucket, decide
from conveyor.store import ratelimit as store
from conveyor.store.database import Database
from conveyor.store.prepared import Reads
from conveyor.store.users import hash_key


class Limiter(Protocol):
    def take(self, key: str) -> tuple[bool, int]:
        """Take a token for `key` (an API key's hash, or a webhook's bucket name):
        (allowed, Retry-After seconds)."""
        ...


class MemoryLimiter:
    def __init__(self, clock: Clock, rate: float, burst: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> tuple[bool, int]:
        with self._lock:
            decision = decide(self._buckets.get(key), self.clock.now(), self.rate, self.burst)
            self._buckets[key] = decision.bucket
        return decision.allowed, decision.retry_after


class DatabaseLimiter:
    """Buckets in the database, through a small pool of its own.

    The check runs inside authentication, while the request holds a
    connection of the app's pool; taking a second one from that same pool
    would let a burst of requests exhaust it, each waiting for another.
    """

    def __init__(self, db: Database, clock: Clock, rate: float, burst: int) -> None:
        self.db = Database(db.url, role="rate-limits")
        self.clock = clock
        self.rate = rate
        self.burst = burst

    def take(self, key: str) -> tuple[bool, int]:
        return self.db.run_write(
            lambda conn: store.take(conn, key, self.clock.now(), self.rate, self.burst)
        )


def make_limiter(settings: Settings, db: Database, clock: Clock) -> Limiter | None:
    """The limiter the settings ask for; None when limits are off (rate 0)."""
    if settings.rate_limit_rate <= 0:
        return None
    where = settings.rate_limit_store
    if where == "auto":
        where = "memory" if db.is_sqlite else "database"
    if where == "memory":
        return MemoryLimiter(clock, settings.rate_limit_rate, settings.rate_limit_burst)
    return DatabaseLimiter(db, clock, settings.rate_limit_rate, settings.rate_limit_burst)


def enforce(request: Request, api_key: str) -> None:
    """Raise TooManyRequests when the key's bucket is empty."""
    # Buckets are keyed by the key's hash, so no raw key is kept (or stored).
    _take(request, hash_key(api_key), "this API key")


def enforce_webhook(request: Request, automation_id: int) -> None:
    """Raise TooManyRequests when the automation's webhook bucket is empty.

    Webhook calls carry no API key: each automation's webhook has a bucket of
    its own (same rate and burst), taken only once the secret has matched, so
    calls with made-up secrets create no buckets.
    """
    _take(request, f"webhook:{automation_id}", "this webhook")


def enforce_steps(request: Request, api_key: str) -> Reads[None]:
    """`enforce` as a reading generator (`store.prepared.Read`): a bucket in the
    database is taken with one statement on the request's own connection (in
    autocommit there, so it commits at once), not through the limiter's pool."""
    limiter: Limiter | None = getattr(request.app.state, "rate_limiter", None)
    if isinstance(limiter, DatabaseLimiter):
        dialect = request.app.state.ctx.db.engine.dialect
        now = limiter.clock.now()
        decision = yield from store.take_reads(
            dialect, hash_key(api_key), now, limiter.rate, limiter.burst
        )
        _refuse_unless(decision, "this API key")
    elif limiter is not None:
        _refuse_unless(limiter.take(hash_key(api_key)), "this API key")


def _take(request: Request, bucket: str, whose: str) -> None:
    limiter: Limiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        _refuse_unless(limiter.take(bucket), whose)


def _refuse_unless(decision: tuple[bool, int], whose: str) -> None:
    allowed, wait = decision
    if not allowed:
        raise errors.TooManyRequests(
            f"Too many requests for {whose}; retry in {wait} s.", retry_after=wait
        )
