"""Shared fixtures: both databases (SQLite file, real PostgreSQL), a live server, seeding.

The PostgreSQL server is started once per test session from the binaries on
PATH (see conveyor.testing.postgres); if they are missing, PostgreSQL tests
fail with a message saying what to install.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import files_sdk
import pytest

from conveyor.app import create_app
from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.store import migrate
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread
from suite_support import make_database_url, suite_settings

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        template = server.create_database("conveyor_template")
        db = Database(template, null_pool=True)
        migrate.upgrade(db)
        db.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "conveyor.db"
    db = Database(f"sqlite:///{path}", null_pool=True)
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_database_url(backend, request, tmp_path)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return suite_settings(tmp_path / "home", database_url)


@pytest.fixture
def seed(db: Database) -> Seeder:
    return Seeder(db)


@pytest.fixture
def serve(settings: Settings, db: Database) -> Iterator[Callable[..., ServerThread]]:
    """Start Conveyor's app over real HTTP on 127.0.0.1 with settings changed by keyword,
    e.g. `serve(rate_limit_rate=1.0, clock=ManualClock())`; stopped after the test."""
    started: list[ServerThread] = []

    def start(
        clock: Clock | None = None, database: Database | None = None, **changes: Any
    ) -> ServerThread:
        app = create_app(dataclasses.replace(settings, **changes), database or db, clock=clock)
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(serve: Callable[..., ServerThread]) -> ServerThread:
    """Conveyor's API served over real HTTP on 127.0.0.1."""
    return serve()


# The official Files.com SDK keeps its settings in module globals; the `files`
# fixture points them at the live server for one test and puts every one back
# afterwards, closing the SDK's shared connections to a server about to stop.
# Module settings a test may change.
SETTINGS = ("base_url", "the_api_key", "session_id", "max_network_retries")


@pytest.fixture
def files(server: ServerThread) -> Iterator[ModuleType]:
    saved = {name: getattr(files_sdk, name) for name in SETTINGS}
    files_sdk.base_url = server.url
    files_sdk.set_api_key("")
    files_sdk.session_id = None
    # A 5xx would be retried with waits; no test here expects one.
    files_sdk.max_network_retries = 0
    try:
        yield files_sdk
    finally:
        files_sdk.close()
        for name, value in saved.items():
            setattr(files_sdk, name, value)
