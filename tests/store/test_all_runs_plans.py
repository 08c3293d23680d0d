"""Every all-runs query reads its index in order, with no sort and no full scan of
another index, on SQLite and PostgreSQL, as an admin and as an automation's owner
(all_runs_plans.py; docs/indexes.md); and as a user owning two automations,
whose runs are read through those automations' own ranges."""

from __future__ import annotations

from all_runs_plans import build_mixed, few_owner, problems_of_every_query
from query_plans import prepare

from conveyor.store.database import Database


def test_every_all_runs_query_reads_its_index_in_order(db: Database, backend: str) -> None:
    automation, owner = build_mixed(db, listed=48, others=60, per_other=10)
    few = few_owner(db, automation)
    with db.read() as conn:
        prepare(conn)
        found = problems_of_every_query(conn, backend, automation, owner, few)
        assert found == {}
