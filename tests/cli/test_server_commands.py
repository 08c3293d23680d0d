"""Server-side commands (`api-keys`, `worker`, `db`) name the database they use on stderr,
and never quietly start a new one: run in the wrong folder (or against an empty
PostgreSQL database) they refuse, say where they looked and what to do, and leave
nothing behind. `--create` (or `conveyor db upgrade`) makes a new one on purpose."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.store import migrate
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer
from conveyor.testing.server import ServerThread

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
_names = itertools.count()


@pytest.fixture
def new_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (the default file under CONVEYOR_HOME, which does not exist yet);
    for PostgreSQL, a database that exists but holds no Conveyor schema."""
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"new_{os.getpid()}_{next(_names)}"
    yield server.create_database(name)
    server.drop_database(name)


def conveyor(
    cwd: Path, url: str | None, *args: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    if url is not None:
        env["CONVEYOR_DATABASE_URL"] = url
    if home is not None:
        env["CONVEYOR_HOME"] = str(home)
    return subprocess.run(
        [CONVEYOR, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def database_line(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"conveyor: database: {folder / 'conveyor-data' / 'conveyor.db'} (SQLite)\n"
    return "conveyor: database: postgresql+psycopg://***@"


def test_commands_in_the_wrong_place_refuse_and_create_nothing(
    backend: str, new_url: str | None, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hints = {
        ("api-keys", "create", "--user", "alice"): "to start a new one there, pass --create.",
        ("api-keys", "revoke", "0" * 64): "a new one would have no key to revoke.",
        ("worker",): "`conveyor db upgrade` creates a new one.",
    }
    for args, hint in hints.items():
        result = conveyor(elsewhere, new_url, *args)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        first, second = result.stderr.splitlines(keepends=True)
        assert first.startswith(database_line(backend, elsewhere)), first
        assert second.startswith("conveyor: there is no Conveyor database there yet. ")
        assert "CONVEYOR_HOME" in second and "CONVEYOR_DATABASE_URL" in second
        assert second.endswith(hint + "\n"), second
        if backend == "sqlite":
            assert f"CONVEYOR_HOME (now {elsewhere / 'conveyor-data'})" in second
    assert list(elsewhere.iterdir()) == []  # no folder, no empty database file
    if new_url is not None:
        db = Database(new_url)
        try:
            assert migrate.current_revision(db) is None  # still no schema
        finally:
            db.dispose()


def test_create_makes_the_database_on_purpose_and_the_server_accepts_its_key(
    backend: str, new_url: str | None, tmp_path: Path
) -> None:
    created = conveyor(tmp_path, new_url, "api-keys", "create", "--user", "alice", "--create")
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", created.stdout)
    assert created.stderr.startswith(database_line(backend, tmp_path))
    assert created.stderr.count("\n") == 1
    # Now it exists: the next key needs no --create.
    second = conveyor(tmp_path, new_url, "api-keys", "create", "--user", "bob")
    assert second.returncode == 0, second.stderr
    assert second.stderr == created.stderr

    url = new_url or f"sqlite:///{tmp_path / 'conveyor-data' / 'conveyor.db'}"
    settings = Settings.from_env(
        {"CONVEYOR_HOME": str(tmp_path / "conveyor-data"), "CONVEYOR_DATABASE_URL": url}
    )
    db = Database(url)
    try:
        with ServerThread(create_app(settings, db)) as server:
            for key in (created.stdout.strip(), second.stdout.strip()):
                answer = httpx.get(
                    f"{server.url}/api/rest/v1/automations", headers={"X-FilesAPI-Key": key}
                )
                assert answer.status_code == 200, answer.text
    finally:
        db.dispose()


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = conveyor(
        tmp_path, "postgresql://conveyor:secret@127.0.0.1:1/conveyor", "api-keys", "create",
        "--user", "alice",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "conveyor: database: postgresql+psycopg://***@127.0.0.1:1/conveyor (PostgreSQL)"
    )
    assert result.stderr.splitlines()[1].startswith("conveyor: cannot open the database: ")
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
