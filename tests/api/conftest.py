"""A seeded world shared by the read-only API tests of one module, on each database.

Starting a database and a server per test costs more than most of these tests,
so tests that only read (and check the database is unchanged afterwards) share
one world per module and backend. Its clock is a ManualClock that never moves,
so signed URLs are identical across requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_world import World, seed_world

from conveyor.app import create_app
from conveyor.clock import ManualClock
from conveyor.store.database import Database
from conveyor.testing.server import ServerThread
from suite_support import make_database_url, suite_settings


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("world")
    url = make_database_url(request.param, request, home)
    db = Database(url)
    clock = ManualClock()
    settings = suite_settings(home, url)
    with ServerThread(create_app(settings, db, clock=clock)) as server:
        yield seed_world(server.url, db, clock, settings)
    db.dispose()
