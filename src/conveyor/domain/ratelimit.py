"""The token bucket behind per-API-key rate limits: pure arithmetic, no I/O.

A bucket holds up to `burst` tokens and gains `rate` tokens per second; a
request takes one token or, when less than one is left, is refused with the
whole seconds until one will be there (the `Retry-After` of the 429). The
in-process limiter and the database limiter (store.ratelimit, which does the
same arithmetic in SQL) both follow `decide`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

US = 1_000_000


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated_at: int  # microseconds since the epoch


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    bucket: Bucket
    retry_after: int  # whole seconds; 0 when allowed


def refill(bucket: Bucket, now: int, rate: float, burst: int) -> float:
    """Tokens in the bucket at `now`. A clock that went back adds nothing."""
    elapsed = max(0, now - bucket.updated_at)
    return min(float(burst), bucket.tokens + elapsed * rate / US)


def retry_after(tokens: float, rate: float) -> int:
    """Whole seconds until `tokens` has grown to one token; at least 1."""
    return max(1, math.ceil((1.0 - tokens) / rate))


def decide(bucket: Bucket | None, now: int, rate: float, burst: int) -> Decision:
    """Take one token from the bucket (a new key starts full), or refuse."""
    tokens = float(burst) if bucket is None else refill(bucket, now, rate, burst)
    updated_at = now if bucket is None else max(now, bucket.updated_at)
    if tokens >= 1.0:
        return Decision(True, Bucket(tokens - 1.0, updated_at), 0)
    return Decision(False, Bucket(tokens, updated_at), retry_after(tokens, rate))
