"""A request's database work written once, run on a thread or on the event loop.

A handler written as a generator yields what it needs done and is sent the
result back:

- `store.prepared.Read` (a compiled statement and its values): the rows;
- `Admit` (the API key and the user found for it): the admitted user, once the
  key's rate limit allows the request (`conveyor.api.auth.admit`).

`run_steps` runs such a handler on a SQLAlchemy connection, in the thread pool,
as every database is read. On PostgreSQL, `run_steps_async` runs it on the
event loop over psycopg's asyncio driver (`store.asyncpool`), which saves the
hand-over to a worker thread and back and SQLAlchemy's pool: together about a
fifth of a list request's CPU (docs/benchmarks.md). The run list and the run
find are written this way. Only the rate limit kept in
the database (`CONVEYOR_RATE_LIMIT_STORE=database`, PostgreSQL's default) is
still taken on a worker thread, since it is a write through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi import Request
from sqlalchemy.engine import Connection, Dialect
from starlette.concurrency import run_in_threadpool

from conveyor.api import ratelimit
from conveyor.api.auth import MAX_KEY_LENGTH, admit, api_key
from conveyor.store.asyncpool import AsyncReadPool
from conveyor.store.prepared import Read, drive
from conveyor.store.users import User, user_for_key_reads

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Admit:
    key: str
    user: User | None


Steps = Generator[Read | Admit, Any, T]


def dialect_of(request: Request) -> Dialect:
    """The dialect the app's statements are compiled for."""
    dialect: Dialect = request.app.state.ctx.db.engine.dialect
    return dialect


def authenticate_steps(request: Request) -> Steps[User]:
    """`conveyor.api.auth.authenticate` as steps: the API key's user, admitted."""
    key = api_key(request)
    found = (
        (yield from user_for_key_reads(dialect_of(request), key))
        if len(key) <= MAX_KEY_LENGTH
        else None
    )
    user: User = yield Admit(key, found)
    return user


def run_steps(conn: Connection, request: Request, steps: Steps[T]) -> T:
    def perform(step: Read | Admit) -> Any:
        if isinstance(step, Read):
            return step.sql.rows(conn, step.values)
        return admit(request, step.key, step.user)

    return drive(steps, perform)


async def run_steps_async(pool: AsyncReadPool, request: Request, steps: Steps[T]) -> T:
    """`run_steps` on the event loop: the same loop as `store.prepared.drive`, awaiting."""
    limiter_writes = isinstance(request.app.state.rate_limiter, ratelimit.DatabaseLimiter)
    async with pool.connection() as conn:
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                return cast(T, done.value)
            if isinstance(step, Read):
                cursor = await conn.execute(step.sql.sql, step.sql.parameters(step.values))
                reply = await cursor.fetchall()
            elif limiter_writes:
                reply = await run_in_threadpool(admit, request, step.key, step.user)
            else:
                reply = admit(request, step.key, step.user)
