"""A run's log, as every reader shows it: its `run_messages` rows and the lines its
operation rows stand for, merged in one order.

Each file's two lines are not stored as messages: an operation row has its
`Planned #N` line (at `planned_at`, right after the message row
`planned_after`) and, once performed, its outcome line (the outcome's text in
`detail`, at `finished_at`, level error if it failed, right after the message
row `logged_after`). Lines are ordered by a cursor (message id, kind, seq):
(id, 0, 0) for a message row, (planned_after, 1, seq) and (logged_after, 2,
seq) for an operation's lines. Lines that follow the same message keep
their order because a run's operations are planned, and their outcomes
committed, in `seq` order. Rows written before migration 0015 have the three
columns NULL and their lines as message rows, so they read as they did.

The text of a `Planned #N` line is built here in SQL, so the level filter and
the search run in the database as they do on message rows; it equals
`Planned #{seq}: {Operation.describe()}.` (tests/store/test_run_log.py).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from sqlalchemy import (
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from conveyor.store.schema import run_messages as messages_t
from conveyor.store.schema import run_operations as ops_t

# (message id, kind, seq): where a line stands in its run's log.
Cursor = tuple[int, int, int]
MESSAGE, PLANNED, OUTCOME = 0, 1, 2
_CURSOR = re.compile(r"^([0-9]{1,18})(?:\.([12])\.([0-9]{1,12}))?$")


class LogLine(NamedTuple):
    cursor: Cursor
    created_at: int
    level: str
    message: str


def cursor_text(cursor: Cursor) -> str:
    """A cursor in a URL: the message id, or `id.kind.seq` for an operation's line."""
    anchor, kind, seq = cursor
    return str(anchor) if kind == MESSAGE else f"{anchor}.{kind}.{seq}"


def parse_cursor(text: str) -> Cursor | None:
    """The cursor `cursor_text` wrote (a plain message id too); None if it is not one."""
    found = _CURSOR.match(text)
    if found is None:
        return None
    anchor, kind, seq = found.groups()
    return (int(anchor), int(kind or 0), int(seq or 0))


class _JsonText(FunctionElement[str]):
    """detail's string value at a key (a literal_column holding the quoted key)."""

    type = Text()
    inherit_cache = True


@compiles(_JsonText, "sqlite")
def _json_text_sqlite(element: _JsonText, compiler: Any, **kw: Any) -> str:
    column, key = list(element.clauses)
    return f"json_extract({compiler.process(column, **kw)}, '$.' || {compiler.process(key, **kw)})"


@compiles(_JsonText, "postgresql")
def _json_text_postgresql(element: _JsonText, compiler: Any, **kw: Any) -> str:
    column, key = list(element.clauses)
    return f"(CAST({compiler.process(column, **kw)} AS JSON) ->> {compiler.process(key, **kw)})"


def _detail(key: str) -> Any:
    return _JsonText(ops_t.c.detail, literal_column(f"'{key}'"))


def _planned_text() -> Any:
    """`Planned #{seq}: {Operation.describe()}.` in SQL."""
    o = ops_t.c
    action, reason = _detail("action"), _detail("reason")
    arrow = o.source + literal(" -> ") + o.destination
    what = case(
        (o.kind == "create_folder", literal("create folder ") + o.destination),
        (o.kind == "delete", literal("delete ") + o.source),
        (
            and_(o.kind == "refuse", o.source.is_(None)),
            literal("refuse folder ") + o.destination + literal(": ") + reason,
        ),
        (
            and_(o.kind == "refuse", o.destination.is_(None)),
            literal("refuse ") + o.source + literal(": ") + reason,
        ),
        (o.kind == "refuse", literal("refuse ") + arrow + literal(": ") + reason),
        (
            action == "skip",
            literal("skip ") + o.kind + literal(" ") + arrow + literal(" (same size exists)"),
        ),
        (action == "overwrite", o.kind + literal(" ") + arrow + literal(" (overwrite)")),
        else_=o.kind + literal(" ") + arrow,
    )
    return literal("Planned #") + cast(o.seq, Text) + literal(": ") + what + literal(".")


_OUTCOME_LEVEL = case((ops_t.c.state == "failed", literal("error")), else_=literal("info"))

# Each source of lines: its kind, its (anchor, seq) columns, its time, level and text.
_ARMS: tuple[tuple[int, Any, Any, Any, Any, Any, Any], ...] = (
    (
        MESSAGE,
        messages_t.c.id,
        None,
        messages_t.c.created_at,
        messages_t.c.level,
        messages_t.c.message,
        messages_t.c.run_id,
    ),
    (
        PLANNED,
        ops_t.c.planned_after,
        ops_t.c.seq,
        ops_t.c.planned_at,
        literal("info"),
        _planned_text(),
        ops_t.c.run_id,
    ),
    (
        OUTCOME,
        ops_t.c.logged_after,
        ops_t.c.seq,
        ops_t.c.finished_at,
        _OUTCOME_LEVEL,
        _detail("message"),
        ops_t.c.run_id,
    ),
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _beyond(kind: int, anchor: Any, seq: Any, cursor: Cursor, later: bool) -> Any:
    """This source's lines after (`later`) or before `cursor`, as index conditions."""
    at, at_kind, at_seq = cursor
    if kind != at_kind:
        ahead = kind > at_kind  # same anchor: this kind comes after the cursor's
        if later:
            return anchor >= at if ahead else anchor > at
        return anchor < at if ahead else anchor <= at
    if seq is None:  # a message row: (id, 0, 0)
        if later:
            return anchor >= at if at_seq < 0 else anchor > at
        return anchor <= at if at_seq > 0 else anchor < at
    if later:
        return tuple_(anchor, seq) > tuple_(at, at_seq)
    return tuple_(anchor, seq) < tuple_(at, at_seq)


def lines(
    conn: Connection,
    run_id: int,
    limit: int,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    newest_first: bool = False,
    level: str | None = None,
    search: str | None = None,
) -> list[LogLine]:
    """Up to `limit` lines of the run's log between the cursors (exclusive), oldest
    first (or newest first), of `level` and containing `search` (case-insensitive).

    Each source is read along its index (ix_run_messages_run_id_id,
    ix_run_operations_run_planned_seq, ix_run_operations_run_logged_seq) for at
    most `limit` lines; the merge sorts those few."""
    pattern = "%" + _escape_like(search.lower()) + "%" if search else None
    arms = []
    for kind, anchor, seq, created, line_level, text, owner in _ARMS:
        if level is not None and kind == PLANNED and level != "info":
            continue
        if level is not None and kind == OUTCOME and level == "warning":
            continue
        conditions = [owner == run_id]
        if kind != MESSAGE:
            conditions.append(anchor.is_not(None))
        if level is not None:
            if kind == MESSAGE:
                conditions.append(messages_t.c.level == level)
            elif kind == OUTCOME:
                failed = ops_t.c.state == "failed"
                conditions.append(failed if level == "error" else ~failed)
        if pattern is not None:
            conditions.append(func.lower(text).like(pattern, escape="\\"))
        if after is not None:
            conditions.append(_beyond(kind, anchor, seq, after, later=True))
        if before is not None:
            conditions.append(_beyond(kind, anchor, seq, before, later=False))
        order = [anchor] if seq is None else [anchor, seq]
        if newest_first:
            order = [column.desc() for column in order]
        arm = (
            select(
                anchor.label("anchor"),
                literal_column(str(kind)).label("kind"),
                (literal_column("0") if seq is None else seq).label("seq"),
                created.label("created_at"),
                line_level.label("level"),
                text.label("message"),
            )
            .where(*conditions)
            .order_by(*order)
            .limit(limit)
            .subquery()
        )
        arms.append(select(*arm.c))
    if not arms:
        return []
    merged = union_all(*arms).subquery()
    columns = [merged.c.anchor, merged.c.kind, merged.c.seq]
    keys: list[Any] = [key.desc() for key in columns] if newest_first else list(columns)
    rows = conn.execute(select(*merged.c).order_by(*keys).limit(limit)).all()
    return [
        LogLine((int(r.anchor), int(r.kind), int(r.seq)), r.created_at, r.level, r.message)
        for r in rows
    ]


def first_line(conn: Connection, run_id: int, level: str) -> str | None:
    """The text of the run's first line at `level`, if any."""
    found = lines(conn, run_id, 1, level=level)
    return found[0].message if found else None


def anchor(conn: Connection, run_id: int) -> int:
    """The id of the run's last message row (0: none): the lines of operations
    planned or performed now follow it."""
    found = conn.execute(
        select(func.max(messages_t.c.id)).where(messages_t.c.run_id == run_id)
    ).scalar()
    return int(found or 0)
