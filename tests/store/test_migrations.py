"""Migrations build exactly the schema of conveyor.store.schema on an empty database,
upgrading twice is harmless, and the CLI upgrades a fresh installation by itself."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from conveyor.store import migrate, users
from conveyor.store.database import Database
from conveyor.store.schema import metadata
from conveyor.store.schema import users as users_t
from conveyor.testing.postgres import PostgresServer, free_port

CONVEYOR = Path(sys.executable).with_name("conveyor")
_names = itertools.count()


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with nothing in it, not even the migrations' version table."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"empty_{os.getpid()}_{next(_names)}"
    url = server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


@pytest.fixture
def empty_db(empty_url: str) -> Iterator[Database]:
    database = Database(empty_url)
    yield database
    database.dispose()


def schema_differences(db: Database) -> list[Any]:
    """What alembic's autogenerate would change: tables, columns, types, nullability,
    server defaults, indexes, unique constraints and foreign keys."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return [diff for diff in compare_metadata(context, metadata) if not _empty_default(diff)]


def _empty_default(diff: Any) -> bool:
    """On SQLite, alembic reads a column's DEFAULT ('') back as the text `('')` and
    reports it as different from server_default=""; the two are the same default."""
    if not (isinstance(diff, list) and len(diff) == 1 and diff[0][0] == "modify_default"):
        return False
    *_, reflected, declared = diff[0]
    text = getattr(getattr(reflected, "arg", None), "text", None)
    return getattr(declared, "arg", None) == "" and text in ("''", "('')")


def shape(db: Database) -> dict[str, object]:
    """Tables with their columns, indexes and unique constraints, as the database has them."""
    inspector = inspect(db.engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_migrations_build_exactly_the_declared_schema(empty_db: Database) -> None:
    assert migrate.current_revision(empty_db) is None
    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    assert migrate.is_current(empty_db)
    assert schema_differences(empty_db) == []
    assert set(inspect(empty_db.engine).get_table_names()) == set(metadata.tables) | {
        "alembic_version"
    }


def test_upgrading_again_changes_nothing(empty_db: Database) -> None:
    migrate.upgrade(empty_db)
    before = shape(empty_db)
    with empty_db.write() as conn:
        users.ensure_user(conn, "alice", False, 1)
    migrate.upgrade(empty_db)
    migrate.upgrade(empty_db, "head")
    assert shape(empty_db) == before
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    with empty_db.read() as conn:
        assert conn.execute(select(users_t.c.name)).scalars().all() == ["alice"]


# ---------------------------------------------------------------- the CLI


def cli_env(home: Path, url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_HOME"] = str(home)
    if url is not None:
        env["CONVEYOR_DATABASE_URL"] = url
    env.update(extra)
    return env


def database_url_for(backend: str, empty_url: str) -> str | None:
    """None for SQLite: the CLI's default, conveyor.db under CONVEYOR_HOME."""
    return None if backend == "sqlite" else empty_url


def test_db_upgrade_creates_the_database(backend: str, empty_url: str, tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    env = cli_env(home, database_url_for(backend, empty_url))
    head = migrate.head_revision()
    first = subprocess.run(
        [str(CONVEYOR), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"database at revision {head} (was empty)\n"
    if backend == "sqlite":
        assert (home / "conveyor.db").is_file()
    again = subprocess.run(
        [str(CONVEYOR), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"database at revision {head} (was {head})\n"
    db = Database(empty_url if backend != "sqlite" else f"sqlite:///{home / 'conveyor.db'}")
    try:
        assert schema_differences(db) == []
    finally:
        db.dispose()


KEY_LINE = re.compile(r"^First start: created user 'admin' with API key ([0-9a-f]{64})$")


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


@contextmanager
def serving(env: dict[str, str], port: int) -> Iterator[list[str]]:
    """`conveyor serve` in a subprocess, once it answers HTTP; yields the lines it has
    printed so far (complete after the block, when the process has been stopped)."""
    process = subprocess.Popen(
        [str(CONVEYOR), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    printed: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        url = f"http://127.0.0.1:{port}/api/rest/v1/openapi.json"
        wait_for(lambda: answers(url) or process.poll() is not None, "the server")
        assert process.poll() is None, process.communicate()
        yield printed
    finally:
        process.terminate()
        process.wait(timeout=60)
        reader.join(timeout=60)


def test_serve_upgrades_an_empty_database_and_prints_the_first_key_once(
    backend: str, empty_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(
        tmp_path / "home",
        database_url_for(backend, empty_url),
        CONVEYOR_PORT=str(port),
        CONVEYOR_EMBEDDED_WORKERS="0",
    )
    runs_url = f"http://127.0.0.1:{port}/api/rest/v1/automation_runs"
    with serving(env, port) as printed:
        wait_for(lambda: "Keep it safe: it is not shown again." in printed, "the first key")
        key = next(m.group(1) for m in map(KEY_LINE.match, printed) if m)
        anonymous = httpx.get(runs_url, params={"automation_id": 1})
        assert anonymous.json()["type"] == "not-authenticated/authentication-required"
        admin = httpx.get(runs_url, params={"automation_id": 1}, headers={"X-FilesAPI-Key": key})
        assert (admin.status_code, admin.json()["type"]) == (404, "not-found/not-found")
    assert printed[0].startswith(f"Conveyor serving on http://127.0.0.1:{port} (database: ")
    assert printed[0].endswith(", created now)")
    assert printed[1:3] == [
        f"First start: created user 'admin' with API key {key}",
        "Keep it safe: it is not shown again.",
    ]

    sqlite_file = tmp_path / "home" / "conveyor.db"
    db = Database(empty_url if backend != "sqlite" else f"sqlite:///{sqlite_file}")
    try:
        assert migrate.is_current(db)
        assert schema_differences(db) == []
    finally:
        db.dispose()

    with serving(env, port) as again:
        admin = httpx.get(runs_url, params={"automation_id": 1}, headers={"X-FilesAPI-Key": key})
        assert admin.status_code == 404
    assert again[0] == printed[0].replace(", created now)", ")")
    assert not [line for line in again if "API key" in line or "Keep it safe" in line]
