"""Migration 0009 on an installation with users: every existing non-admin gets `full` on the
root (today's behaviour, made explicit), admins get nothing, later users start with none."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conveyor.domain.permissions import Grant, Level
from conveyor.store import migrate, permissions, users
from conveyor.store.database import Database
from conveyor.store.schema import permissions as permissions_t
from conveyor.testing.postgres import PostgresServer

_names = itertools.count()


@pytest.fixture
def old_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database brought to the schema before folder permissions (0006)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = f"old_{os.getpid()}_{next(_names)}"
        url = server.create_database(name)
        request.addfinalizer(lambda: server.drop_database(name))
    database = Database(url)
    migrate.upgrade(database, "0006")
    yield database
    database.dispose()


def test_existing_non_admins_keep_access_to_everything(old_db: Database) -> None:
    with old_db.write() as conn:
        alice = users.ensure_user(conn, "alice", False, 10)
        admin = users.ensure_user(conn, "root", True, 20)
        bob = users.ensure_user(conn, "bob", False, 30)
    migrate.upgrade(old_db)
    with old_db.write() as conn:
        rows = conn.execute(
            select(
                permissions_t.c.user_id,
                permissions_t.c.path,
                permissions_t.c.permission,
                permissions_t.c.recursive,
                permissions_t.c.created_at,
            ).order_by(permissions_t.c.user_id)
        ).all()
        assert [tuple(r) for r in rows] == [
            (alice.id, "", "full", True, 10),
            (bob.id, "", "full", True, 30),
        ]
        assert permissions.grants_for_user(conn, alice.id) == [Grant("", Level.FULL, True)]
        assert permissions.grants_for_user(conn, admin.id) is None  # admins need none
        carol = users.ensure_user(conn, "carol", False, 40)
        assert permissions.grants_for_user(conn, carol.id) == []  # a new user: nothing
