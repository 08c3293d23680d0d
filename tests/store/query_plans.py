"""Which index serves each list query: the exact SQL list_runs (and the find by id) and
the all-runs view (`store.all_runs`) emit, captured from the driver calls, explained on
SQLite and PostgreSQL, and checked.

test_query_plans.py asserts the plans on both databases and that docs/indexes.md shows
them as they are today. Run as a script, this regenerates them (small data: DATA):

    .venv/bin/python tests/store/query_plans.py            # prints them
    .venv/bin/python tests/store/query_plans.py --write    # into docs/indexes.md
    .venv/bin/python tests/store/query_plans.py --check    # exit 1: stale or a wrong plan
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from store_support import CODEC, OUTCOMES, T0, delete_runs, make_runs, new_automations

from conveyor.domain.automations import Trigger
from conveyor.domain.listing import RunListQuery, parse_all_runs_query, parse_run_list_query
from conveyor.domain.runs import RunStatus
from conveyor.store import all_runs, migrate, runs, users
from conveyor.store import automations as automations_store
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.store.schema import automation_runs
from conveyor.store.users import User
from conveyor.testing.seed import make_run

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


# ---------------------------------------------------------------- the all-runs view

TRIGGERS = [t.value for t in Trigger]
ADMIN = User(0, "admin", True)


def add_other_triggers(db: Database) -> None:
    """As many runs again as `build` made (all manual), of the other triggers, spread
    over the same automations and times, so that no trigger is nearly every run."""
    with db.write() as conn:
        rows = conn.execute(
            select(automation_runs.c.automation_id, automation_runs.c.created_at)
        ).all()
        kinds = [t for t in TRIGGERS if t != "manual"]
        for i, (automation_id, created_at) in enumerate(rows):
            make_run(conn, automation_id, created_at, outcome=(1, 0), trigger=kinds[i % len(kinds)])
    if not db.is_sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")


def few_owner(db: Database, automation: int) -> User:
    """A user who is not an admin and owns two automations, each with a copy of the
    listed automation's runs: their pages merge their automations' own ranges."""
    with db.write() as conn:
        few = users.ensure_user(conn, "few", False, T0)
        copied = conn.execute(
            select(
                automation_runs.c.created_at,
                automation_runs.c.status,
                automation_runs.c.trigger,
            )
            .where(automation_runs.c.automation_id == automation)
            .order_by(automation_runs.c.id)
        ).all()
        for _ in range(2):
            mine = automations_store.create_automation(conn, few.id, T0)
            for created_at, status, trigger in copied:
                make_run(conn, mine, created_at, outcome=OUTCOMES[status], trigger=trigger)
    if not db.is_sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    return few


def intended_for_few(pairs: list[tuple[str, str]]) -> str | None:
    """The index a user owning few automations reads (their automations' own), None for
    a filter on an automation that is not theirs."""
    if any(name == "filter[automation_id]" for name, _ in pairs):
        return None
    if any(name == "filter[status]" for name, _ in pairs):
        return "ix_runs_automation_status_created"
    return "ix_runs_automation_created"


# With a created_at bound, SQLite reads the anchor's tie group (the runs created in
# the same microsecond) of a few-owner's page from ix_runs_created: a few runs at
# any depth, some perhaps others'.
TIE_GROUP = re.compile(r"INDEX ix_runs_created \(created_at=\? AND id[<>]\?\)$")


def all_runs_cases(automation: int) -> list[tuple[str, list[tuple[str, str]], str]]:
    """(what, filter, the index its ranges read)."""
    one = ("filter[automation_id]", str(automation))
    return [
        ("no filter", [], "ix_runs_created"),
        (
            "created_at range",
            [("filter_gteq[created_at]", "2023-01-01T00:00:00Z")],
            "ix_runs_created",
        ),
        ("two statuses", [("filter[status]", "success,failure")], "ix_runs_trigger_status_created"),
        ("a trigger", [("filter[trigger]", "manual")], "ix_runs_trigger_status_created"),
        (
            "a trigger and a status",
            [("filter[trigger]", "manual,webhook"), ("filter[status]", "failure")],
            "ix_runs_trigger_status_created",
        ),
        ("an automation", [one], "ix_runs_automation_created"),
        (
            "an automation and two statuses",
            [one, ("filter[status]", "success,failure")],
            "ix_runs_automation_status_created",
        ),
        (
            "an automation, a trigger and a status",
            [one, ("filter[status]", "failure"), ("filter[trigger]", "manual")],
            "ix_runs_automation_status_created",
        ),
    ]


def all_runs_statements(
    conn: Connection, pairs: list[tuple[str, str]], viewer: User, ascending: bool
) -> list[Statement]:
    """A first page, the next page and the page before that one."""
    pairs = [*pairs, ("per_page", "4"), ("sort_by[created_at]", "asc" if ascending else "desc")]
    found: list[Statement] = []

    def page(purpose: str, extra: list[tuple[str, str]]) -> Any:
        query = parse_all_runs_query([*pairs, *extra], CODEC, TRIGGERS)
        with captured(conn) as seen:
            result = run_steps(conn, all_runs.list_all_runs(conn.dialect, query, viewer))
        found.extend(
            Statement(purpose, "EXISTS" in sql.split("FROM", 1)[0], sql, params)
            for sql, params in seen
        )
        return query, result

    query, first = page("first page", [])
    assert first.next_cursor is not None, pairs
    _, second = page(
        "next page", [("cursor", CODEC.encode(query.scope, query.sort, first.next_cursor))]
    )
    assert second.prev_cursor is not None
    page("previous page", [("cursor", CODEC.encode(query.scope, query.sort, second.prev_cursor))])
    return found


ALL_RUNS_SEARCH = re.compile(r"^(?:SEARCH|SCAN) automation_runs USING (?:COVERING )?INDEX (\w+)")


def all_runs_sqlite_problems(lines: list[str], intended: str) -> list[str]:
    """Why a SQLite plan reads more than the intended index in order ([] when it does not)."""
    problems = []
    for line in (raw.strip() for raw in lines):
        if "TEMP B-TREE" in line:
            problems.append(f"sorts: {line}")
        if line.startswith("SCAN automation_runs") and intended != "ix_runs_created":
            problems.append(f"scans: {line}")
        if line.startswith("SCAN automations"):
            problems.append(f"scans: {line}")
        if line.startswith(("SEARCH automation_runs", "SCAN automation_runs")):
            match = ALL_RUNS_SEARCH.match(line)
            if match is None or match.group(1) != intended:
                problems.append(f"not {intended}: {line}")
    return problems


def all_runs_postgresql_problems(plan: Any, intended: str) -> list[str]:
    """Why a PostgreSQL plan is not index scans of the intended index, with no sort."""
    problems = []
    for node in _nodes(plan[0]["Plan"]):
        kind = node["Node Type"]
        if kind in FORBIDDEN_PG_NODES:
            problems.append(f"{kind} on {node.get('Relation Name', '-')}")
        if kind == "Merge Append":
            # Each arm carries the page's LIMIT: without it PostgreSQL plans the arm to
            # be read whole, on a large table a bitmap scan and a sort (store.keyset;
            # PG_SETTINGS would hide that here).
            for arm in node.get("Plans", []):
                if arm["Node Type"] != "Limit":
                    problems.append(f"a Merge Append arm without its LIMIT: {arm['Node Type']}")
        if node.get("Relation Name") != "automation_runs":
            continue
        if kind not in ("Index Scan", "Index Only Scan") or node.get("Index Name") != intended:
            problems.append(f"{kind} {node.get('Index Name')}, not {intended}")
    return problems


def all_runs_plans(
    conn: Connection, automation: int, owner: User, few: User
) -> tuple[list[str], list[str]]:
    """The all-runs view's plans as docs/indexes.md shows them (an admin's pages, newest
    first) and what is wrong with any page's plan, as an admin, as the owner of every
    automation (too many to merge their ranges) and as the owner of two
    (`few_owner`), in both orders: a read of another index, a full scan, or a sort."""
    out: list[str] = []
    problems: list[str] = []
    sqlite = conn.dialect.name == "sqlite"
    for what, pairs, for_all in all_runs_cases(automation):
        for viewer in (ADMIN, owner, few):
            intended = for_all if viewer is not few else intended_for_few(pairs)
            if intended is None:
                continue
            for ascending in (False, True):
                statements = all_runs_statements(conn, pairs, viewer, ascending)
                for statement in statements:
                    if statement.probe:
                        continue
                    if sqlite:
                        found = all_runs_sqlite_problems(explain_sqlite(conn, statement), intended)
                        if viewer is few:
                            found = [p for p in found if not TIE_GROUP.search(p)]
                    else:
                        plan = explain_postgresql(conn, statement)[1]
                        found = all_runs_postgresql_problems(plan, intended)
                    who = "admin" if viewer.is_admin else viewer.name
                    order = "asc" if ascending else "desc"
                    problems += [
                        f"all runs, {what}, {who}, {order}, {statement.purpose}: {p}" for p in found
                    ]
                if viewer is ADMIN and not ascending:
                    out += _section(f"{what}: {intended}", conn, statements, _explain)
    return out, problems


# ---------------------------------------------------------------- the document

DOC = Path(__file__).resolve().parents[2] / "docs" / "indexes.md"
# The data the document's plans are captured on: small, so that the test that keeps
# the document current (test_query_plans.py) takes seconds.
DATA = {"listed": 48, "others": 200, "per_other": 10}

# PostgreSQL picks by cost between an index read in order, a bitmap scan plus a sort
# of the few rows a page needs, and a sequential scan; on a table this small the
# latter two often cost less. Turning them off leaves only plans that read an index
# in order, which shows which index it takes and that no row is filtered after it.
# random_page_cost = 1.1 is the usual setting for SSD storage: at the default of 4,
# the scattered runs of one automation make reading the primary key in id order and
# filtering by automation look cheaper than the (automation_id, id) index.
PG_SETTINGS = {
    "enable_seqscan": "off",
    "enable_bitmapscan": "off",
    "enable_sort": "off",
    "random_page_cost": "1.1",
}


def prepare(conn: Connection) -> None:
    """PG_SETTINGS for the rest of the read transaction on `conn` (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        for name, value in PG_SETTINGS.items():
            conn.exec_driver_sql(f"SET LOCAL {name} = {value}")


def find_problems(conn: Connection, statements: list[Statement]) -> list[str]:
    """Why the find's plans are not primary-key lookups ([] when they are): the run by
    its id; for a user who is not an admin, the automation's owner by one lookup too."""
    if conn.dialect.name == "sqlite":
        plans = [explain_sqlite(conn, statement) for statement in statements]
        run = "SEARCH automation_runs USING INTEGER PRIMARY KEY (rowid=?)"
        owner = (
            "SEARCH automations USING COVERING INDEX ix_automations_user_id (user_id=? AND rowid=?)"
        )
        expected = [[run], [run, owner]]
        pairs = zip(plans, expected, strict=True)
        return [f"{plan} is not {want}" for plan, want in pairs if plan != want]
    problems = []
    for statement in statements:
        plan = explain_postgresql(conn, statement)[1]
        problems += postgresql_problems(plan, statement, "automation_runs_pkey")
    owner_plan = explain_postgresql(conn, statements[-1])[1]
    problems += postgresql_problems(
        owner_plan, statements[-1], "automations_pkey", "automations", filter_ok=True
    )
    return problems


def _section(
    title: str,
    conn: Connection,
    statements: list[Statement],
    explain: Callable[[Connection, Statement], list[str]],
) -> list[str]:
    out = [f"<details><summary>{title}</summary>\n"]
    for statement in statements:
        out.append(f"**{statement.purpose}{', EXISTS probe' if statement.probe else ''}**\n")
        out.append("```sql")
        out.append("\n".join(line.rstrip() for line in statement.sql.strip().splitlines()))
        out.append(f"-- parameters: {statement.params}")
        out.append("```\n```")
        out.append("\n".join(explain(conn, statement)))
        out.append("```\n")
    out.append("</details>\n")
    return out


def render(db: Database) -> tuple[str, list[str]]:
    """The plans of every list query and the find on `db`, a freshly migrated database
    (seeded here with DATA), then of the all-runs view (with `add_other_triggers`), as
    docs/indexes.md shows them, and what is wrong with any of them: a plan that is not
    a range of the intended index, or a sort."""
    automation, owner = build(db, **DATA)
    sqlite = db.is_sqlite
    out: list[str] = []
    problems: list[str] = []
    with db.read() as conn:
        prepare(conn)
        version = conn.exec_driver_sql(
            "SELECT sqlite_version()" if sqlite else "SHOW server_version"
        ).scalar_one()
        if sqlite:
            out.append(f"### SQLite {version} (no ANALYZE)\n")
        else:
            settings = ", ".join(f"{name} = {value}" for name, value in PG_SETTINGS.items())
            out.append(f"### PostgreSQL {version} (ANALYZE; {settings})\n")
        out.append("#### Runs of one automation (`GET /api/rest/v1/automation_runs`)\n")
        for filtered, field, direction in COMBINATIONS:
            query = ("filter[status]=success, " if filtered else "") + (
                f"sort_by[{field}]={direction}"
            )
            statements = list_statements(conn, automation, filtered, field, direction)
            for statement in statements:
                if sqlite:
                    found = sqlite_problems(
                        explain_sqlite(conn, statement), statement, filtered, field
                    )
                else:
                    plan = explain_postgresql(conn, statement)[1]
                    found = postgresql_problems(plan, statement, intended_index(filtered, field))
                problems += [f"{query}, {statement.purpose}: {problem}" for problem in found]
            out += _section(
                f"{query}: {intended_index(filtered, field)}", conn, statements, _explain
            )
        run_id = conn.exec_driver_sql("SELECT max(id) FROM automation_runs").scalar_one()
        statements = find_statements(conn, run_id, owner)
        problems += [f"find by id: {problem}" for problem in find_problems(conn, statements)]
        out += _section("find by id: primary key", conn, statements, _explain)
    add_other_triggers(db)
    few = few_owner(db, automation)
    with db.read() as conn:
        prepare(conn)
        out.append("#### All runs (`GET /api/conveyor/v1/automation_runs`)\n")
        section, found = all_runs_plans(conn, automation, owner, few)
        out += section
        problems += found
    return "\n".join(out).strip("\n"), problems


def _explain(conn: Connection, statement: Statement) -> list[str]:
    if conn.dialect.name == "sqlite":
        return explain_sqlite(conn, statement)
    return explain_postgresql(conn, statement)[0]


def markers(backend: str) -> tuple[str, str]:
    return (
        f"<!-- plans of {backend}: generated by tests/store/query_plans.py --write -->",
        f"<!-- end of the plans of {backend} -->",
    )


def in_doc(text: str, backend: str) -> str:
    """The generated part of docs/indexes.md for `backend` ("sqlite", "postgresql")."""
    begin, end = markers(backend)
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def with_section(text: str, backend: str, section: str) -> str:
    begin, end = markers(backend)
    before, rest = text.split(begin, 1)
    return f"{before}{begin}\n{section}\n{end}{rest.split(end, 1)[1]}"


# ---------------------------------------------------------------- the script


def _databases() -> Iterator[tuple[str, Database]]:
    from conveyor.testing.postgres import PostgresServer

    with tempfile.TemporaryDirectory() as folder:
        sqlite = Database(f"sqlite:///{folder}/plans.db")
        migrate.upgrade(sqlite)
        yield "sqlite", sqlite
        sqlite.dispose()
    with PostgresServer() as server:
        postgresql = Database(server.create_database("plans"))
        migrate.upgrade(postgresql)
        yield "postgresql", postgresql
        postgresql.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the plans into " + str(DOC))
    mode.add_argument(
        "--check", action="store_true", help="exit 1 if the document is stale or a plan is wrong"
    )
    args = parser.parse_args()
    text = DOC.read_text()
    failed = False
    for backend, db in _databases():
        section, problems = render(db)
        for problem in problems:
            print(f"{backend}: {problem}", file=sys.stderr)
        failed = failed or bool(problems)
        if args.check and in_doc(text, backend) != section:
            print(f"{DOC} shows stale {backend} plans: run {sys.argv[0]} --write", file=sys.stderr)
            failed = True
        elif not args.check and not args.write:
            print(section)
        text = with_section(text, backend, section)
    if args.write:
        DOC.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
