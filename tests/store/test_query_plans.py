"""Every list query and the find by id read one index range, with no full scan and no
sort, on SQLite and PostgreSQL: the plans of the exact SQL the store emits (see
query_plans.py and docs/indexes.md)."""

from __future__ import annotations

from query_plans import (
    COMBINATIONS,
    build,
    explain_postgresql,
    explain_sqlite,
    find_statements,
    intended_index,
    list_statements,
    postgresql_problems,
    sqlite_problems,
)
from sqlalchemy.engine import Connection

from conveyor.store.database import Database

# PostgreSQL picks by cost between an index read in order, a bitmap scan plus a sort
# of the few rows a page needs, and a sequential scan; on a test-sized table the
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


def prepare(conn: Connection, backend: str) -> None:
    if backend == "postgresql":
        for name, value in PG_SETTINGS.items():
            conn.exec_driver_sql(f"SET LOCAL {name} = {value}")


def problems_of_every_list_query(
    conn: Connection, backend: str, automation: int
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for filtered, field, direction in COMBINATIONS:
        for statement in list_statements(conn, automation, filtered, field, direction):
            if backend == "sqlite":
                lines = explain_sqlite(conn, statement)
                found = sqlite_problems(lines, statement, filtered, field)
            else:
                plan = explain_postgresql(conn, statement)[1]
                found = postgresql_problems(plan, statement, intended_index(filtered, field))
            if found:
                query = f"{'status filter, ' if filtered else ''}{field} {direction}"
                problems[f"{query}, {statement.purpose}, probe={statement.probe}"] = found
    return problems


def test_every_list_query_reads_its_index_in_order(db: Database, backend: str) -> None:
    automation, _ = build(db, listed=48, others=200, per_other=10)
    with db.read() as conn:
        prepare(conn, backend)
        assert problems_of_every_list_query(conn, backend, automation) == {}
    if backend == "sqlite":
        # Conveyor never runs ANALYZE on SQLite, but the plans hold if someone does.
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
        with db.read() as conn:
            assert problems_of_every_list_query(conn, backend, automation) == {}


def test_find_by_id_is_a_primary_key_lookup(db: Database, backend: str) -> None:
    _, owner = build(db, listed=5, others=1, per_other=5)
    with db.read() as conn:
        prepare(conn, backend)
        run_id = conn.exec_driver_sql("SELECT max(id) FROM automation_runs").scalar_one()
        statements = find_statements(conn, run_id, owner)
        assert [s.purpose for s in statements] == ["find by id (admin)", "find by id"]
        if backend == "sqlite":
            plans = [explain_sqlite(conn, statement) for statement in statements]
            assert plans[0] == ["SEARCH automation_runs USING INTEGER PRIMARY KEY (rowid=?)"]
            assert plans[1][0] == "SEARCH automation_runs USING INTEGER PRIMARY KEY (rowid=?)"
            # The owner check is one lookup too: (user_id, rowid) in the user_id index.
            assert plans[1][1:] == [
                "SEARCH automations USING COVERING INDEX ix_automations_user_id "
                "(user_id=? AND rowid=?)"
            ]
        else:
            for statement in statements:
                plan = explain_postgresql(conn, statement)[1]
                assert postgresql_problems(plan, statement, "automation_runs_pkey") == []
            # The owner check: the automation by its primary key, then its user_id compared.
            owner_plan = explain_postgresql(conn, statements[1])[1]
            assert (
                postgresql_problems(
                    owner_plan, statements[1], "automations_pkey", "automations", filter_ok=True
                )
                == []
            )
