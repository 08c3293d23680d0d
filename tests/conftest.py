"""Shared fixtures: both databases (SQLite file, real PostgreSQL), a live server, seeding.

The PostgreSQL server is started once per test session from the binaries on
PATH (see conveyor.testing.postgres); if they are missing, PostgreSQL tests
fail with a message saying what to install.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import files_sdk
import pytest

from conveyor.api.app import create_app
from conveyor.config import Settings
from conveyor.store import migrate
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

BACKENDS = ["sqlite", "postgresql"]
_names = itertools.count()


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


def make_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of the given backend for one test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "conveyor.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"test_{next(_names)}"
    url = server.create_database(name, template="conveyor_template")
    request.addfinalizer(lambda: server.drop_database(name))
    return url


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
    return Settings.from_env(
        {
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_EMBEDDED_WORKERS": "0",
            # Suites send bursts faster than any client should; tests/ops tests the limits.
            "CONVEYOR_RATE_LIMIT_RATE": "0",
        }
    )


@pytest.fixture
def seed(db: Database) -> Seeder:
    return Seeder(db)


@pytest.fixture
def server(settings: Settings, db: Database) -> Iterator[ServerThread]:
    """Conveyor's API served over real HTTP on 127.0.0.1."""
    with ServerThread(create_app(settings, db)) as running:
        yield running


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
