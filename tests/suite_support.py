"""What the suite's fixtures share: a fresh migrated database of either backend, and the
settings every test server starts from."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.testing.postgres import PostgresServer

_names = itertools.count()


def make_database_url(backend: str, request: pytest.FixtureRequest, directory: Path) -> str:
    """A fresh, migrated database of the given backend, dropped when the requesting fixture
    ends (a SQLite file in `directory`, copied from the session's migrated template)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = directory / "conveyor.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"test_{next(_names)}"
    url = server.create_database(name, template="conveyor_template")
    request.addfinalizer(lambda: server.drop_database(name))
    return url


def suite_settings(home: Path, database_url: str, **env: str) -> Settings:
    """Settings for a test server: no embedded workers, no rate limits, `env` on top."""
    return Settings.from_env(
        {
            "CONVEYOR_HOME": str(home),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_EMBEDDED_WORKERS": "0",
            # Suites send bursts faster than any client should; tests/ops tests the limits.
            "CONVEYOR_RATE_LIMIT_RATE": "0",
            **env,
        }
    )
