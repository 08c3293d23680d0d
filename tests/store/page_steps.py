"""How much work SQLite does for one page: its virtual-machine instructions, counted
with a progress handler. Unlike a time, the count is exact and the same on every
machine, so test_page_cost.py can assert that a page's cost does not grow with depth.

Run as a script, it prints the figures in docs/indexes.md: the cost of a page at
several depths of one tie group (runs of one status, sorted by status), for the
statements list_runs emits and for the single row-value comparison
`(status, id) > (?, ?)` they replace on SQLite:

    .venv/bin/python tests/store/page_steps.py --runs 200000
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, exists, select, tuple_
from sqlalchemy.engine import Connection
from store_support import CODEC, T0, make_runs, new_automations

from conveyor.domain.listing import Cursor, RunListQuery, parse_run_list_query
from conveyor.domain.runs import RunStatus
from conveyor.store import migrate, runs
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.store.schema import automation_runs as runs_t


def count_steps(conn: Connection, work: Callable[[], Any]) -> int:
    """SQLite VM instructions executed on `conn` while `work` runs."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.set_progress_handler(tick, 1)  # type: ignore[attr-defined]
    try:
        work()
    finally:
        raw.set_progress_handler(None, 1)  # type: ignore[attr-defined]
    return steps


def one_tie_group(db: Database, count: int) -> tuple[int, list[int]]:
    """An automation whose `count` runs share one created_at and one status, so every
    sort key is a single tie group ordered by id alone; returns it and the run ids."""
    with db.write() as conn:
        (automation,) = new_automations(conn, 1)
        made = make_runs(conn, [(automation, T0, RunStatus.RUNNING)] * count)
    return automation, [run.id for run in made]


def page_after(
    automation: int, field: str, direction: str, anchor_id: int, per_page: int
) -> RunListQuery:
    """The query a client sends for the page after the run `anchor_id`."""
    key = {"status": RunStatus.RUNNING.value, "created_at": T0}[field]
    pairs = [
        ("automation_id", str(automation)),
        ("per_page", str(per_page)),
        (f"sort_by[{field}]", direction),
    ]
    query = parse_run_list_query(pairs, CODEC)
    token = CODEC.encode(query.scope, query.sort, Cursor("next", key, anchor_id))
    return parse_run_list_query([*pairs, ("cursor", token)], CODEC)


def row_value_page(conn: Connection, query: RunListQuery) -> None:
    """The same page (ascending) read with one row-value comparison, and its probe."""
    assert query.cursor is not None and query.sort.field is not None
    column = runs_t.c[query.sort.field]
    scope = runs_t.c.automation_id == query.automation_id
    anchor = tuple_(query.cursor.key, query.cursor.id)
    conn.execute(
        select(*runs.RUN_COLUMNS)
        .where(scope, tuple_(column, runs_t.c.id) > anchor)
        .order_by(column, runs_t.c.id)
        .limit(query.per_page + 1)
    ).all()
    conn.execute(select(exists().where(and_(scope, tuple_(column, runs_t.c.id) <= anchor))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--per-page", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/steps.db")
        migrate.upgrade(db)
        automation, ids = one_tie_group(db, args.runs)
        depths = [d for d in (1, 1_000, 10_000, 100_000, args.runs // 2) if d < len(ids)]
        print(f"{args.runs} runs of one status, sort_by[status]=asc, per_page={args.per_page}")
        print("| depth | list_runs (steps) | row-value comparison (steps) |")
        print("|---:|---:|---:|")
        with db.read() as conn:
            for depth in sorted(set(depths)):
                query = page_after(automation, "status", "asc", ids[depth - 1], args.per_page)
                ours = count_steps(
                    conn, lambda q=query: run_steps(conn, runs.list_runs(conn.dialect, q))
                )
                single = count_steps(conn, lambda q=query: row_value_page(conn, q))
                print(f"| {depth:,} | {ours:,} | {single:,} |")
        db.dispose()


if __name__ == "__main__":
    main()
