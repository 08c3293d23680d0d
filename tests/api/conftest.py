"""A seeded world shared by the read-only API tests of one module, on each database.

Starting a database and a server per test costs more than most of these tests,
so tests that only read (and check the database is unchanged afterwards) share
one world per module and backend. Its clock is a ManualClock that never moves,
so signed URLs are identical across requests.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
from api_world import World, seed_world, world_settings

from conveyor.api.app import create_app
from conveyor.clock import ManualClock
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer
from conveyor.testing.server import ServerThread


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("world")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), home / "conveyor.db")
        url = f"sqlite:///{home / 'conveyor.db'}"
    else:
        pg: PostgresServer = request.getfixturevalue("pg_server")
        name = f"world_{uuid.uuid4().hex[:12]}"
        url = pg.create_database(name, template="conveyor_template")
        request.addfinalizer(lambda: pg.drop_database(name))
    db = Database(url)
    clock = ManualClock()
    settings = world_settings(home, url)
    with ServerThread(create_app(settings, db, clock=clock)) as server:
        yield seed_world(server.url, db, clock, settings)
    db.dispose()
