"""Which index serves each list query: the exact SQL list_runs (and the find by id) emits,
captured from the driver calls, explained on SQLite and PostgreSQL, and checked.

test_query_plans.py asserts the plans on both databases. Run as a script, this prints
the plans recorded in docs/indexes.md:

    .venv/bin/python tests/store/query_plans.py > /tmp/plans.md
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from store_support import CODEC, T0, delete_runs, make_runs, new_automations

from conveyor.domain.listing import RunListQuery, parse_run_list_query
from conveyor.domain.runs import RunStatus
from conveyor.store import migrate, runs, users
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.store.schema import automation_runs
from conveyor.store.users import User

SORT_FIELDS = ("automation_id", "created_at", "status")
# (filter[status] given?, sort field, direction): every list query SPEC 2.1 allows.
COMBINATIONS = [
    (filtered, field, direction)
    for filtered in (False, True)
    for field in SORT_FIELDS
    for direction in ("asc", "desc")
]
INDEX_COLUMNS = {
    str(index.name): [column.name for column in index.columns] for index in automation_runs.indexes
}
FORBIDDEN_PG_NODES = {"Seq Scan", "Sort", "Incremental Sort", "Bitmap Heap Scan", "Materialize"}
STATUSES = list(RunStatus)


def read_field(filtered: bool, field: str) -> str | None:
    """The column rows are read by after the id-only normalisations of list_runs."""
    if field == "automation_id" or (filtered and field == "status"):
        return None
    return field


def intended_index(filtered: bool, field: str) -> str:
    return {
        (False, None): "ix_runs_automation_id_id",
        (False, "created_at"): "ix_runs_automation_created",
        (False, "status"): "ix_runs_automation_status_id",
        (True, None): "ix_runs_automation_status_id",
        (True, "created_at"): "ix_runs_automation_status_created",
    }[(filtered, read_field(filtered, field))]


# ---------------------------------------------------------------- the data


def build(db: Database, listed: int, others: int, per_other: int) -> tuple[int, User]:
    """The listed automation, with `listed` runs of every status (three per created_at),
    among `others` automations with `per_other` queued runs each, created interleaved
    as runs of many automations are. Returns the listed automation and its owner.

    PostgreSQL's statistics are refreshed, as autovacuum would; SQLite keeps none, as
    Conveyor never runs ANALYZE there.
    """
    with db.write() as conn:
        target, *crowd = new_automations(conn, 1 + others)
        owner = users.ensure_user(conn, "owner", False, T0)
        specs = []
        for i in range(max(listed, per_other)):
            if i < listed:
                specs.append((target, T0 + i // 3 * 1_000_000, STATUSES[i * 7 % 4]))
            if i < per_other:
                specs += [(other, T0 + i * 1_000_000, RunStatus.RUNNING) for other in crowd]
        make_runs(conn, specs)
    if not db.is_sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    return target, owner


# ---------------------------------------------------------------- capture


@dataclass(frozen=True)
class Statement:
    purpose: str  # "first page", "next page", ...
    probe: bool  # the EXISTS probe for a page the other way
    sql: str
    params: Any


@contextmanager
def captured(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    """Every statement and its parameters as handed to the driver on `conn`."""
    seen: list[tuple[str, Any]] = []

    def listen(*args: Any) -> None:
        seen.append((args[2], args[3]))

    event.listen(conn, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", listen)


def list_statements(
    conn: Connection, automation_id: int, filtered: bool, field: str, direction: str
) -> list[Statement]:
    """First page, then a next page and a previous page from the middle of the list."""
    pairs = [
        ("automation_id", str(automation_id)),
        ("per_page", "4"),
        (f"sort_by[{field}]", direction),
    ]
    if filtered:
        pairs.append(("filter[status]", RunStatus.SUCCESS.value))
    statements: list[Statement] = []

    def page(purpose: str, extra: list[tuple[str, str]]) -> tuple[RunListQuery, runs.Page]:
        query = parse_run_list_query(pairs + extra, CODEC)
        with captured(conn) as seen:
            result = run_steps(conn, runs.list_runs(conn.dialect, query))
        # The probe is the statement whose select list is EXISTS (...).
        statements.extend(
            Statement(purpose, "EXISTS" in sql.split("FROM", 1)[0], sql, params)
            for sql, params in seen
        )
        return query, result

    query, first = page("first page", [])
    assert first.next_cursor is not None
    token = CODEC.encode(query.scope, query.sort, first.next_cursor)
    _, second = page("next page", [("cursor", token)])
    assert second.prev_cursor is not None
    token = CODEC.encode(query.scope, query.sort, second.prev_cursor)
    page("previous page", [("cursor", token)])
    # The anchors' runs gone (as when retention prunes them; it prunes finished runs
    # only, so the rows are deleted here, inside a savepoint): a page cannot see its
    # anchor and asks the EXISTS probe whether anything lies the way it came from.
    gone = conn.begin_nested()
    delete_runs(conn, [first.next_cursor.id, second.prev_cursor.id])
    for purpose, cursor in (
        ("next page, anchor gone", first.next_cursor),
        ("previous page, anchor gone", second.prev_cursor),
    ):
        page(purpose, [("cursor", CODEC.encode(query.scope, query.sort, cursor))])
    gone.rollback()
    # A page that found its anchor asked nothing more; one that did not, probed.
    probed = {statement.purpose for statement in statements if statement.probe}
    assert probed == {"next page, anchor gone", "previous page, anchor gone"}, probed
    return statements


def find_statements(conn: Connection, run_id: int, owner: User) -> list[Statement]:
    """Show Automation Run, as an admin and as the automation's owner."""
    statements = []
    for user, purpose in ((User(0, "admin", True), "find by id (admin)"), (owner, "find by id")):
        with captured(conn) as seen:
            assert run_steps(conn, runs.find_visible_run(conn.dialect, run_id, user)) is not None
        statements += [Statement(purpose, False, sql, params) for sql, params in seen]
    return statements


# ---------------------------------------------------------------- explain


def explain_sqlite(conn: Connection, statement: Statement) -> list[str]:
    """EXPLAIN QUERY PLAN as the sqlite3 shell draws it."""
    rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement.sql, statement.params).all()
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def explain_postgresql(conn: Connection, statement: Statement) -> tuple[list[str], Any]:
    """EXPLAIN (COSTS OFF) text and the JSON plan of the same statement."""
    text_rows = conn.exec_driver_sql("EXPLAIN (COSTS OFF) " + statement.sql, statement.params)
    lines = [row[0] for row in text_rows]
    plan = conn.exec_driver_sql(
        "EXPLAIN (COSTS OFF, FORMAT JSON) " + statement.sql, statement.params
    ).scalar_one()
    return lines, plan if not isinstance(plan, str) else json.loads(plan)


SQLITE_SEARCH = re.compile(r"^SEARCH automation_runs USING (?:COVERING )?INDEX (\w+) \((.*)\)$")
SQLITE_CONSTRAINT = re.compile(r"^(\w+)(=|>|<|>=|<=)\?$")


def expected_ranges(filtered: bool, field: str, keyed: bool) -> set[tuple[str, ...]]:
    """The index columns each range of a SQLite list statement constrains: with a
    cursor and a sort key, the anchor's tie group (key = ? AND id > ?) and beyond it."""
    equal = ("automation_id", "status") if filtered else ("automation_id",)
    column = read_field(filtered, field)
    if not keyed:
        return {equal}
    if column is None:
        return {(*equal, "id")}
    return {(*equal, column, "id"), (*equal, column)}


def sqlite_problems(
    lines: list[str], statement: Statement, filtered: bool, field: str
) -> list[str]:
    """Why a SQLite plan is not an exact index range in the intended index ([] when it is)."""
    problems = []
    ranges = set()
    for line in (raw.strip() for raw in lines):
        if "TEMP B-TREE" in line:
            problems.append(f"sorts: {line}")
        if line.startswith("SCAN automation_runs") or line.startswith("SCAN automations"):
            problems.append(f"scans: {line}")
        match = SQLITE_SEARCH.match(line)
        if not match:
            continue
        index, constraints = match.groups()
        parts = [SQLITE_CONSTRAINT.match(p) for p in constraints.split(" AND ")]
        if not all(parts):
            problems.append(f"unexpected constraint: {line}")
            continue
        columns = tuple(p.group(1) for p in parts if p)
        operators = [p.group(2) for p in parts if p]
        ranges.add(columns)
        if list(columns) != INDEX_COLUMNS[index][: len(columns)] or set(operators[:-1]) - {"="}:
            problems.append(f"not one range of {index} {INDEX_COLUMNS[index]}: {line}")
        if not statement.probe and index != intended_index(filtered, field):
            problems.append(f"uses {index}, not {intended_index(filtered, field)}: {line}")
    keyed = statement.purpose != "first page"
    expected = expected_ranges(filtered, field, keyed)
    if ranges != expected:
        problems.append(f"ranges {sorted(ranges)}, expected {sorted(expected)}")
    return problems


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def postgresql_problems(
    plan: Any,
    statement: Statement,
    intended: str,
    table: str = "automation_runs",
    *,
    filter_ok: bool = False,
) -> list[str]:
    """Why a PostgreSQL plan is not index scans of the intended index with every
    condition in the Index Cond and no sort ([] when it is). `filter_ok` accepts a
    condition checked on the rows found (harmless after a primary-key lookup).

    An EXISTS probe may use any index of the list's scope and check the sort key on
    the rows it finds, since the first match ends it and PostgreSQL takes that path
    only when it expects the first row to match; the automation and status must be
    in its Index Cond, so it never reads another list's rows.
    """
    problems = []
    scans = 0
    for node in _nodes(plan[0]["Plan"]):
        kind = node["Node Type"]
        if kind in FORBIDDEN_PG_NODES:
            problems.append(f"{kind} on {node.get('Relation Name', '-')}")
        if node.get("Relation Name") != table:
            continue
        scans += 1
        if kind not in ("Index Scan", "Index Only Scan"):
            problems.append(f"{kind} on {table}")
        scoped_probe = statement.probe and not re.search(
            r"automation_id|status", node.get("Filter", "")
        )
        if "Filter" in node and not (filter_ok or scoped_probe):
            problems.append(f"rows filtered after the index: {node['Filter']}")
        if not statement.probe and node.get("Index Name") != intended:
            problems.append(f"uses {node.get('Index Name')}, not {intended}")
    if scans == 0:
        problems.append(f"no scan of {table}")
    return problems


# ---------------------------------------------------------------- the script


def _databases() -> Iterator[tuple[str, Database]]:
    from conveyor.testing.postgres import PostgresServer

    with tempfile.TemporaryDirectory() as folder:
        sqlite = Database(f"sqlite:///{folder}/plans.db")
        migrate.upgrade(sqlite)
        yield "SQLite", sqlite
        sqlite.dispose()
    with PostgresServer() as server:
        postgresql = Database(server.create_database("plans"))
        migrate.upgrade(postgresql)
        yield "PostgreSQL", postgresql
        postgresql.dispose()


def _print_plans(
    title: str,
    conn: Connection,
    statements: list[Statement],
    explain: Callable[[Connection, Statement], list[str]],
) -> None:
    print(f"<details><summary>{title}</summary>\n")
    for statement in statements:
        print(f"**{statement.purpose}{', EXISTS probe' if statement.probe else ''}**\n")
        print("```sql")
        print("\n".join(line.rstrip() for line in statement.sql.strip().splitlines()))
        print(f"-- parameters: {statement.params}")
        print("```\n```")
        print("\n".join(explain(conn, statement)))
        print("```\n")
    print("</details>\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listed", type=int, default=2_000, help="runs of the listed automation")
    parser.add_argument("--others", type=int, default=99, help="other automations")
    parser.add_argument("--per-other", type=int, default=200, help="runs of each other one")
    args = parser.parse_args()
    print(
        f"Data: the listed automation has {args.listed:,} runs (every status, three per "
        f"created_at) among {args.others} other automations with {args.per_other} runs "
        "each; pages of 4 runs.\n"
    )
    for name, db in _databases():
        automation, owner = build(db, args.listed, args.others, args.per_other)
        explain: Callable[[Connection, Statement], list[str]] = (
            explain_sqlite
            if db.is_sqlite
            else (lambda conn, statement: explain_postgresql(conn, statement)[0])
        )
        with db.read() as conn:
            version = conn.exec_driver_sql(
                "SELECT sqlite_version()" if db.is_sqlite else "SHOW server_version"
            ).scalar_one()
            settings = "no ANALYZE" if db.is_sqlite else "default planner settings, ANALYZE"
            print(f"### {name} {version} ({settings})\n")
            for filtered, field, direction in COMBINATIONS:
                query = ("filter[status]=success, " if filtered else "") + (
                    f"sort_by[{field}]={direction}"
                )
                _print_plans(
                    f"{query}: {intended_index(filtered, field)}",
                    conn,
                    list_statements(conn, automation, filtered, field, direction),
                    explain,
                )
            run_id = conn.exec_driver_sql("SELECT max(id) FROM automation_runs").scalar_one()
            _print_plans(
                "find by id: primary key", conn, find_statements(conn, run_id, owner), explain
            )


if __name__ == "__main__":
    main()
