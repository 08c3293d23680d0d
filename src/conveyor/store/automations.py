"""Automations in the database: create, read, update, soft-delete, list, visibility.

List-valued Files.com fields are stored as JSON text. Deleting an automation
marks it deleted (it disappears from the Automations API) and keeps its runs
readable, as run history should outlive the automation that made it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import Boolean, ColumnElement, bindparam, select, update
from sqlalchemy.engine import Connection, Dialect

from conveyor.domain.automations import (
    COSMETIC_FIELDS,
    Automation,
    AutomationType,
    Trigger,
)
from conveyor.domain.errors import NotFound
from conveyor.domain.listing import Cursor, RangeFilter, Sort
from conveyor.store.keyset import KeysetPage, keyset_steps, range_conditions, range_shape
from conveyor.store.prepared import Prepared, Statement, Steps
from conveyor.store.schema import automations
from conveyor.store.users import User

_JSON_FIELDS = frozenset(
    {
        "destinations",
        "schedule_days_of_week",
        "schedule_times_of_day",
        "trigger_actions",
        "recurring_days",
    }
)
_COLUMNS = [f.name for f in fields(Automation) if f.name != "extra"]
SELECT_COLUMNS = [automations.c[name] for name in _COLUMNS]


def _to_db(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in _JSON_FIELDS:
            out[name] = orjson.dumps(list(value or ())).decode()
        elif value is None and name not in (
            "interval",
            "recurring_day",
            "webhook_secret",
            "value_limit",
            "retry_on_failure_number_of_attempts",
            "retry_on_failure_interval_in_minutes",
        ):
            out[name] = False if name in ("disabled", "always_serialize_jobs") else ""
        else:
            out[name] = value
    return out


def automation_from_row(row: Any) -> Automation:
    data = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON_FIELDS:
        raw = data[name]
        data[name] = tuple(orjson.loads(raw)) if raw else ()
    for name in (
        "disabled",
        "deleted",
        "overwrite_files",
        "always_overwrite_size_matching_files",
        "flatten_destination_structure",
        "always_serialize_jobs",
    ):
        data[name] = bool(data[name])
    data["automation"] = AutomationType(data["automation"])
    data["trigger"] = Trigger(data["trigger"])
    return Automation(**data)


def create_automation(
    conn: Connection,
    user_id: int,
    now: int,
    name: str = "",
    automation: str = "create_folder",
    trigger: str = "manual",
    **values: Any,
) -> int:
    """Insert an automation from validated values (see domain.automations.validate_fields)."""
    row = _to_db({"name": name, "automation": automation, "trigger": trigger, **values})
    if row.get("trigger") == Trigger.WEBHOOK.value:
        row["webhook_secret"] = secrets.token_hex(24)
    return int(
        conn.execute(
            automations.insert()
            .values(
                user_id=user_id,
                disabled=row.pop("disabled", False),
                deleted=False,
                created_at=now,
                last_modified_at=now,
                **row,
            )
            .returning(automations.c.id)
        ).scalar_one()
    )


def get_automation(conn: Connection, automation_id: int) -> Automation | None:
    """The automation, deleted or not; None if it never existed."""
    row = conn.execute(_GET_AUTOMATION, {"automation_id": automation_id}).first()
    return None if row is None else automation_from_row(row)


# Built once: every claim of a run reads its automation.
_GET_AUTOMATION = select(*SELECT_COLUMNS).where(
    automations.c.id == bindparam("automation_id", type_=automations.c.id.type)
)


def update_automation(
    conn: Connection, current: Automation, values: dict[str, Any], now: int
) -> Automation:
    """Apply validated values. last_modified_at moves unless only name/description changed."""
    changed = {k: v for k, v in values.items() if getattr(current, k, None) != v}
    row = _to_db(changed)
    if changed and not set(changed) <= COSMETIC_FIELDS:
        row["last_modified_at"] = now
    if "trigger" in changed:
        # A webhook URL lives exactly as long as the webhook trigger: switching
        # away revokes it, and switching back issues a new one.
        is_webhook = changed["trigger"] == Trigger.WEBHOOK.value
        row["webhook_secret"] = secrets.token_hex(24) if is_webhook else None
    if row:
        conn.execute(update(automations).where(automations.c.id == current.id).values(**row))
    updated = get_automation(conn, current.id)
    assert updated is not None
    return updated


def delete_automation(conn: Connection, automation_id: int, now: int) -> None:
    conn.execute(
        update(automations)
        .where(automations.c.id == automation_id)
        .values(deleted=True, webhook_secret=None, last_modified_at=now)
    )


AUTOMATION_SORT_FIELDS = ("name", "automation", "last_modified_at", "disabled")
AUTOMATION_FILTER_FIELDS = ("disabled", "automation")
AUTOMATION_RANGE_FIELDS = ("last_modified_at",)


@dataclass(frozen=True, slots=True)
class AutomationListQuery:
    per_page: int
    sort: Sort
    disabled: bool | None
    automation: str | None
    cursor: Cursor | None
    ranges: tuple[RangeFilter, ...] = ()  # on last_modified_at

    def scope(self, user: User) -> list[Any]:
        scope = ["automations", None if user.is_admin else user.id, self.disabled, self.automation]
        # Only with range filters, so cursors of lists without them keep their form.
        return [*scope, [r.wire for r in self.ranges]] if self.ranges else scope


def list_automations(dialect: Dialect, user: User, query: AutomationListQuery) -> Steps[KeysetPage]:
    """One keyset page of the automations `user` may see (not deleted), as steps."""
    params: dict[str, Any] = {}
    conditions: list[ColumnElement[bool]] = [automations.c.deleted.is_(False)]
    if not user.is_admin:
        conditions.append(automations.c.user_id == _USER_ID)
        params["user_id"] = user.id
    if query.disabled is not None:
        conditions.append(automations.c.disabled.is_(query.disabled))
    if query.automation is not None:
        conditions.append(automations.c.automation == _AUTOMATION)
        params["automation"] = query.automation
    conditions += range_conditions(automations.c, query.ranges, params)
    return (
        yield from keyset_steps(
            dialect,
            columns=SELECT_COLUMNS,
            table_columns=automations.c,
            read_field=query.sort.field,
            descending=query.sort.descending,
            key_index=_COLUMNS.index(query.sort.field) if query.sort.field else None,
            scope=conditions,
            cursor=query.cursor,
            per_page=query.per_page,
            params=params,
            cache_key=(
                "automations",
                user.is_admin,
                query.disabled,
                query.automation is not None,
                range_shape(query.ranges),
            ),
            convert=_booleans,
        )
    )


_USER_ID = bindparam("user_id", type_=automations.c.user_id.type)
_AUTOMATION = bindparam("automation", type_=automations.c.automation.type)
_BOOLEANS = frozenset(
    i for i, column in enumerate(SELECT_COLUMNS) if isinstance(column.type, Boolean)
)


def _booleans(row: Any) -> tuple[Any, ...]:
    """A driver row with its Boolean columns as bools (SQLite gives 0 or 1), so a
    cursor on `disabled` says true or false."""
    return tuple(bool(v) if i in _BOOLEANS else v for i, v in enumerate(row))


def may_see(user: User, owner_id: int) -> bool:
    """The visibility rule: users see their own automations (and their runs); admins all."""
    return user.is_admin or owner_id == user.id


def visible_automation(conn: Connection, automation_id: int, user: User) -> Automation:
    """The automation if it exists, is not deleted, and `user` may see it; NotFound
    otherwise (the API's 404 and the web UI's 404 page say the same)."""
    found = get_automation(conn, automation_id)
    if found is None or found.deleted or not may_see(user, found.user_id):
        raise NotFound(f"Automation {automation_id} not found.")
    return found


def automation_owner(dialect: Dialect, automation_id: int) -> Steps[int | None]:
    """The id of the automation's owner; None when there is no such automation or it
    was deleted (for `may_see`, as steps: the run list's visibility check)."""
    rows = yield Statement(_OWNER.for_dialect(dialect), {"automation_id": automation_id})
    return rows[0][0] if rows else None


_OWNER = Prepared(
    lambda: select(automations.c.user_id).where(
        automations.c.id == bindparam("automation_id", type_=automations.c.id.type),
        automations.c.deleted.is_(False),
    )
)
