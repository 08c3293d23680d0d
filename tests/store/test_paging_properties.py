"""Keyset paging against a model, on SQLite and PostgreSQL (SPEC 2.1).

For random runs (few distinct created_at values, so many ties; every status; several
automations) and a random list query, walking forward with the next cursors returns
exactly the model's list: the runs of that automation with that status, sorted in
Python by (key, id) in the query's direction. Walking back from the last page with the
prev cursors returns the same pages in reverse. The first page has no prev cursor, the
last no next.

One database per backend serves every example; each example builds its runs for
fresh automations in one transaction, so earlier examples' rows never interfere.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_support import MADE_STATUSES, T0, follow, make_runs, new_automations, read_page, records

from conveyor.domain.runs import AutomationRun, RunStatus
from conveyor.store.database import Database
from conveyor.store.runs import Page

RUNS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which of three automations
        st.integers(0, 4),  # created_at offset: five values, so many ties
        st.sampled_from(MADE_STATUSES),
    ),
    max_size=24,
)
QUERIES = st.tuples(
    st.sampled_from([None, "created_at", "status", "automation_id"]),  # None: no sort_by
    st.booleans(),  # descending
    st.sampled_from([None, *RunStatus]),  # filter[status]
    st.integers(1, 6),  # per_page
)


def model(
    made: list[AutomationRun], automation_id: int, field: str | None, desc: bool, status: Any
) -> list[AutomationRun]:
    def key(run: AutomationRun) -> tuple[Any, int]:
        value = {
            None: run.created_at,
            "created_at": run.created_at,
            "status": run.status.value,
            "automation_id": run.automation_id,
        }[field]
        return value, run.id

    chosen = [
        run
        for run in made
        if run.automation_id == automation_id and (status is None or run.status is status)
    ]
    return sorted(chosen, key=key, reverse=desc)


def walk(db: Database, pairs: list[tuple[str, str]], direction: str, start: Page | None) -> Any:
    """Pages from `start` (or the first page) following `direction` cursors to the end."""
    query, page = read_page(db, pairs)
    if start is not None:
        page = start
    pages = [page]
    while True:
        cursor = page.next_cursor if direction == "next" else page.prev_cursor
        if cursor is None:
            return pages
        assert len(pages) <= 30, "the walk does not end"
        page = read_page(db, follow(pairs, query, cursor))[1]
        pages.append(page)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(RUNS, QUERIES)
def test_walks_return_the_models_list(
    db: Database,
    specs: list[tuple[int, int, RunStatus]],
    query: tuple[str | None, bool, RunStatus | None, int],
) -> None:
    field, desc, status, per_page = query
    with db.write() as conn:
        automations = new_automations(conn, 3)
        made = make_runs(conn, [(automations[a], T0 + dt, s) for a, dt, s in specs])
    target = automations[0]
    pairs = [("automation_id", str(target)), ("per_page", str(per_page))]
    if field is not None:
        pairs.append((f"sort_by[{field}]", "desc" if desc else "asc"))
    else:
        desc = True  # the default order: newest first
    if status is not None:
        pairs.append(("filter[status]", status.value))
    expected = model(made, target, field, desc, status)

    forward = walk(db, pairs, "next", None)
    walked = [run for page in forward for run in records(page)]
    assert [run.id for run in walked] == [run.id for run in expected]
    assert walked == expected
    assert len({run.id for run in walked}) == len(walked)
    assert forward[0].prev_cursor is None
    assert forward[-1].next_cursor is None
    assert all(len(page.rows) == per_page for page in forward[:-1])
    assert 0 < len(forward[-1].rows) <= per_page or expected == []
    assert all(p.next_cursor is not None and p.prev_cursor is not None for p in forward[1:-1])

    backward = walk(db, pairs, "prev", forward[-1])
    assert backward[::-1] == forward
