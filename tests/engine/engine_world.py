"""The engine tests' world: a storage root on disk, a user, automations and runs, read-backs.

Automations and runs are created through the store's own functions; workers
are the real ones, stepped in-process with a ManualClock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.domain.permissions import Level
from conveyor.domain.runs import AutomationRun
from conveyor.engine.context import EngineContext
from conveyor.engine.hooks import Hooks
from conveyor.engine.storage import Storage
from conveyor.engine.worker import Worker
from conveyor.store import automations, engine, permissions, runs, users
from conveyor.store.database import Database

# 2024-02-16T23:30:00Z: late enough that Tokyo is already on the 17th.
RUNTIME = 1_708_126_200_000_000


@dataclass
class RunView:
    """A run as a test checks it: the lifecycle fields, engine bookkeeping, log and operations."""

    run: AutomationRun
    lease: engine.LeaseInfo
    log: list[str]
    levels: list[str]
    operations: list[tuple[int, str, str | None, str | None, str]]


class World:
    """The storage root, a user, and shortcuts to create automations and runs and read them back."""

    def __init__(self, db: Database, root: Path, clock: ManualClock, settings: Settings) -> None:
        self.db = db
        self.root = root
        self.clock = clock
        self.settings = settings
        with db.write() as conn:
            self.user_id = users.ensure_user(conn, "alice", False, clock.now()).id
            # Everything, as every user had before folder permissions existed.
            permissions.ensure_grant(conn, self.user_id, "", Level.FULL, clock.now())

    def engine(self, hooks: Hooks | None = None, **overrides: Any) -> EngineContext:
        settings = replace(self.settings, **overrides) if overrides else self.settings
        return EngineContext(
            db=self.db,
            settings=settings,
            clock=self.clock,
            storage=Storage(self.root),
            hooks=hooks or Hooks(),
        )

    def worker(
        self,
        name: str = "w1",
        hooks: Hooks | None = None,
        *,
        hand_off: bool = False,
        **overrides: Any,
    ) -> Worker:
        """A worker; by default every plan it commits queues its run for execution (as a
        large plan does), so a test can act between planning and execution and let any
        worker execute. `hand_off=True`: as `conveyor serve` and `conveyor worker` run."""
        return Worker(self.engine(hooks, **overrides), name, hand_off=hand_off)

    def automation(self, kind: str, **values: Any) -> int:
        if "destinations" in values:
            values["destinations"] = tuple(values["destinations"])
        with self.db.write() as conn:
            return automations.create_automation(
                conn,
                self.user_id,
                self.clock.now(),
                name=f"{kind} test",
                automation=kind,
                trigger="manual",
                **values,
            )

    def run(self, automation_id: int, runtime: int | None = RUNTIME) -> int:
        with self.db.write() as conn:
            return runs.create_run(conn, automation_id, self.clock.now(), runtime).id

    def write(self, relative: str, data: bytes | str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def files(self, folder: str = "") -> dict[str, bytes]:
        """Every file under `folder` (relative to the root) with its bytes; links shown as such."""
        top = self.root / folder
        found: dict[str, bytes] = {}
        for path in sorted(top.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_symlink():
                found[key] = b"-> " + str(path.readlink()).encode()
            elif path.is_file():
                found[key] = path.read_bytes()
        return found

    def folders(self, folder: str = "") -> list[str]:
        top = self.root / folder
        return sorted(p.relative_to(self.root).as_posix() for p in top.rglob("*") if p.is_dir())

    def view(self, run_id: int) -> RunView:
        from sqlalchemy import select

        from conveyor.store.schema import run_operations as ops_t

        with self.db.read() as conn:
            run = runs.get_run(conn, run_id)
            lease = engine.lease_info(conn, run_id)
            messages = runs.read_messages(conn, run_id)
            operations = [
                tuple(row)
                for row in conn.execute(
                    select(
                        ops_t.c.seq,
                        ops_t.c.kind,
                        ops_t.c.source,
                        ops_t.c.destination,
                        ops_t.c.state,
                    )
                    .where(ops_t.c.run_id == run_id)
                    .order_by(ops_t.c.seq)
                )
            ]
        assert run is not None and lease is not None
        return RunView(
            run, lease, [m.message for m in messages], [m.level for m in messages], operations
        )  # type: ignore[arg-type]
