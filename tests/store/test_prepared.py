"""`store.prepared`: compiled statements whose rows are the driver's tuples, run through
SQLAlchemy's `exec_driver_sql`: listeners see the statements, errors are SQLAlchemy's,
a lost connection is not handed out again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import column, event, literal_column, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, ProgrammingError

from conveyor.observability import runevents
from conveyor.store.database import Database
from conveyor.store.prepared import Prepared

NUMBERS = Prepared(
    lambda: (
        select(literal_column("n"))
        .select_from(text("(SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) AS numbers"))
        .where(literal_column("n") >= 2)
        .order_by(literal_column("n"))
    )
)
MISSING = Prepared(lambda: select(column("id")).select_from(table("no_such_table")))


def rows(statement: Prepared, conn: Connection) -> list[Any]:
    return statement.for_dialect(conn.dialect).rows(conn, {})


def test_rows_are_the_drivers_tuples_and_listeners_see_the_statement(db: Database) -> None:
    seen: list[str] = []

    def listen(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with db.read() as conn:
        event.listen(conn, "before_cursor_execute", listen)
        try:
            found = rows(NUMBERS, conn)
        finally:
            event.remove(conn, "before_cursor_execute", listen)
    assert found == [(2,), (3,)]
    assert all(type(row) is tuple for row in found)
    assert len(seen) == 1 and "numbers" in seen[0]


def test_a_driver_error_is_raised_as_sqlalchemys(db: Database) -> None:
    expected = OperationalError if db.is_sqlite else ProgrammingError
    with db.read() as conn, pytest.raises(expected, match="no_such_table") as raised:
        rows(MISSING, conn)
    assert isinstance(raised.value.orig, db.engine.dialect.loaded_dbapi.Error)
    assert "no_such_table" in str(raised.value.statement)
    assert not raised.value.connection_invalidated


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_lost_connection_is_invalidated_and_the_next_read_works(db: Database) -> None:
    runevents.install()  # as the app does: its rollback listener must bear a lost connection
    with db.reads() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with db.write() as admin:  # another pooled connection ends this one's server process
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid}, 10000)")
        with pytest.raises(OperationalError) as raised:
            rows(NUMBERS, conn)
        assert raised.value.connection_invalidated
        assert conn.invalidated
    for _ in range(10):  # the pool hands out working connections only
        with db.reads() as conn:
            assert rows(NUMBERS, conn) == [(2,), (3,)]
