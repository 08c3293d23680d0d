"""Worker heartbeats: each engine process writes its row every few seconds.

Run leases only show workers that hold a run; this table shows idle ones
too, which is what /readyz and the `conveyor_workers_alive` gauge need.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from conveyor.store.schema import workers as workers_t


def beat(conn: Connection, worker_id: str, kind: str, hostname: str, pid: int, now: int) -> None:
    """Record that `worker_id` is alive now (its row is created on the first beat)."""
    result = conn.execute(
        update(workers_t).where(workers_t.c.id == worker_id).values(heartbeat_at=now)
    )
    if result.rowcount == 0:
        conn.execute(
            workers_t.insert().values(
                id=worker_id,
                kind=kind,
                hostname=hostname,
                pid=pid,
                started_at=now,
                heartbeat_at=now,
            )
        )


def alive(conn: Connection, since: int) -> int:
    """How many workers beat at or after `since`."""
    return int(
        conn.execute(
            select(func.count()).select_from(workers_t).where(workers_t.c.heartbeat_at >= since)
        ).scalar_one()
    )


def forget(conn: Connection, worker_id: str) -> None:
    """A worker stopping cleanly removes its row."""
    conn.execute(delete(workers_t).where(workers_t.c.id == worker_id))


def forget_dead(conn: Connection, before: int) -> int:
    """Remove rows of workers silent since before `before` (killed, not stopped)."""
    return int(conn.execute(delete(workers_t).where(workers_t.c.heartbeat_at < before)).rowcount)
