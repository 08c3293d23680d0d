"""Keyset pagination over any table: one sort column (or the id alone), id tie-break.

A page is `per_page + 1` rows read in the requested order, strictly after
(or before) the cursor's anchor; the extra row tells whether another page
exists that way. Whether one exists the other way is one EXISTS probe.
An empty page (only possible past records that went away) has no cursors.
Runs and automations are both listed through `keyset_page`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, tuple_, union_all
from sqlalchemy.engine import Connection

from conveyor.domain.listing import Cursor


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


def keyset_page(
    conn: Connection,
    *,
    columns: Sequence[Any],
    table_columns: Any,
    read_field: str | None,
    descending: bool,
    key_index: int | None,
    scope: Sequence[ColumnElement[bool]],
    cursor: Cursor | None,
    per_page: int,
) -> KeysetPage:
    """One page. Rows have the id at position 0; a cursor's key is `row[key_index]`.

    `read_field` is the column rows are read in order of (None: the id alone);
    it may differ from the sort the cursor names when the scope makes them the
    same order (one status: sorting by status is sorting by id).
    """
    forward = cursor is None or cursor.direction == "next"
    dialect = conn.dialect.name
    if cursor is None:
        statement: Any = (
            select(*columns)
            .where(and_(*scope))
            .order_by(*order(read_field, descending, forward, table_columns))
        )
    else:
        arms = [
            select(*columns).where(and_(*scope, condition))
            for condition in beyond(
                table_columns, read_field, descending, cursor.key, cursor.id, forward, dialect
            )
        ]
        if len(arms) == 1:
            statement = arms[0].order_by(*order(read_field, descending, forward, table_columns))
        else:
            # The ranges are disjoint and each is read in index order, so the
            # database merges them without sorting (SQLite: MERGE (UNION ALL)).
            statement = union_all(*arms)
            statement = statement.order_by(
                *order(read_field, descending, forward, statement.selected_columns)
            )
    # fetchall: one driver call for the page instead of one per row (13 % of the read).
    rows = list(conn.execute(statement.limit(per_page + 1)).fetchall())
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    # Is there anything on the other side of the anchor (the side we came from)?
    behind = False
    if cursor is not None:
        probes = beyond(
            table_columns,
            read_field,
            descending,
            cursor.key,
            cursor.id,
            not forward,
            dialect,
            inclusive=True,
        )
        behind = bool(
            conn.execute(
                select(or_(*(exists().where(and_(*scope, probe)) for probe in probes)))
            ).scalar()
        )
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
