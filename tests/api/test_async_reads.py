"""On PostgreSQL the run list is read on the event loop over psycopg's asyncio driver
(conveyor.api.steps), from psycopg_pool (store.database.async_read_pool): its pool
under concurrency, after its connections' server processes ended, and at shutdown."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from conveyor.context import AppContext
from conveyor.store.database import POOLS, Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def listed(server: ServerThread, key: str, automation: int, **params: Any) -> list[int]:
    response = httpx.get(
        f"{server.url}/api/rest/v1/automation_runs",
        params={"automation_id": automation, **params},
        headers={"X-FilesAPI-Key": key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [record["id"] for record in response.json()]


def context(server: ServerThread) -> AppContext:
    ctx: AppContext = server.server.config.app.state.ctx
    return ctx


def test_more_lists_and_finds_at_once_than_connections(server: ServerThread, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    runs = [seed.run(automation).id for _ in range(5)]

    def find(run_id: int) -> int:
        response = httpx.get(
            f"{server.url}/api/rest/v1/automation_runs/{run_id}",
            headers={"X-FilesAPI-Key": alice.key},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        found: int = response.json()["id"]
        return found

    with ThreadPoolExecutor(24) as pool:  # three times the pool's eight connections
        pages = list(pool.map(lambda _: listed(server, alice.key, automation), range(96)))
        found = list(pool.map(find, runs * 10))
    assert all(page == runs[::-1] for page in pages)
    assert found == runs * 10
    read_pool = context(server).read_pool
    assert read_pool is not None
    stats = read_pool.get_stats()
    assert 0 < stats["pool_size"] <= POOLS["api-reads"] == 8
    assert stats["pool_available"] == stats["pool_size"]  # every connection came back


def test_connections_whose_server_process_ended_are_replaced(
    server: ServerThread, seed: Seeder, db: Database
) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    run = seed.run(automation).id
    with ThreadPoolExecutor(8) as pool:  # open several of the pool's connections
        list(pool.map(lambda _: listed(server, alice.key, automation), range(32)))
    with db.write() as conn:  # every other connection to the database ends
        ended = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    assert ended
    for _ in range(20):  # no request meets a dead connection
        assert listed(server, alice.key, automation) == [run]


def test_the_pool_is_closed_with_the_server(serve: Any, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    server = serve()
    listed(server, alice.key, automation)
    read_pool = context(server).read_pool
    assert read_pool is not None and not read_pool.closed
    server.stop()
    assert read_pool.closed
    assert context(server).read_pool is None
