"""Statements compiled once per dialect to driver SQL, for the hottest reads.

SQLAlchemy builds a statement, derives its cache key and finds its compiled
form on every execution, then makes a `Row` per row: about as much CPU as the
database's own work for the API's list page (docs/benchmarks.md, figure 2).
A `DriverSql` is compiled once and run with `Connection.exec_driver_sql` (so
engine events, such as the SQLite BEGIN hook and statement capture in tests,
still see it), and its rows are the driver's plain tuples.

Only for statements whose columns need no result conversion (integers and
text): a Boolean on SQLite, for one, would come back as 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

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

    def rows(self, conn: Connection, values: dict[str, Any]) -> list[Any]:
        """The result's rows as the driver's tuples (no Row objects); `values` may hold
        more names than the statement uses."""
        merged = {**self.defaults, **values} if self.defaults else values
        params: Any
        if self.positional:
            params = tuple(merged[name] for name in self.names)
        else:
            params = {name: merged[name] for name in self.names}
        result = conn.exec_driver_sql(self.sql, params)
        try:
            rows = cast(list[Any], result.cursor.fetchall())
        finally:
            result.close()
        return rows


class Prepared:
    """One statement, built by `build` and compiled the first time each dialect runs it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._compiled: dict[str, DriverSql] = {}

    def rows(self, conn: Connection, **values: Any) -> list[Any]:
        compiled = self._compiled.get(conn.dialect.name)
        if compiled is None:
            compiled = DriverSql.of(self._build(), conn.dialect)
            self._compiled[conn.dialect.name] = compiled
        return compiled.rows(conn, values)

    def first(self, conn: Connection, **values: Any) -> Any:
        rows = self.rows(conn, **values)
        return rows[0] if rows else None
