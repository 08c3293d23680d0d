"""Statements compiled once per dialect to driver SQL, and the steps that run them.

Every read of the API's request path is written once, as a generator of steps
(`Steps`): it yields each `Statement` it needs run and is sent the
statement's rows back. Two runners drive such a generator, one per driver:
`run_steps` on a SQLAlchemy `Connection` (SQLite, and every caller that
already holds a connection), and `conveyor.api.steps.run_request_steps` on
psycopg's asyncio driver (the API's PostgreSQL reads). The logic between the
statements (authentication, rate-limit admission, visibility, the keyset
page) is thus the same code on both databases; only the driver differs.

A `DriverSql` is compiled once (SQLAlchemy's per-execution statement building,
cache-key derivation and compilation are skipped) and its rows are the
driver's plain tuples. On a `Connection` it runs through
`Connection.exec_driver_sql`, so listeners, SQLAlchemy's errors and the
invalidation of a lost connection are SQLAlchemy's own.

Only for statements whose columns need no result conversion (integers and
text): a Boolean on SQLite, for one, would come back as 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.engine import Connection, Dialect


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
        result = conn.exec_driver_sql(self.sql, self.parameters(values))
        try:
            return cast(list[Any], result.cursor.fetchall()) if result.returns_rows else []
        finally:
            result.close()


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
class Statement:
    """One statement a step needs run (a read, or the rate limit's one write): what
    a generator of `Steps` yields, to be sent the statement's rows back. A read may
    be run again when its connection was found lost (conveyor.api.steps); a write
    never is."""

    sql: DriverSql
    values: dict[str, Any]
    write: bool = False


T = TypeVar("T")
Steps = Generator[Statement, list[Any], T]


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """What steps returned once they ran to their end."""

    value: T


def advance(steps: Steps[T], rows: list[Any] | None) -> Statement | Done[T]:
    """Send `steps` the rows of the statement they yielded last (None to start them):
    the next statement to run, or Done with their result. A runner calls this until
    it gets Done, whichever driver it runs the statements on."""
    try:
        return steps.send(rows)  # type: ignore[arg-type]
    except StopIteration as done:
        return Done(cast(T, done.value))


def run_steps(conn: Connection, steps: Steps[T]) -> T:
    """Run `steps` on `conn`: each statement's rows are sent back, until they return."""
    step = advance(steps, None)
    while isinstance(step, Statement):
        step = advance(steps, step.sql.rows(conn, step.values))
    return step.value
