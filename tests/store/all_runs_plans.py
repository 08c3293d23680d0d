"""Which index serves each all-runs query: the exact SQL `store.all_runs` emits for a
first, next and previous page, explained on SQLite and PostgreSQL.

test_all_runs_plans.py asserts the plans; run as a script, this prints them for
docs/indexes.md:

    .venv/bin/python tests/store/all_runs_plans.py > /tmp/all-runs-plans.md
"""

from __future__ import annotations

import re
import sys
from typing import Any

from query_plans import (
    FORBIDDEN_PG_NODES,
    Statement,
    _databases,
    _nodes,
    build,
    captured,
    explain_postgresql,
    explain_sqlite,
    prepare,
)
from sqlalchemy import select
from sqlalchemy.engine import Connection
from store_support import CODEC, OUTCOMES, T0

from conveyor.domain.automations import Trigger
from conveyor.domain.listing import parse_all_runs_query
from conveyor.store import all_runs, users
from conveyor.store import automations as automations_store
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.store.schema import automation_runs
from conveyor.store.users import User
from conveyor.testing.seed import make_run

TRIGGERS = [t.value for t in Trigger]
ADMIN = User(0, "admin", True)


def build_mixed(db: Database, listed: int, others: int, per_other: int) -> tuple[int, User]:
    """query_plans.build's runs (all manual), and as many again of the other triggers
    (spread over the same automations and times), so no trigger is nearly every run."""
    automation, owner = build(db, listed, others, per_other)
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
    return automation, owner


def few_owner(db: Database, automation: int) -> User:
    """A user who is not an admin and owns two automations, each with a copy of the
    listed automation's runs (whose runs are then read through their own ranges)."""
    with db.write() as conn:
        few = users.ensure_user(conn, "few", False, T0)
        copied = conn.execute(
            select(
                automation_runs.c.created_at,
                automation_runs.c.status,
                automation_runs.c.trigger,
            ).where(automation_runs.c.automation_id == automation)
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
    """The index a viewer owning few automations reads (their automations' own), None
    for a filter on an automation that is not theirs."""
    if any(name == "filter[automation_id]" for name, _ in pairs):
        return None
    if any(name == "filter[status]" for name, _ in pairs):
        return "ix_runs_automation_status_created"
    return "ix_runs_automation_created"


def cases(automation: int) -> list[tuple[str, list[tuple[str, str]], str]]:
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


def statements(
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


TIE_GROUP = re.compile(r"INDEX ix_runs_created \(created_at=\? AND id[<>]\?\)$")
SEARCH = re.compile(r"^(?:SEARCH|SCAN) automation_runs USING (?:COVERING )?INDEX (\w+)")


def sqlite_problems(lines: list[str], intended: str) -> list[str]:
    problems = []
    for line in (raw.strip() for raw in lines):
        if "TEMP B-TREE" in line:
            problems.append(f"sorts: {line}")
        if line.startswith("SCAN automation_runs") and intended != "ix_runs_created":
            problems.append(f"scans: {line}")
        if line.startswith("SCAN automations"):
            problems.append(f"scans: {line}")
        if line.startswith(("SEARCH automation_runs", "SCAN automation_runs")):
            match = SEARCH.match(line)
            if match is None or match.group(1) != intended:
                problems.append(f"not {intended}: {line}")
    return problems


def postgresql_problems(plan: Any, intended: str) -> list[str]:
    problems = []
    for node in _nodes(plan[0]["Plan"]):
        kind = node["Node Type"]
        if kind == "Merge Append":
            # Each arm carries the page's LIMIT: without it PostgreSQL plans the arm to
            # be read whole, which on a large table is a bitmap scan and a sort
            # (store.keyset; the settings of `prepare` would hide that here).
            for arm in node.get("Plans", []):
                if arm["Node Type"] != "Limit":
                    problems.append(f"a Merge Append arm without its LIMIT: {arm['Node Type']}")
        if kind in FORBIDDEN_PG_NODES:
            problems.append(f"{kind} on {node.get('Relation Name', '-')}")
        if node.get("Relation Name") != "automation_runs":
            continue
        if kind not in ("Index Scan", "Index Only Scan") or node.get("Index Name") != intended:
            problems.append(f"{kind} {node.get('Index Name')}, not {intended}")
    return problems


def problems_of_every_query(
    conn: Connection, backend: str, automation: int, owner: User, few: User
) -> dict[str, list[str]]:
    """`owner` owns every automation (too many to merge their ranges), `few` two."""
    problems: dict[str, list[str]] = {}
    for what, pairs, for_all in cases(automation):
        for viewer in (ADMIN, owner, few):
            intended = for_all if viewer is not few else intended_for_few(pairs)
            if intended is None:
                continue
            for ascending in (False, True):
                for statement in statements(conn, pairs, viewer, ascending):
                    if statement.probe:
                        continue
                    if backend == "sqlite":
                        found = sqlite_problems(explain_sqlite(conn, statement), intended)
                        if viewer is few:
                            # With a created_at bound SQLite reads the anchor's tie group
                            # (runs created in the same microsecond) from ix_runs_created:
                            # a few runs at any depth, some perhaps others'.
                            found = [p for p in found if not TIE_GROUP.search(p)]
                    else:
                        found = postgresql_problems(
                            explain_postgresql(conn, statement)[1], intended
                        )
                    if found:
                        who = viewer.name
                        key = (
                            f"{what}, {who}, {'asc' if ascending else 'desc'}, {statement.purpose}"
                        )
                        problems[key] = found
    return problems


def main() -> None:
    print(
        "Data: one automation with 400 runs among 60 others with 40 runs each, all "
        "manual, and as many again of the other triggers; pages of 4.\n"
    )
    for name, db in _databases():
        if db.is_sqlite and "--postgresql-only" in sys.argv:
            continue
        automation, _owner = build_mixed(db, 400, 60, 40)
        with db.read() as conn:
            # As the test does: on a table this small PostgreSQL would rather scan and
            # sort; with only in-order index reads left, the plans show the indexes.
            prepare(conn)
            settings = (
                "" if db.is_sqlite else " (enable_seqscan, enable_bitmapscan, enable_sort off)"
            )
            print(f"### {name}{settings}\n")
            for what, pairs, intended in cases(automation):
                print(f"<details><summary>{what}: {intended}</summary>\n")
                for statement in statements(conn, pairs, ADMIN, False):
                    explain = (
                        explain_sqlite(conn, statement)
                        if db.is_sqlite
                        else explain_postgresql(conn, statement)[0]
                    )
                    probe = ", EXISTS probe" if statement.probe else ""
                    print(f"**{statement.purpose}{probe}** (parameters {statement.params})\n")
                    print("```\n" + "\n".join(explain) + "\n```\n")
                print("</details>\n")


if __name__ == "__main__":
    main()
