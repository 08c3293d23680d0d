"""Running a request's steps (`store.prepared.Steps`) on the database, one runner per driver.

The run list and the run find are written once, as steps: authentication and
the rate-limit token (`conveyor.api.auth`), visibility, the page or the run,
and the encoding of the answer. `run_request_steps` runs them:

- on SQLite, in the thread pool, on a connection of `Database.reads()`
  (`store.prepared.run_steps`, through SQLAlchemy's `exec_driver_sql`);
- on PostgreSQL, on the event loop, on a connection of the process's asyncio
  pool (psycopg's async driver, `AppContext.read_pool`), in autocommit: each
  statement its own snapshot, as on `Database.reads()`. This saves the
  hand-over to a worker thread and back and SQLAlchemy's per-statement work
  (docs/architecture.md, "API: the request path", has the measurement).

Both run the same generator, so tests on SQLite exercise the logic production
runs on PostgreSQL; only the driver differs.

The pool hands a connection out without checking it first (a round trip per
request). When the first statement run on it finds it lost (its server process
ended: a restart, `pg_terminate_backend`), the others pooled with it most likely
went too: the pool checks its idle connections at once (`pool.check()`, which
replaces the broken ones) and that statement, a read that cannot have run, runs
again on another connection. A failure after that, or of a write, is answered as
it is (an outage is a 503: `conveyor.store.outage`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from starlette.concurrency import run_in_threadpool

from conveyor.context import AppContext
from conveyor.store.database import Database
from conveyor.store.prepared import Done, Statement, Steps, advance, run_steps

T = TypeVar("T")


async def run_request_steps(context: AppContext, steps: Steps[T]) -> T:
    """Run `steps` to their result on the app's database (see the module's doc)."""
    pool = context.read_pool
    if pool is None:
        return await run_in_threadpool(_on_connection, context.db, steps)
    step = advance(steps, None)
    if isinstance(step, Statement):
        async with pool.connection() as conn:
            try:
                rows = await _rows(conn, step)
            except psycopg.OperationalError:
                if step.write or not conn.broken:
                    raise
                rows = None
            if rows is not None:
                return await _finish(conn, steps, advance(steps, rows))
        await pool.check()  # the lost connection went back (and was discarded) first
        async with pool.connection() as conn:
            return await _finish(conn, steps, step)
    return step.value


async def _finish(
    conn: psycopg.AsyncConnection[Any], steps: Steps[T], step: Statement | Done[T]
) -> T:
    """Run `step` and the statements after it on `conn`, to the steps' result."""
    while isinstance(step, Statement):
        step = advance(steps, await _rows(conn, step))
    return step.value


async def _rows(conn: psycopg.AsyncConnection[Any], step: Statement) -> list[Any]:
    cursor = await conn.execute(step.sql.sql, step.sql.parameters(step.values))
    return await cursor.fetchall()


def _on_connection(db: Database, steps: Steps[T]) -> T:
    with db.reads() as conn:
        return run_steps(conn, steps)
