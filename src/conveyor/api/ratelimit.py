"""Rate limits: a token bucket per API key, taken right after authentication
(`conveyor.api.auth`), and one per automation's webhook, taken once its secret matched.

One limiter, held on the application context (`AppContext.rate_limiter`, None
when limits are off), with one way in: `take_token`, a step
(`store.prepared.Steps`) run on the request's own connection. Where the
buckets live is the limiter's only choice (CONVEYOR_RATE_LIMIT_STORE; `auto`
is memory on SQLite and the database on PostgreSQL):

- in this process (the SQLite deployment, one API process): the arithmetic of
  `conveyor.domain.ratelimit`, no statement;
- in the database, so N API processes on PostgreSQL share one bucket per key:
  the same arithmetic in one upsert (`store.ratelimit.take_token`), a write
  among the request's reads.

A refused request is a 429 `rate-limited/too-many-requests` with Retry-After.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Dialect

from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.domain import errors
from conveyor.domain.ratelimit import Bucket, decide
from conveyor.store import ratelimit as store
from conveyor.store.prepared import Steps


class RateLimiter:
    """Token buckets of `rate` tokens a second, up to `burst`; kept in the database
    of `dialect` when one is given, else in this process."""

    def __init__(self, clock: Clock, rate: float, burst: int, dialect: Dialect | None) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.dialect = dialect
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, bucket: str) -> Steps[tuple[bool, int]]:
        """Take a token from `bucket` (an API key's hash, or a webhook's bucket name):
        (allowed, Retry-After seconds). A write, in the database or in memory."""
        now = self.clock.now()
        if self.dialect is not None:
            return (yield from store.take_token(self.dialect, bucket, now, self.rate, self.burst))
        with self._lock:
            decision = decide(self._buckets.get(bucket), now, self.rate, self.burst)
            self._buckets[bucket] = decision.bucket
        return decision.allowed, decision.retry_after

    def take_token(self, bucket: str, whose: str) -> Steps[None]:
        """Take a token from `bucket`; TooManyRequests (naming `whose` bucket it is)
        when it is empty."""
        allowed, wait = yield from self.take(bucket)
        if not allowed:
            raise errors.TooManyRequests(
                f"Too many requests for {whose}; retry in {wait} s.", retry_after=wait
            )


def make_limiter(settings: Settings, dialect: Dialect, clock: Clock) -> RateLimiter | None:
    """The limiter the settings ask for; None when limits are off (rate 0)."""
    if settings.rate_limit_rate <= 0:
        return None
    where = settings.rate_limit_store
    if where == "auto":
        where = "memory" if dialect.name == "sqlite" else "database"
    return RateLimiter(
        clock,
        settings.rate_limit_rate,
        settings.rate_limit_burst,
        dialect if where == "database" else None,
    )


def webhook_bucket(automation_id: int) -> str:
    """Webhook calls carry no API key: each automation's webhook has a bucket of its
    own (same rate and burst), taken only once the secret has matched, so calls
    with made-up secrets create no buckets."""
    return f"webhook:{automation_id}"
