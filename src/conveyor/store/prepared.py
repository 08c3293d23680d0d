"""Statements compiled once per dialect to driver SQL, for the hottest reads.

SQLAlchemy builds a statement, derives its cache key and finds its compiled
form on every execution, then makes a `Row` per row: about as much CPU as the
database's own work for the API's list page (docs/benchmarks.md, figure 2).
A `DriverSql` is compiled once and run on the connection's own driver cursor:
its rows are the driver's plain tuples, and none of SQLAlchemy's per-execution
work (execution context, result metadata) is done.

What that leaves out, and how it is kept:
- Engine events see every statement when anyone listens for them (tests and
  benchmarks capture statements that way): with a `before_cursor_execute` or
  `after_cursor_execute` listener, the statement goes through
  `Connection.exec_driver_sql` like any other.
- Driver errors are raised as SQLAlchemy's (`sqlalchemy.exc.OperationalError`
  ...), as `exec_driver_sql` would raise them, and a lost connection is
  invalidated so the pool does not hand it out again.
- Transactions are the connection's: SQLAlchemy begins them (the SQLite BEGIN
  hook runs on `Connection.begin`); these are only ever SELECTs.

Only for statements whose columns need no result conversion (integers and
text): a Boolean on SQLite, for one, would come back as 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True, slots=True)
class DriverSql:
    """A statement compiled for one dialect: its SQL text and the names of its
    parameters (in order, repeated as they appear, for a positional driver)."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    defaults: dict[str, Any]

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> DriverSql:
        compiled = statement.compile(dialect=dialect)
        if compiled.positional:
            names = tuple(compiled.positiontup)
        else:
            names = tuple(dict.fromkeys(compiled.bind_names.values()))
        defaults = {k: v for k, v in compiled.params.items() if v is not None}
        return cls(compiled.string, names, compiled.positional, defaults)

    def parameters(self, values: dict[str, Any]) -> Any:
        """The driver's parameters from `values` (which may hold more names than the
        statement uses): a tuple for a positional driver, else a dict."""
        merged = {**self.defaults, **values} if self.defaults else values
        if self.positional:
            return tuple(merged[name] for name in self.names)
        return {name: merged[name] for name in self.names}

    def rows(self, conn: Connection, values: dict[str, Any]) -> list[Any]:
        """The result's rows as the driver's tuples (no Row objects)."""
        params = self.parameters(values)
        if conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute:
            result = conn.exec_driver_sql(self.sql, params)
            try:
                return cast(list[Any], result.cursor.fetchall())
            finally:
                result.close()
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, params)
            return cast(list[Any], cursor.fetchall())
        except conn.dialect.loaded_dbapi.Error as exc:
            lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                self.sql,
                params,
                exc,
                conn.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
        finally:
            cursor.close()


class Prepared:
    """One statement, built by `build` and compiled the first time each dialect runs it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._compiled: dict[str, DriverSql] = {}

    def for_dialect(self, dialect: Dialect) -> DriverSql:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = DriverSql.of(self._build(), dialect)
            self._compiled[dialect.name] = compiled
        return compiled


@dataclass(frozen=True, slots=True)
class Read:
    """One statement a read needs run: what a reading generator yields, to be sent
    the statement's rows back. A read written as such a generator is run on a
    `Connection` by `run_reads`, or on PostgreSQL's asyncio driver by
    `conveyor.api.asyncreads`: one piece of logic for both."""

    sql: DriverSql
    values: dict[str, Any]


T = TypeVar("T")
S = TypeVar("S")
Reads = Generator[Read, list[Any], T]


def drive(steps: Generator[S, Any, T], perform: Callable[[S], Any]) -> T:
    """Run a generator of steps: each step it yields is performed and the result
    sent back, until it returns."""
    reply: Any = None  # the first send(None) starts the generator
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return cast(T, done.value)
        reply = perform(step)


def run_reads(conn: Connection, reads: Reads[T]) -> T:
    """Run a reading generator on `conn`: each Read's rows are sent back into it."""
    return drive(reads, lambda read: read.sql.rows(conn, read.values))
