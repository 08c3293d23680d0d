"""A request's database work written once, run on a thread or on the event loop.

A handler written as a reading generator (`store.prepared.Read`) yields the
statements it needs run and is sent their rows back; the API key's admission
(`conveyor.api.auth.admit_steps`) is part of it, including a rate-limit bucket
kept in the database, taken with one statement on the request's connection.

`store.prepared.run_reads` runs such a handler on a SQLAlchemy connection, in
the thread pool, as every database is read. On PostgreSQL, `run_steps_async`
runs it on the event loop over psycopg's asyncio driver (connections from
psycopg_pool: `store.database.async_read_pool`), which saves the hand-over to a
worker thread and back and SQLAlchemy's pool (with the change to autocommit
connections made alongside it, server CPU per PostgreSQL page of 1,000 runs went
from 2.05 to 1.78 ms in the quick runs of docs/benchmarks.md). The run
list and the run find are written this way.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from fastapi import Request
from sqlalchemy.engine import Dialect

from conveyor.api.auth import MAX_KEY_LENGTH, admit_steps, admitted, api_key, remember
from conveyor.store.database import AsyncReadPool
from conveyor.store.prepared import Reads
from conveyor.store.users import User, user_for_key_reads

T = TypeVar("T")


def dialect_of(request: Request) -> Dialect:
    """The dialect the app's statements are compiled for."""
    dialect: Dialect = request.app.state.ctx.db.engine.dialect
    return dialect


def authenticate_steps(request: Request) -> Reads[User]:
    """`conveyor.api.auth.authenticate` as steps: the API key's user, admitted."""
    known = admitted(request)
    if known is not None:
        return known
    key = api_key(request)
    found = (
        (yield from user_for_key_reads(dialect_of(request), key))
        if len(key) <= MAX_KEY_LENGTH
        else None
    )
    return remember(request, (yield from admit_steps(request, key, found)))


async def run_steps_async(pool: AsyncReadPool, steps: Reads[T]) -> T:
    """`store.prepared.run_reads` on the event loop: the same loop as its `drive`,
    awaiting each statement on a connection of `pool`."""
    async with pool.connection() as conn:
        rows: Any = None
        while True:
            try:
                read = steps.send(rows)
            except StopIteration as done:
                return cast(T, done.value)
            cursor = await conn.execute(read.sql.sql, read.sql.parameters(read.values))
            rows = await cursor.fetchall()
