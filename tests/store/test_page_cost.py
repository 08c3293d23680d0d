"""A page costs the same at any depth of a list on SQLite, even deep inside one tie
group (SPEC 2.1: the cost of a page does not grow with its depth).

Cost here is the number of SQLite virtual-machine instructions a page executes,
counted by a progress handler: exact and machine-independent, not a time. On
PostgreSQL the same property follows from the plans test_query_plans.py checks
(an index range bounded by the whole (key, id) row value, nothing filtered after).
"""

from __future__ import annotations

import pytest
from page_steps import count_steps, one_tie_group, page_after

from conveyor.store import runs
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps

RUNS = 3_000
PER_PAGE = 20


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("field", ["status", "created_at"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_deep_page_costs_what_a_shallow_one_does(
    db: Database, field: str, direction: str
) -> None:
    automation, ids = one_tie_group(db, RUNS)
    # In walking order: ids ascend for asc, descend for desc; anchors near each end.
    order = ids if direction == "asc" else ids[::-1]
    costs = {}
    with db.read() as conn:
        for depth in (5, RUNS - 5 * PER_PAGE):
            query = page_after(automation, field, direction, order[depth - 1], PER_PAGE)
            page = run_steps(conn, runs.list_runs(conn.dialect, query))
            assert [row[0] for row in page.rows] == order[depth : depth + PER_PAGE]
            costs[depth] = count_steps(
                conn, lambda q=query: run_steps(conn, runs.list_runs(conn.dialect, q))
            )
    shallow, deep = costs.values()
    # A range scan from the anchor reads the same rows at any depth; reading the tie
    # group from its start would cost about RUNS / PER_PAGE times more at the bottom.
    assert deep <= shallow * 1.2, costs
