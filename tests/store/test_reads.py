"""`Database.reads()`: reads without a transaction on PostgreSQL, a read transaction on
SQLite; the pooled connection is transactional again for the next `read()`."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from conveyor.store.database import Database


def test_reads_run_outside_a_transaction_on_postgresql_only(db: Database) -> None:
    with db.reads() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("SAVEPOINT inside")  # a transaction is open
        else:
            # Each statement is its own transaction: there is none to set a savepoint in.
            with pytest.raises(DBAPIError, match="transaction blocks"):
                conn.exec_driver_sql("SAVEPOINT inside")
    # The same pooled connections serve read() as before: in a transaction.
    for _ in range(10):
        with db.read() as conn:
            conn.exec_driver_sql("SAVEPOINT inside")
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
