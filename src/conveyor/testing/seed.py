"""Create users, keys, automations and runs through the store's own functions.

Tests and benchmarks use these instead of raw SQL, so they exercise the same
lifecycle code the engine uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from conveyor.clock import Clock, SystemClock
from conveyor.domain.permissions import Level
from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.store import automations, permissions, runs, users
from conveyor.store.database import Database


@dataclass
class Account:
    user: users.User
    key: str


class Seeder:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def account(self, name: str, admin: bool = False, root: Level | None = Level.FULL) -> Account:
        """A user and an API key. A non-admin is granted `root` on the whole storage
        (recursive; None: no permission at all), as an upgraded installation's users are."""
        with self.db.write() as conn:
            now = self.clock.now()
            user = users.ensure_user(conn, name, admin, now)
            if not admin and root is not None:
                permissions.ensure_grant(conn, user.id, "", root, now)
            return Account(user, users.create_api_key(conn, user.id, now))

    def automation(self, owner: Account, name: str = "") -> int:
        with self.db.write() as conn:
            return automations.create_automation(conn, owner.user.id, self.clock.now(), name=name)

    def run(
        self,
        automation_id: int,
        *,
        created_at: int | None = None,
        outcome: tuple[int, int] | None = None,
        stage: RunStage | None = None,
        messages: list[str] | None = None,
    ) -> AutomationRun:
        """A run, moved through the lifecycle: to `stage`, or finished with
        `outcome` = (successful, failed) operations, logging `messages`."""
        with self.db.write() as conn:
            now = created_at if created_at is not None else self.clock.now()
            return make_run(
                conn, automation_id, now, outcome=outcome, stage=stage, messages=messages
            )


def make_run(
    conn: Connection,
    automation_id: int,
    now: int,
    *,
    outcome: tuple[int, int] | None = None,
    stage: RunStage | None = None,
    messages: list[str] | None = None,
    trigger: str = "manual",
) -> AutomationRun:
    """`Seeder.run` in the caller's transaction, for building many runs at once
    (started by `trigger`)."""
    run = runs.create_run(conn, automation_id, now, trigger=trigger)
    for text in messages or []:
        runs.append_message(conn, run.id, now, text)
    target = RunStage.FINISHED if outcome is not None else stage
    if target is None or target is RunStage.QUEUED_FOR_PLANNING:
        return run
    for step in (RunStage.PLANNING, RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING):
        run = runs.advance_stage(conn, run.id, step)
        if step is target:
            return run
    ok, failed = outcome or (0, 0)
    for i in range(ok + failed):
        runs.record_operation(conn, run.id, i < ok, now)
    return runs.finish_run(conn, run.id, now)
