"""Keyset pagination over any table: one sort column (or the id alone), id tie-break.

A page is `per_page + 1` rows read in the requested order, strictly after
(or before) the cursor's anchor; the extra row tells whether another page
exists that way. Whether one exists the other way is one EXISTS probe.
An empty page (only possible past records that went away) has no cursors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, tuple_
from sqlalchemy.engine import Connection

from conveyor.domain.listing import Cursor


@dataclass(frozen=True, slots=True)
class KeysetPage:
    rows: list[Any]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


def beyond(
    sort_column: Any, id_column: Any, descending: bool, key: Any, anchor_id: int, forward: bool
) -> ColumnElement[bool]:
    """Rows strictly after (forward) or before the anchor, in the sort's order."""
    ascending_test = forward != descending
    if sort_column is None:
        test: ColumnElement[bool] = (
            id_column > anchor_id if ascending_test else id_column < anchor_id
        )
        return test
    left = tuple_(sort_column, id_column)
    right = tuple_(key, anchor_id)
    return left > right if ascending_test else left < right


def order(sort_column: Any, id_column: Any, descending: bool, forward: bool) -> list[Any]:
    desc = descending == forward
    cols = [c for c in (sort_column, id_column) if c is not None]
    return [c.desc() if desc else c.asc() for c in cols]


def keyset_page(
    conn: Connection,
    *,
    columns: Sequence[Any],
    id_column: Any,
    sort_column: Any,
    sort_index: int | None,
    descending: bool,
    scope: Sequence[Any],
    cursor: Cursor | None,
    per_page: int,
) -> KeysetPage:
    """Rows must have the id at position 0 and the sort key at `sort_index`."""
    forward = cursor is None or cursor.direction == "next"
    conditions = list(scope)
    if cursor is not None:
        conditions.append(
            beyond(sort_column, id_column, descending, cursor.key, cursor.id, forward)
        )
    rows = list(
        conn.execute(
            select(*columns)
            .where(and_(*conditions))
            .order_by(*order(sort_column, id_column, descending, forward))
            .limit(per_page + 1)
        )
    )
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    behind = False
    if cursor is not None:
        behind = bool(
            conn.execute(
                select(
                    exists().where(
                        and_(
                            *scope,
                            ~beyond(
                                sort_column, id_column, descending, cursor.key, cursor.id, forward
                            ),
                        )
                    )
                )
            ).scalar()
        )
    has_next, has_prev = (more, behind) if forward else (behind, more)

    def key(row: Any) -> Any:
        return None if sort_index is None else row[sort_index]

    next_cursor = prev_cursor = None
    if rows:
        if has_next:
            next_cursor = Cursor("next", key(rows[-1]), rows[-1][0])
        if has_prev:
            prev_cursor = Cursor("prev", key(rows[0]), rows[0][0])
    return KeysetPage(rows, next_cursor, prev_cursor)
