"""Helpers for store tests: many runs built at once in the caller's transaction through
the store's lifecycle functions (never raw SQL), and list pages read as the API reads them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from conveyor.domain.listing import Cursor, CursorCodec, RunListQuery, parse_run_list_query
from conveyor.domain.runs import AutomationRun, RunStatus
from conveyor.store import automations, runs, users
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.store.runs import Page
from conveyor.store.schema import automation_runs
from conveyor.testing.seed import make_run

T0 = 1_700_000_000_000_000
# The (successful, failed) operations that finish a run with each status; None: still running.
OUTCOMES: dict[RunStatus, tuple[int, int] | None] = {
    RunStatus.RUNNING: None,
    RunStatus.SUCCESS: (1, 0),
    RunStatus.FAILURE: (0, 1),
    RunStatus.PARTIAL_FAILURE: (2, 1),
}
# The statuses these helpers can make (the run-control statuses need cancel and queueing).
MADE_STATUSES = list(OUTCOMES)


def new_automations(conn: Connection, count: int, owner: str = "owner") -> list[int]:
    user = users.ensure_user(conn, owner, False, T0)
    return [automations.create_automation(conn, user.id, T0) for _ in range(count)]


def make_runs(conn: Connection, specs: Iterable[tuple[int, int, RunStatus]]) -> list[AutomationRun]:
    """One run per (automation_id, created_at, status), created in that order."""
    return [
        make_run(conn, automation_id, created_at, outcome=OUTCOMES[status])
        for automation_id, created_at, status in specs
    ]


CODEC = CursorCodec(b"store tests")


def read_page(db: Database, pairs: list[tuple[str, str]]) -> tuple[RunListQuery, Page]:
    """Parse a list query as the API does and read its page in one read transaction."""
    query = parse_run_list_query(pairs, CODEC)
    with db.read() as conn:
        return query, run_steps(conn, runs.list_runs(conn.dialect, query))


def follow(
    pairs: list[tuple[str, str]], query: RunListQuery, cursor: Cursor
) -> list[tuple[str, str]]:
    """The same query with `cursor`, signed and parsed back as a client would send it."""
    return [*pairs, ("cursor", CODEC.encode(query.scope, query.sort, cursor))]


def records(page: Page) -> list[AutomationRun]:
    return [runs.run_from_row(row) for row in page.rows]


def delete_runs(conn: Connection, ids: list[int]) -> None:
    """The runs and the rows that reference them, whatever their stage."""
    for table in automation_runs.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table is automation_runs:
                conn.execute(delete(table).where(key.parent.in_(ids)))
    conn.execute(delete(automation_runs).where(automation_runs.c.id.in_(ids)))
