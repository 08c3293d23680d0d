"""Per-API-key token buckets: exact arithmetic with a ManualClock, 429s over real HTTP,
limits shared by two API processes' apps on one PostgreSQL database, and both SDKs backing off."""

from __future__ import annotations

import math
from typing import Any

import files_sdk
import httpx
import pytest
from ops_support import Serve, sample, scrape
from sqlalchemy.engine import Connection

from conveyor import sdk
from conveyor.api.ratelimit import RateLimiter
from conveyor.clock import ManualClock
from conveyor.config import ConfigError, Settings
from conveyor.domain.ratelimit import Bucket, decide
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.testing.seed import Seeder

API = "/api/rest/v1"


def test_decide_refills_at_the_rate_up_to_the_burst() -> None:
    full = decide(None, 0, rate=0.5, burst=2)
    assert full.allowed and full.bucket == Bucket(1.0, 0)
    second = decide(full.bucket, 0, 0.5, 2)
    assert second.allowed and second.bucket.tokens == 0.0
    refused = decide(second.bucket, 0, 0.5, 2)
    # One token takes 2 s at 0.5 per second.
    assert (refused.allowed, refused.retry_after) == (False, 2)
    one_second = decide(refused.bucket, 1_000_000, 0.5, 2)
    assert (one_second.allowed, one_second.retry_after) == (False, 1)
    two_seconds = decide(refused.bucket, 2_000_000, 0.5, 2)
    assert two_seconds.allowed and two_seconds.bucket.tokens == 0.0
    much_later = decide(two_seconds.bucket, 3_600_000_000, 0.5, 2)
    assert much_later.bucket.tokens == 1.0  # capped at the burst of 2, minus this request


def test_a_clock_that_goes_back_adds_no_tokens() -> None:
    bucket = Bucket(0.0, 10_000_000)
    earlier = decide(bucket, 5_000_000, rate=1.0, burst=5)
    assert not earlier.allowed
    assert earlier.bucket.updated_at == 10_000_000


def _limiters(db: Database, clock: ManualClock, rate: float, burst: int) -> list[RateLimiter]:
    """The limiter with buckets in memory, then with buckets in the database."""
    return [
        RateLimiter(clock, rate, burst, None),
        RateLimiter(clock, rate, burst, db.engine.dialect),
    ]


def test_memory_and_database_buckets_decide_exactly_alike(db: Database) -> None:
    clock = ManualClock()
    for limiter in _limiters(db, clock, 2.0, 3):
        with db.reads() as conn:

            def take(bucket: str, conn: Connection = conn, limiter: RateLimiter = limiter) -> Any:
                return run_steps(conn, limiter.take(bucket))

            start = clock.now()
            assert [take("a") for _ in range(4)] == [(True, 0)] * 3 + [(False, 1)]
            assert take("b") == (True, 0), "another key has its own bucket"
            clock.advance(0.5)  # one token at 2 per second
            assert [take("a") for _ in range(2)] == [(True, 0), (False, 1)]
            clock.advance(0.25)
            assert take("a") == (False, 1)  # half a token: still refused, a refusal costs none
            clock.advance(0.25)
            assert take("a") == (True, 0)
            clock.advance(3600)
            assert [take("a") for _ in range(4)] == [(True, 0)] * 3 + [(False, 1)]
            clock.value = start  # the next limiter starts from the same time


def test_slow_rates_ask_for_whole_seconds(db: Database) -> None:
    clock = ManualClock()
    for limiter in _limiters(db, clock, 0.25, 1):
        with db.reads() as conn:

            def take(bucket: str, conn: Connection = conn, limiter: RateLimiter = limiter) -> Any:
                return run_steps(conn, limiter.take(bucket))

            start = clock.now()
            assert take("k") == (True, 0)
            assert take("k") == (False, 4)
            clock.advance(2)  # half a token: two more seconds
            assert take("k") == (False, math.ceil(0.5 / 0.25))
            clock.advance(1.5)  # 0.875 of a token: 0.5 s more, asked for as 1
            assert take("k") == (False, 1)
            clock.advance(0.5)
            assert take("k") == (True, 0)
            clock.value = start


def test_sqlite_cannot_share_buckets_in_the_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="CONVEYOR_RATE_LIMIT_STORE"):
        Settings.from_env({"CONVEYOR_HOME": str(tmp_path), "CONVEYOR_RATE_LIMIT_STORE": "database"})
    with pytest.raises(ConfigError, match="CONVEYOR_RATE_LIMIT_STORE"):
        Settings.from_env({"CONVEYOR_HOME": str(tmp_path), "CONVEYOR_RATE_LIMIT_STORE": "disk"})


def test_429_with_retry_after_over_http(serve: Serve, seed: Seeder) -> None:
    alice, bob = seed.account("alice"), seed.account("bob")
    automation = seed.automation(alice)
    clock = ManualClock()
    server = serve(clock=clock, rate_limit_rate=0.25, rate_limit_burst=2)
    url = f"{server.url}{API}/automation_runs?automation_id={automation}"
    headers = {"X-FilesAPI-Key": alice.key}
    assert [httpx.get(url, headers=headers).status_code for _ in range(2)] == [200, 200]
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "4"
    body = refused.json()
    assert body["type"] == "rate-limited/too-many-requests"
    assert body["http-code"] == 429
    assert body["instance"] == refused.headers["X-Request-Id"]
    # Requests without a valid key are answered 401 and take nothing from anyone.
    assert httpx.get(url, headers={"X-FilesAPI-Key": "0" * 64}).status_code == 401
    other = httpx.get(url, headers={"X-FilesAPI-Key": bob.key})
    assert other.status_code == 404  # bob's own bucket; alice's automation is not his
    clock.advance(4)
    assert httpx.get(url, headers=headers).status_code == 200


@pytest.mark.parametrize("backend", ["postgresql"])  # shared buckets live in PostgreSQL
def test_limits_hold_across_api_processes_on_postgresql(
    serve: Serve, settings: Settings, seed: Seeder, backend: str
) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    clock = ManualClock()
    limits = {"rate_limit_rate": 0.5, "rate_limit_burst": 4, "rate_limit_store": "auto"}
    # Two apps, each with its own engine and connection pool, as two processes would have.
    first = serve(clock=clock, database=Database(settings.database_url), **limits)
    second = serve(clock=clock, database=Database(settings.database_url), **limits)
    headers = {"X-FilesAPI-Key": alice.key}
    path = f"{API}/automation_runs?automation_id={automation}"
    answers = [
        httpx.get(f"{server.url}{path}", headers=headers).status_code
        for server in (first, second, first, second, first, second)
    ]
    assert answers == [200, 200, 200, 200, 429, 429]
    clock.advance(2)
    assert httpx.get(f"{second.url}{path}", headers=headers).status_code == 200
    assert httpx.get(f"{first.url}{path}", headers=headers).status_code == 429


def test_conveyor_sdk_backs_off_and_succeeds(serve: Serve, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    run = seed.run(automation, outcome=(1, 0))
    server = serve(rate_limit_rate=2.0, rate_limit_burst=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        import time

        time.sleep(seconds)

    with sdk.Client(server.url, alice.key, max_retries=5, sleep=sleep) as client:
        found = [client.automation_run.find(run.id).id for _ in range(4)]
    assert found == [run.id] * 4
    assert waits and all(wait == 1.0 for wait in waits), "Retry-After (1 s) was honoured"


def test_official_sdk_backs_off_and_succeeds(serve: Serve, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    run = seed.run(automation, outcome=(1, 0))
    server = serve(rate_limit_rate=2.0, rate_limit_burst=1)
    before = sample(
        scrape(server.url),
        "conveyor_http_requests_total",
        method="GET",
        route=f"{API}/automation_runs/{{run_id}}",
        status="429",
    )
    files_sdk.base_url = server.url
    files_sdk.set_api_key(alice.key)
    try:
        found = [files_sdk.automation_run.find(run.id).id for _ in range(4)]
    finally:
        files_sdk.set_api_key(None)
    assert found == [run.id] * 4
    after = sample(
        scrape(server.url),
        "conveyor_http_requests_total",
        method="GET",
        route=f"{API}/automation_runs/{{run_id}}",
        status="429",
    )
    assert after > before, "the server refused some calls, and the SDK retried them"
