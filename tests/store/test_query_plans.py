"""Every list query and the find by id read one index range, with no full scan and no
sort, on SQLite and PostgreSQL: the plans of the exact SQL the store emits, as
docs/indexes.md shows them (query_plans.py generates that part of it)."""

from __future__ import annotations

import pytest
from query_plans import (
    COMBINATIONS,
    DOC,
    build,
    explain_sqlite,
    in_doc,
    list_statements,
    render,
    sqlite_problems,
)

from conveyor.store.database import Database


def test_every_plan_is_an_index_range_and_docs_indexes_shows_it(db: Database, backend: str) -> None:
    section, problems = render(db)
    assert problems == []
    assert in_doc(DOC.read_text(), backend) == section, (
        "docs/indexes.md shows stale plans: run .venv/bin/python tests/store/query_plans.py --write"
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_plans_hold_after_analyze(db: Database) -> None:
    """Conveyor never runs ANALYZE on SQLite, but the plans hold if someone does."""
    automation, _ = build(db, listed=48, others=200, per_other=10)
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    problems = []
    with db.read() as conn:
        for filtered, field, direction in COMBINATIONS:
            for statement in list_statements(conn, automation, filtered, field, direction):
                found = sqlite_problems(explain_sqlite(conn, statement), statement, filtered, field)
                problems += [f"{field} {direction} {statement.purpose}: {p}" for p in found]
    assert problems == []
