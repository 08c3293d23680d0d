"""Keyset pagination over any table: one sort column (or the id alone), id tie-break.

A page is `per_page + 1` rows read in the requested order after (or before)
the cursor's anchor; the extra row tells whether another page exists that way.
After a cursor the read starts at the anchor itself, one row more: while the
anchor's record is there, it says that a page exists the other way; only when
it has gone does one EXISTS probe ask. An empty page (only possible past
records that went away) has no cursors.

Every list (runs, all runs, automations, permissions, automation logs) reads
its pages through `keyset_steps`: steps (`store.prepared`) whose scope is
written with bind parameters, so the page and probe statements of each shape
(sort, direction, way, cursor or not, dialect) are built and compiled to
driver SQL once, and read as the driver's plain tuples (`store.prepared`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    bindparam,
    exists,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.engine import Dialect

from conveyor.domain.listing import Cursor, RangeFilter
from conveyor.store.prepared import DriverSql, Statement, Steps

_RANGE_OPERATORS = {"gt": operator.gt, "gteq": operator.ge, "lt": operator.lt, "lteq": operator.le}


def range_conditions(
    fields: Any, ranges: Sequence[RangeFilter], params: dict[str, Any]
) -> list[ColumnElement[bool]]:
    """The SQL conditions of `filter_gt[field]=...` and its kin (values in microseconds),
    with bind parameters `range_0`, `range_1`, ... whose values are put in `params`;
    `range_shape` is their part of a statement cache's key."""
    conditions = []
    for i, r in enumerate(ranges):
        name = f"range_{i}"
        column = fields[r.field]
        conditions.append(_RANGE_OPERATORS[r.op](column, bindparam(name, type_=column.type)))
        params[name] = r.value
    return conditions


def range_shape(ranges: Sequence[RangeFilter]) -> tuple[tuple[str, str], ...]:
    """What of `ranges` shapes the statement `range_conditions` builds."""
    return tuple((r.field, r.op) for r in ranges)


@dataclass(frozen=True, slots=True)
class KeysetPage:
    rows: list[Any]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


def beyond(
    table_columns: Any,
    field: str | None,
    descending: bool,
    key: Any,
    anchor_id: int,
    forward: bool,
    dialect: str,
    *,
    inclusive: bool = False,
) -> list[ColumnElement[bool]]:
    """Rows after (forward) or before the anchor in the sort's order, as a union of
    conditions each of which is one index range; `inclusive` adds the anchor itself.

    PostgreSQL bounds an index range by the whole row value `(key, id) > (?, ?)`.
    SQLite bounds it by the row value's first column only when the second is the
    rowid, so it would scan the anchor's whole tie group (for a status sort, every
    earlier run of that status) on each page; there the condition is split into
    `key = ? AND id > ?` and `key > ?`, two exact ranges. docs/indexes.md shows both.
    """
    id_column = table_columns["id"]
    up = forward != descending

    def past(left: Any, right: Any, strict: bool) -> ColumnElement[bool]:
        compare = (
            (operator.gt if strict else operator.ge)
            if up
            else (operator.lt if strict else operator.le)
        )
        condition: ColumnElement[bool] = compare(left, right)
        return condition

    if field is None:
        return [past(id_column, anchor_id, not inclusive)]
    column = table_columns[field]
    if dialect != "sqlite":
        return [past(tuple_(column, id_column), tuple_(key, anchor_id), not inclusive)]
    return [
        and_(column == key, past(id_column, anchor_id, not inclusive)),
        past(column, key, True),
    ]


def order(field: str | None, descending: bool, forward: bool, columns: Any) -> list[Any]:
    """ORDER BY for reading in the sort (reversed when walking back); `columns` is the
    table's or, for a union, the union's own column collection."""
    desc = descending == forward
    names = [name for name in (field, "id") if name is not None]
    return [columns[n].desc() if desc else columns[n].asc() for n in names]


_STATEMENTS: dict[Hashable, tuple[DriverSql, DriverSql | None]] = {}


def _statements(
    *,
    columns: Sequence[Any],
    table_columns: Any,
    read_field: str | None,
    descending: bool,
    scope: Sequence[ColumnElement[bool]],
    cursor: Cursor | None,
    key: Any,
    anchor_id: Any,
    forward: bool,
    dialect: str,
    branches: Sequence[Sequence[ColumnElement[bool]]] = ((),),
    limit: Any = None,
) -> tuple[Any, Any | None]:
    """The page statement (without its LIMIT; from the anchor on, the anchor included)
    and the EXISTS probe at or behind the anchor (None without a cursor); `key` and
    `anchor_id` are the anchor's values or bind parameters.

    `branches` are disjoint alternatives added to the scope (one status each, say),
    each an ordered index range: the page merges them (UNION ALL under the ORDER BY
    and LIMIT) instead of sorting their union. On PostgreSQL each arm also carries
    the page's `limit` (its value or bind parameter; see below)."""

    def arm(*conditions: ColumnElement[bool]) -> Any:
        return select(*columns).where(*scope, *conditions)

    if cursor is None:
        arms = [arm(*branch) for branch in branches]
    else:
        # From the anchor itself on: when the anchor's run is still there, the page's
        # first row is that run, which says there is a page the way we came from.
        arms = [
            arm(*branch, condition)
            for branch in branches
            for condition in beyond(
                table_columns,
                read_field,
                descending,
                key,
                anchor_id,
                forward,
                dialect,
                inclusive=True,
            )
        ]
    if len(arms) == 1:
        statement = arms[0].order_by(*order(read_field, descending, forward, table_columns))
    else:
        # The ranges are disjoint and each is read in index order, so the
        # database merges them without sorting (SQLite: MERGE (UNION ALL)).
        if dialect == "sqlite":
            # SQLite refuses an ORDER BY inside a compound, and needs none.
            statement = union_all(*arms)
            statement = statement.order_by(
                *order(read_field, descending, forward, statement.selected_columns)
            )
        else:
            # PostgreSQL (15) merges ordered arms (Merge Append) only under a query
            # that selects FROM their UNION ALL (a top-level UNION ALL is appended
            # and sorted), and plans each arm alone, a WHERE keeping it from being
            # flattened into the outer query: without its own ORDER BY and LIMIT an
            # arm is planned to be read whole (a bitmap scan of every run of its
            # range, then a sort: seconds for a first page over millions of runs).
            # With them each arm is an index range read that stops early, and
            # the Merge Append reads from each only the rows the page takes.
            by = order(read_field, descending, forward, table_columns)
            merged = union_all(*(a.order_by(*by).limit(limit) for a in arms)).subquery("page")
            statement = select(*merged.c).order_by(
                *order(read_field, descending, forward, merged.c)
            )
    if cursor is None:
        return statement, None
    # Is there anything on the other side of the anchor (the side we came from)?
    probes = beyond(
        table_columns, read_field, descending, key, anchor_id, not forward, dialect, inclusive=True
    )
    probe = select(or_(*(exists().where(and_(*scope, *b, p)) for b in branches for p in probes)))
    return statement, probe


def keyset_steps(
    dialect: Dialect,
    *,
    columns: Sequence[Any],
    table_columns: Any,
    read_field: str | None,
    descending: bool,
    key_index: int | None,
    scope: Sequence[ColumnElement[bool]],
    cursor: Cursor | None,
    per_page: int,
    params: dict[str, Any],
    cache_key: Hashable,
    branches: Sequence[Sequence[ColumnElement[bool]]] = ((),),
    convert: Callable[[Any], Any] | None = None,
) -> Steps[KeysetPage]:
    """One page, as steps (`store.prepared.Steps`): the page and probe statements of
    each shape are built and compiled once. Rows have the id at position 0; a
    cursor's key is `row[key_index]`.

    `read_field` is the column rows are read in order of (None: the id alone); it
    may differ from the sort the cursor names when the scope makes them the same
    order (one status: sorting by status is sorting by id).

    `scope` must hold bind parameters only, their values in `params`, and the same
    `cache_key` must always come with the same scope, branches and columns. Rows are
    the driver's plain tuples; `convert`, when given, makes each a row of the values
    the columns stand for (a Boolean read on SQLite is 0 or 1, say) before the page
    and its cursors are made from them.
    """
    forward = cursor is None or cursor.direction == "next"
    shape = (cache_key, read_field, descending, forward, cursor is not None, dialect.name)
    compiled = _STATEMENTS.get(shape)
    if compiled is None:
        key_type = table_columns[read_field].type if read_field is not None else BigInteger()
        statement, probe = _statements(
            columns=columns,
            table_columns=table_columns,
            read_field=read_field,
            descending=descending,
            scope=scope,
            cursor=cursor,
            key=bindparam("keyset_key", type_=key_type),
            anchor_id=bindparam("keyset_id", type_=table_columns["id"].type),
            forward=forward,
            dialect=dialect.name,
            branches=branches,
            limit=bindparam("keyset_limit", type_=Integer()),
        )
        statement = statement.limit(bindparam("keyset_limit", type_=Integer()))
        compiled = (
            DriverSql.of(statement, dialect),
            None if probe is None else DriverSql.of(probe, dialect),
        )
        _STATEMENTS[shape] = compiled
    values = dict(params, keyset_limit=_limit(cursor, per_page))
    if cursor is not None:
        values["keyset_key"] = cursor.key
        values["keyset_id"] = cursor.id
    page_sql, probe_sql = compiled
    rows = yield Statement(page_sql, values)
    if convert is not None:
        rows = [convert(row) for row in rows]
    found = _anchor_found(rows, cursor, key_index)
    behind = found or (probe_sql is not None and bool((yield Statement(probe_sql, values))[0][0]))
    return _page(rows, found, behind, cursor, per_page, key_index)


# With a cursor, a page is read from the anchor on (`_statements`): one row more,
# for the anchor, which is dropped. Only when the anchor's run is gone (or its key
# changed) does the probe ask whether anything lies the way the cursor came from.


def _limit(cursor: Cursor | None, per_page: int) -> int:
    return per_page + 1 if cursor is None else per_page + 2


def _anchor_found(rows: list[Any], cursor: Cursor | None, key_index: int | None) -> bool:
    """Is the first row read the cursor's anchor itself (same id, same key)?"""
    if cursor is None or not rows or rows[0][0] != cursor.id:
        return False
    return key_index is None or rows[0][key_index] == cursor.key


def _page(
    rows: list[Any],
    anchor_found: bool,
    behind: bool,
    cursor: Cursor | None,
    per_page: int,
    key_index: int | None,
) -> KeysetPage:
    """The page from the rows read: the anchor dropped, the extra row telling whether
    there is more, in the sort's order, with its cursors; `behind`: is there a page
    the way the cursor came from."""
    forward = cursor is None or cursor.direction == "next"
    start = 1 if anchor_found else 0
    more = len(rows) - start > per_page
    rows = rows[start : start + per_page]
    if not forward:
        rows.reverse()
    has_next, has_prev = (more, behind) if forward else (behind, more)

    def key(row: Any) -> Any:
        return None if key_index is None else row[key_index]

    next_cursor = prev_cursor = None
    if rows:
        if has_next:
            next_cursor = Cursor("next", key(rows[-1]), rows[-1][0])
        if has_prev:
            prev_cursor = Cursor("prev", key(rows[0]), rows[0][0])
    return KeysetPage(rows, next_cursor, prev_cursor)
