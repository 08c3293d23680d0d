"""The trigger tests' world: a user, automations made as the API makes them, runs read back.

Automations go through `validate_fields` and the automation store, exactly
as the API creates and updates them, so `last_modified_at` moves the way a
real edit moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from conveyor.clock import Clock
from conveyor.domain.automations import validate_fields
from conveyor.domain.permissions import Level
from conveyor.store import automations, permissions, users
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, run_inputs, run_messages


@dataclass(frozen=True)
class RunSeen:
    id: int
    automation_id: int
    runtime: int
    created_at: int
    trigger: str
    schedule_slot: int | None
    run_stage: str
    input_kind: str | None
    payload: dict[str, Any] | None
    log: list[str]

    @property
    def files(self) -> list[tuple[str, str]]:
        """(action, path) of a file-event run, in the order stored."""
        assert self.payload is not None
        return [(entry["action"], entry["path"]) for entry in self.payload["files"]]


class World:
    def __init__(self, db: Database, clock: Clock, root: Path | None = None) -> None:
        self.db = db
        self.clock = clock
        self.root = root
        with db.write() as conn:
            self.user_id = users.ensure_user(conn, "alice", False, clock.now()).id
            # Everything, as every user had before folder permissions existed.
            permissions.ensure_grant(conn, self.user_id, "", Level.FULL, clock.now())

    def automation(self, **body: Any) -> int:
        body.setdefault("automation", "create_folder")
        if body["automation"] == "create_folder":
            body.setdefault("destinations", ["made"])
        values = validate_fields(body)
        with self.db.write() as conn:
            return automations.create_automation(conn, self.user_id, self.clock.now(), **values)

    def update(self, automation_id: int, **body: Any) -> None:
        with self.db.write() as conn:
            current = automations.get_automation(conn, automation_id)
            assert current is not None
            values = validate_fields(body, current)
            automations.update_automation(conn, current, values, self.clock.now())

    def delete(self, automation_id: int) -> None:
        with self.db.write() as conn:
            automations.delete_automation(conn, automation_id, self.clock.now())

    def runs(self, automation_id: int | None = None) -> list[RunSeen]:
        t = automation_runs.c
        query = (
            select(
                t.id,
                t.automation_id,
                t.runtime,
                t.created_at,
                t.trigger,
                t.schedule_slot,
                t.run_stage,
                run_inputs.c.kind,
                run_inputs.c.payload,
            )
            .select_from(automation_runs.outerjoin(run_inputs, run_inputs.c.run_id == t.id))
            .order_by(t.id)
        )
        if automation_id is not None:
            query = query.where(t.automation_id == automation_id)
        seen = []
        with self.db.read() as conn:
            rows = list(conn.execute(query))
            for row in rows:
                log = [
                    r[0]
                    for r in conn.execute(
                        select(run_messages.c.message)
                        .where(run_messages.c.run_id == row.id)
                        .order_by(run_messages.c.id)
                    )
                ]
                payload = orjson.loads(row.payload) if row.payload is not None else None
                seen.append(
                    RunSeen(
                        row.id,
                        row.automation_id,
                        row.runtime,
                        row.created_at,
                        row.trigger,
                        row.schedule_slot,
                        row.run_stage,
                        row.kind,
                        payload,
                        log,
                    )
                )
        return seen

    def write(self, relative: str, data: str | bytes) -> Path:
        assert self.root is not None
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path
