"""The all-runs view against a model, on SQLite and PostgreSQL (issue 15 item 5).

For random runs (several automations of two owners, every status, every trigger,
few distinct created_at values, so many ties) and a random filter (statuses,
triggers, automation, created_at bounds), sort and page size, as an admin, as
one owner (two more automations each example, so her pages are read both from
her own automations' ranges and, past store.all_runs.MERGED_RANGES, with each
run's automation checked) or as a user owning none: walking forward with the
next cursors returns exactly the model's list (the matching runs sorted in
Python by (created_at, id)), and walking back from the last page with the prev
cursors returns the same pages in reverse.

One database per backend serves every example; each example first deletes the
previous example's runs, so the view holds only its own.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_support import CODEC, OUTCOMES, T0, delete_runs, records

from conveyor.clock import to_rfc3339
from conveyor.domain.automations import Trigger
from conveyor.domain.listing import AllRunsQuery, parse_all_runs_query
from conveyor.domain.runs import AutomationRun, RunStatus
from conveyor.store import all_runs, automations, users
from conveyor.store.database import Database
from conveyor.store.keyset import KeysetPage
from conveyor.store.prepared import run_steps
from conveyor.store.schema import automation_runs
from conveyor.testing.seed import make_run

SECOND = 1_000_000  # created_at values whole seconds apart, as filters name them
TRIGGERS = [t.value for t in Trigger]
STATUSES = list(OUTCOMES)  # the statuses the seed can make; filters name any status
RUNS = st.lists(
    st.tuples(
        st.integers(0, 3),  # which of four automations (0 and 1: alice's, 2 and 3: bob's)
        st.integers(0, 4),  # created_at offset: five values, so many ties
        st.sampled_from(STATUSES),
        st.sampled_from(TRIGGERS),
    ),
    max_size=24,
)
RANGE = st.one_of(
    st.none(), st.tuples(st.sampled_from(["gt", "gteq", "lt", "lteq"]), st.integers(0, 4))
)
QUERIES = st.fixed_dictionaries(
    {
        "statuses": st.lists(st.sampled_from(list(RunStatus)), max_size=3, unique=True),
        "triggers": st.lists(st.sampled_from(TRIGGERS), max_size=2, unique=True),
        "automation": st.one_of(st.none(), st.integers(0, 3)),
        "ranges": st.lists(RANGE, max_size=2),
        "sort": st.sampled_from([None, "asc", "desc"]),
        "per_page": st.integers(1, 6),
        "viewer": st.sampled_from(["admin", "alice", "carol"]),  # carol owns nothing
    }
)
COMPARE = {
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
}


def read(
    db: Database, pairs: list[tuple[str, str]], viewer: users.User
) -> tuple[AllRunsQuery, KeysetPage]:
    query = parse_all_runs_query(pairs, CODEC, TRIGGERS)
    with db.read() as conn:
        return query, run_steps(conn, all_runs.list_all_runs(conn.dialect, query, viewer))


def walk(
    db: Database, pairs: list[tuple[str, str]], viewer: users.User, direction: str, start: Any
) -> list[KeysetPage]:
    query, page = read(db, pairs, viewer)
    if start is not None:
        page = start
    pages = [page]
    while True:
        cursor = page.next_cursor if direction == "next" else page.prev_cursor
        if cursor is None:
            return pages
        assert len(pages) <= 30, "the walk does not end"
        token = CODEC.encode(query.scope, query.sort, cursor)
        page = read(db, [*pairs, ("cursor", token)], viewer)[1]
        pages.append(page)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(RUNS, QUERIES)
def test_walks_return_the_models_list(
    db: Database, specs: list[tuple[int, int, RunStatus, str]], q: dict[str, Any]
) -> None:
    with db.write() as conn:
        old = [
            row[0]
            for row in conn.execute(
                automation_runs.select().with_only_columns(automation_runs.c.id)
            )
        ]
        delete_runs(conn, old)
        admin = users.ensure_user(conn, "admin", True, T0)
        alice = users.ensure_user(conn, "alice", False, T0)
        bob = users.ensure_user(conn, "bob", False, T0)
        carol = users.ensure_user(conn, "carol", False, T0)
        owned = [alice.id, alice.id, bob.id, bob.id]
        ids = [automations.create_automation(conn, owner, T0) for owner in owned]
        made = [
            make_run(conn, ids[a], T0 + dt * SECOND, outcome=OUTCOMES[s], trigger=t)
            for a, dt, s, t in specs
        ]
    triggers = {run.id: t for run, (_a, _dt, _s, t) in zip(made, specs, strict=True)}
    viewer = {"admin": admin, "alice": alice, "carol": carol}[q["viewer"]]
    pairs = [("per_page", str(q["per_page"]))]
    if q["statuses"]:
        pairs.append(("filter[status]", ",".join(s.value for s in q["statuses"])))
    if q["triggers"]:
        pairs.append(("filter[trigger]", ",".join(q["triggers"])))
    if q["automation"] is not None:
        pairs.append(("filter[automation_id]", str(ids[q["automation"]])))
    ranges = {op: dt for op, dt in (r for r in q["ranges"] if r is not None)}
    for op, dt in ranges.items():
        pairs.append((f"filter_{op}[created_at]", to_rfc3339(T0 + dt * SECOND) or ""))
    if q["sort"] is not None:
        pairs.append(("sort_by[created_at]", q["sort"]))
    desc = q["sort"] != "asc"

    def matches(run: AutomationRun) -> bool:
        return (
            (viewer.is_admin or owned[ids.index(run.automation_id)] == viewer.id)
            and (not q["statuses"] or run.status in q["statuses"])
            and (not q["triggers"] or triggers[run.id] in q["triggers"])
            and (q["automation"] is None or run.automation_id == ids[q["automation"]])
            and all(COMPARE[op](run.created_at, T0 + dt * SECOND) for op, dt in ranges.items())
        )

    expected = sorted(
        (run for run in made if matches(run)),
        key=lambda run: (run.created_at, run.id),
        reverse=desc,
    )
    forward = walk(db, pairs, viewer, "next", None)
    walked = [run for page in forward for run in records(page)]
    assert [run.id for run in walked] == [run.id for run in expected]
    assert walked == expected
    assert forward[0].prev_cursor is None
    assert forward[-1].next_cursor is None
    assert all(len(page.rows) == q["per_page"] for page in forward[:-1])
    backward = walk(db, pairs, viewer, "prev", forward[-1])
    assert backward[::-1] == forward
