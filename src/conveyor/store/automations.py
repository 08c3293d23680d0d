"""Automations as far as runs need them: existence, ownership and visibility.

The full Files.com Automation resource (types, triggers, schedules) extends
this module; runs only need to know who owns an automation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from conveyor.store.schema import automations
from conveyor.store.users import User


@dataclass(frozen=True, slots=True)
class AutomationOwner:
    id: int
    user_id: int
    disabled: bool
    deleted: bool


def create_automation(
    conn: Connection,
    user_id: int,
    now: int,
    name: str = "",
    automation: str = "create_folder",
    trigger: str = "manual",
) -> int:
    return int(
        conn.execute(
            automations.insert()
            .values(
                user_id=user_id,
                name=name,
                automation=automation,
                trigger=trigger,
                disabled=False,
                deleted=False,
                created_at=now,
                last_modified_at=now,
            )
            .returning(automations.c.id)
        ).scalar_one()
    )


def visible_automation(conn: Connection, automation_id: int, user: User) -> AutomationOwner | None:
    """The automation if it exists and `user` may see it (admins see all)."""
    row = conn.execute(
        select(
            automations.c.id, automations.c.user_id, automations.c.disabled, automations.c.deleted
        ).where(automations.c.id == automation_id)
    ).first()
    if row is None or not (user.is_admin or row.user_id == user.id):
        return None
    return AutomationOwner(row.id, row.user_id, bool(row.disabled), bool(row.deleted))
