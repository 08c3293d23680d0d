"""Folder permissions in the database: grant, revoke, list, and the grants an automation
runs with (`conveyor.domain.permissions` has the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, select, true
from sqlalchemy.engine import Connection, Dialect

from conveyor.domain import errors
from conveyor.domain.automations import Automation
from conveyor.domain.listing import Cursor, Sort
from conveyor.domain.permissions import (
    Grant,
    Level,
    NewPermission,
    changes_data_plane,
    check_automation,
)
from conveyor.store.keyset import KeysetPage, keyset_steps
from conveyor.store.prepared import Steps
from conveyor.store.schema import automations, permissions, users


@dataclass(frozen=True, slots=True)
class PermissionRecord:
    id: int
    path: str
    user_id: int
    username: str
    permission: str
    recursive: bool


_USERNAME = (
    select(users.c.name).where(users.c.id == permissions.c.user_id).scalar_subquery().label("name")
)
_COLUMNS = [
    permissions.c.id,
    permissions.c.path,
    permissions.c.user_id,
    _USERNAME,
    permissions.c.permission,
    permissions.c.recursive,
]
SORT_FIELDS = ("path", "user_id")
_KEY_INDEX = {"path": 1, "user_id": 2}


def record_from_row(row: Any) -> PermissionRecord:
    return PermissionRecord(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


def _resolve_user(conn: Connection, new: NewPermission) -> tuple[int, str]:
    condition = users.c.id == new.user_id if new.user_id is not None else None
    if condition is None:
        condition = users.c.name == new.username
    row = conn.execute(select(users.c.id, users.c.name).where(condition)).first()
    if row is None:
        who = f"user_id {new.user_id}" if new.user_id is not None else f"username {new.username!r}"
        raise errors.UserNotFound(f"No user with {who}.")
    if new.username is not None and row.name != new.username:
        raise errors.RequestParamsInvalid(
            f"user_id {new.user_id} and username {new.username!r} name different users."
        )
    return int(row.id), str(row.name)


def create_permission(conn: Connection, new: NewPermission, now: int) -> PermissionRecord:
    user_id, name = _resolve_user(conn, new)
    existing = conn.execute(
        select(permissions.c.id).where(
            permissions.c.user_id == user_id,
            permissions.c.path == new.path,
            permissions.c.permission == new.level.value,
        )
    ).scalar()
    if existing is not None:
        raise errors.RequestParamsInvalid(
            f"User {name!r} already has {new.level.value} on path {new.path!r} "
            f"(permission {existing}); delete it first to change it."
        )
    new_id = conn.execute(
        permissions.insert()
        .values(
            user_id=user_id,
            path=new.path,
            permission=new.level.value,
            recursive=new.recursive,
            created_at=now,
        )
        .returning(permissions.c.id)
    ).scalar_one()
    return PermissionRecord(new_id, new.path, user_id, name, new.level.value, new.recursive)


def grant(
    conn: Connection, user_id: int, path: str, level: Level, now: int, recursive: bool = True
) -> PermissionRecord:
    """Grant without the API's validation (set-up code and tests)."""
    return create_permission(conn, NewPermission(path, level, recursive, user_id, None), now)


def ensure_grant(conn: Connection, user_id: int, path: str, level: Level, now: int) -> None:
    """`grant` unless the user already holds `level` on `path` (set-up code and benchmarks)."""
    held = conn.execute(
        select(permissions.c.id).where(
            permissions.c.user_id == user_id,
            permissions.c.path == path,
            permissions.c.permission == level.value,
        )
    ).first()
    if held is None:
        grant(conn, user_id, path, level, now)


def delete_permission(conn: Connection, permission_id: int) -> bool:
    result = conn.execute(delete(permissions).where(permissions.c.id == permission_id))
    return result.rowcount > 0


@dataclass(frozen=True, slots=True)
class PermissionListQuery:
    per_page: int
    sort: Sort
    user_id: int | None  # the filter (a non-admin: always themself)
    path: str | None  # filter[path]: exactly this path
    path_prefix: str | None  # filter_prefix[path]
    applies_to: str | None  # `path`: the permissions at this path or above it
    cursor: Cursor | None

    def scope(self) -> list[Any]:
        return ["permissions", self.user_id, self.path, self.path_prefix, self.applies_to]


def _ancestors(path: str) -> list[str]:
    """The path and every folder above it, the root ("") included."""
    parts = path.split("/") if path else []
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_permissions(dialect: Dialect, query: PermissionListQuery) -> Steps[KeysetPage]:
    """One keyset page of permissions, as steps."""
    params: dict[str, Any] = {}
    conditions: list[ColumnElement[bool]] = [true()]  # an admin's unfiltered list
    if query.user_id is not None:
        conditions.append(permissions.c.user_id == _bound("user_id"))
        params["user_id"] = query.user_id
    if query.path is not None:
        conditions.append(permissions.c.path == _bound("path"))
        params["path"] = query.path
    if query.path_prefix is not None:
        conditions.append(permissions.c.path.like(_bound("path_prefix"), escape="\\"))
        params["path_prefix"] = _escape_like(query.path_prefix) + "%"
    ancestors = None if query.applies_to is None else _ancestors(query.applies_to)
    if ancestors is not None:
        # Padded with the path itself to a power of two: a few statement shapes to
        # compile and keep (keyset's cache_key), not one for every depth.
        size = 1 << (len(ancestors) - 1).bit_length()
        ancestors += [ancestors[-1]] * (size - len(ancestors))
        names = [f"ancestor_{i}" for i in range(size)]
        conditions.append(permissions.c.path.in_([_bound(n) for n in names]))
        params.update(zip(names, ancestors, strict=True))
    field = query.sort.field
    return (
        yield from keyset_steps(
            dialect,
            columns=_COLUMNS,
            table_columns=permissions.c,
            read_field=field,
            descending=query.sort.descending,
            key_index=_KEY_INDEX[field] if field else None,
            scope=conditions,
            cursor=query.cursor,
            per_page=query.per_page,
            params=params,
            cache_key=(
                "permissions",
                query.user_id is not None,
                query.path is not None,
                query.path_prefix is not None,
                None if ancestors is None else len(ancestors),
            ),
        )
    )


def _bound(name: str) -> Any:
    """A bind parameter named `name` of a path (or, for `user_id`, a user id)."""
    return bindparam(name, type_=permissions.c["user_id" if name == "user_id" else "path"].type)


def grants_for_user(conn: Connection, user_id: int) -> list[Grant] | None:
    """The user's grants; None for an admin (who needs none) and for a missing user
    an empty list (nothing is allowed)."""
    row = conn.execute(_IS_ADMIN, {"user_id": user_id}).first()
    if row is not None and row.is_admin:
        return None
    rows = conn.execute(_GRANTS, {"user_id": user_id}).all()
    return [Grant(r.path, Level(r.permission), bool(r.recursive)) for r in rows]


# Built once: every claim of a run reads its owner's grants.
_IS_ADMIN = select(users.c.is_admin).where(
    users.c.id == bindparam("user_id", type_=users.c.id.type)
)
_GRANTS = select(permissions.c.path, permissions.c.permission, permissions.c.recursive).where(
    permissions.c.user_id == bindparam("user_id", type_=permissions.c.user_id.type)
)


def grants_for_automation(conn: Connection, automation_id: int) -> list[Grant] | None:
    """The grants of the automation's owner, as `grants_for_user`; [] if it is gone."""
    owner = conn.execute(
        select(automations.c.user_id).where(automations.c.id == automation_id)
    ).scalar()
    return [] if owner is None else grants_for_user(conn, int(owner))


def check_automation_at_save(
    conn: Connection, saved: Automation, before: Automation | None = None
) -> None:
    """Refuse (403 not-authorized, naming the path) saving an automation whose owner
    may not read or write where it acts, inside the writing transaction, so that
    raising rolls the save back. `before` is the automation as it was for an update:
    then only a change of where it reads or writes is checked. The API and the web
    forms both call this, so the browser cannot save what the API refuses."""
    if before is not None and not changes_data_plane(before, saved):
        return
    grants = grants_for_user(conn, saved.user_id)
    if grants is not None:
        check_automation(saved, grants)
