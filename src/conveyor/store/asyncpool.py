"""PostgreSQL connections for reads run on the event loop (psycopg's asyncio driver).

The API's run list is read on the server's event loop on PostgreSQL, without a
trip through the thread pool and SQLAlchemy's pool (conveyor.api.steps). This
is its pool: up to `size` connections per process, in autocommit (each of the
list's statements reads its own snapshot, as `Database.reads()` does), made on
first use and kept. A connection is checked as `Database` checks its own when
it leaves the pool (`store.database._check_alive`): pinged only when its socket
shows that its server process ended. A connection that failed a statement, or
whose request was cancelled mid-statement, is closed rather than reused.

A pool belongs to the event loop that uses it; an app served again on another
loop (tests do) starts a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from conveyor.store.database import driver_conninfo, socket_readable

AsyncConnection = psycopg.AsyncConnection[Any]


class AsyncReadPool:
    def __init__(self, database_url: str, size: int = 8) -> None:
        self._conninfo = driver_conninfo(database_url)
        self._size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AsyncConnection] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one request's statements, waiting while all are in use."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._slots, self._idle = loop, asyncio.Semaphore(self._size), []
        idle = self._idle
        async with self._slots:
            conn = await self._take()
            try:
                yield conn
            except (psycopg.Error, asyncio.CancelledError):
                await conn.close()
                raise
            except BaseException:  # the request's own error, between statements
                idle.append(conn)
                raise
            idle.append(conn)

    async def _take(self) -> AsyncConnection:
        while self._idle:
            conn = self._idle.pop()
            if await _alive(conn):
                return conn
            await conn.close()
        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    async def close(self) -> None:
        """Close the idle connections (at the app's shutdown)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    @property
    def idle(self) -> int:
        return len(self._idle)


async def _alive(conn: AsyncConnection) -> bool:
    if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    if not socket_readable(conn.fileno()):
        return True
    try:
        await conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True
