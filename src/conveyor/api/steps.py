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
"""

from __future__ import annotations

from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from conveyor.context import AppContext
from conveyor.store.database import Database
from conveyor.store.prepared import Statement, Steps, advance, run_steps

T = TypeVar("T")


async def run_request_steps(context: AppContext, steps: Steps[T]) -> T:
    """Run `steps` to their result on the app's database (see the module's doc)."""
    pool = context.read_pool
    if pool is None:
        return await run_in_threadpool(_on_connection, context.db, steps)
    async with pool.connection() as conn:
        step = advance(steps, None)
        while isinstance(step, Statement):
            cursor = await conn.execute(step.sql.sql, step.sql.parameters(step.values))
            step = advance(steps, await cursor.fetchall())
        return step.value


def _on_connection(db: Database, steps: Steps[T]) -> T:
    with db.reads() as conn:
        return run_steps(conn, steps)
