"""Folder permissions (Files.com's Permission resource): what each grants, where it applies,
and what an automation needs. Pure rules; `store.permissions` keeps the grants.

A permission on a folder covers the folder itself, the files in it and, when
`recursive` (the default), every folder below it. The root is the path "".
Admins need no permission; a non-admin's automation reads only where a
grant gives `read` and writes only where one gives `write` or `full`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain import errors
from conveyor.domain.automations import Automation, AutomationType, check_path


class Level(enum.StrEnum):
    """The Files.com permission values Conveyor honours."""

    FULL = "full"
    READONLY = "readonly"
    WRITEONLY = "writeonly"
    LIST = "list"


class Need(enum.StrEnum):
    """What an automation needs on a folder."""

    READ = "read"  # read files (a copy's source)
    WRITE = "write"  # create files and folders (destinations, create_folder)
    FULL = "full"  # remove or replace files (delete, a move's source, an overwrite)


# Files.com's table: full implies writeonly, readonly and list; readonly implies list.
GRANTS: Mapping[Level, frozenset[Need]] = {
    Level.FULL: frozenset({Need.READ, Need.WRITE, Need.FULL}),
    Level.READONLY: frozenset({Need.READ}),
    Level.WRITEONLY: frozenset({Need.WRITE}),
    Level.LIST: frozenset(),
}

# Files.com documents these too; Conveyor has nothing they would grant (folder
# admins, share links, file history, previews, child sites), so it refuses them.
REFUSED_LEVELS = frozenset(
    {"admin", "bundle", "history", "previewonly", "site_admin", "readonly_site_admin"}
)

# The Files.com error type each need answers with when missing (both SDKs map them).
_ERRORS: Mapping[Need, type[errors.ConveyorError]] = {
    Need.READ: errors.ReadPermissionRequired,
    Need.WRITE: errors.WritePermissionRequired,
    Need.FULL: errors.FullPermissionRequired,
}
# What a refused permission raises, for callers that show it next to a field.
PERMISSION_ERRORS = tuple(_ERRORS.values())


@dataclass(frozen=True, slots=True)
class Grant:
    """One permission as the rules use it."""

    path: str
    level: Level
    recursive: bool = True

    def covers(self, folder: str, subtree: bool = False) -> bool:
        """Whether the grant applies to `folder` (and, with `subtree`, to everything below it).

        A grant on "out/al" never covers "out/alice": paths compare by whole segments.
        """
        inside = folder != "" if self.path == "" else folder.startswith(self.path + "/")
        if subtree:
            return self.recursive and (inside or folder == self.path)
        return folder == self.path or (self.recursive and inside)


def allows(grants: Iterable[Grant], need: Need, folder: str, subtree: bool = False) -> bool:
    return any(need in GRANTS[g.level] and g.covers(folder, subtree) for g in grants)


def folder_of(path: str) -> str:
    """The folder a file path is in ("" for a file at the root)."""
    return path.rpartition("/")[0]


def _where(folder: str) -> str:
    return f"'{folder}'" if folder else "the storage root"


def refusal(need: Need, folder: str, subtree: bool = False) -> str:
    """The reason given when `need` is missing on `folder`."""
    below = " and its subfolders" if subtree and folder else ""
    if subtree and not folder:
        below = " and every folder in it"
    level = "full" if need is Need.FULL else f"{need.value} (or full)"
    return f"no {level} permission on {_where(folder)}{below}"


def require(grants: Iterable[Grant], need: Need, folder: str, what: str, subtree: bool) -> None:
    """Raise the Files.com not-authorized error for `need` if no grant gives it."""
    if not allows(grants, need, folder, subtree):
        raise _ERRORS[need](f"{what}: {refusal(need, folder, subtree)}.")


# ------------------------------------------------------------ automations

_GLOB_CHARS = "*?["


def _static_folder(path: str, marker: str) -> tuple[str, bool]:
    """The folder before the first segment holding `marker` characters, and whether
    anything was cut (so the resolved path may lie anywhere below that folder)."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if any(ch in part for ch in marker):
            return "/".join(parts[:index]), True
    return path, False


def source_scope(automation: Automation) -> tuple[str, bool]:
    """The folder a file automation's `source` reads from, and whether matches may
    lie in its subfolders (a wildcard before the last segment, or `**`)."""
    parts = [p for p in automation.path.split("/") if p] + automation.source.split("/")
    for index, part in enumerate(parts):
        if any(ch in part for ch in _GLOB_CHARS):
            return "/".join(parts[:index]), index < len(parts) - 1 or "**" in part
    return "/".join(parts[:-1]), False


def automation_needs(automation: Automation) -> list[tuple[Need, str, bool, str]]:
    """What the automation needs before any file is looked at: (need, folder, subtree, what).

    A source glob needs its fixed folder (the part before the first wildcard),
    with every subfolder when it can match below it; a destination with date
    tokens needs the folder before its first token and everything below it.
    Destinations relative to the source file (`./`, `../`) are only known per
    file, so planning checks them (as it checks every planned operation).
    """
    kind = automation.automation
    needs: list[tuple[Need, str, bool, str]] = []
    layered = "/" in automation.source or "**" in automation.source
    if kind is not AutomationType.CREATE_FOLDER:
        folder, nested = source_scope(automation)
        need = Need.READ if kind is AutomationType.COPY_FILE else Need.FULL
        needs.append((need, folder, nested, f"source '{automation.source}'"))
    if kind is AutomationType.DELETE_FILE:
        return needs
    for destination in automation.destinations:
        if destination.startswith(("./", "../")) or destination in (".", ".."):
            continue
        if kind is AutomationType.CREATE_FOLDER:
            # Folders are made below `path` (which may hold wildcards).
            destination = "/".join(part for part in (automation.path, destination) if part)
        folder, templated = _static_folder(destination, "%" + _GLOB_CHARS)
        if templated:
            subtree = True
        elif kind is AutomationType.CREATE_FOLDER:
            folder, subtree = folder.rstrip("/"), False
        elif destination.endswith("/"):
            # Files keep their folders below `path` unless flattened.
            folder, subtree = (
                folder.rstrip("/"),
                layered and not automation.flatten_destination_structure,
            )
        else:
            folder, subtree = folder_of(destination), False
        needs.append((Need.WRITE, folder, subtree, f"destination '{destination}'"))
    return needs


# The fields that decide where an automation reads and writes: a change of any of
# them is checked against its owner's permissions at save (renaming or disabling
# an automation whose permission was revoked stays possible).
DATA_PLANE_FIELDS = (
    "automation",
    "path",
    "source",
    "destinations",
    "flatten_destination_structure",
)


def changes_data_plane(before: Automation, after: Automation) -> bool:
    return any(getattr(before, name) != getattr(after, name) for name in DATA_PLANE_FIELDS)


def check_automation(automation: Automation, grants: Iterable[Grant]) -> None:
    """Raise the not-authorized error naming the first path the owner may not use."""
    held = list(grants)
    for need, folder, subtree, what in automation_needs(automation):
        require(held, need, folder, what, subtree)


def automation_refusal(automation: Automation, grants: Iterable[Grant]) -> str | None:
    """`check_automation`'s reason as text (None: allowed), for a run's log."""
    try:
        check_automation(automation, grants)
    except errors.ConveyorError as exc:
        return exc.message.rstrip(".")
    return None


# ------------------------------------------------------------ the resource

MAX_PERMISSION_PATH = 5000
_CREATE_FIELDS = frozenset(
    {"path", "permission", "recursive", "user_id", "username", "group_id", "group_name"}
)


@dataclass(frozen=True, slots=True)
class NewPermission:
    """A validated create request; the user is named by id or by username."""

    path: str
    level: Level
    recursive: bool
    user_id: int | None
    username: str | None


def parse_level(value: Any) -> Level:
    if not isinstance(value, str):
        raise errors.RequestParamsInvalid("permission must be a string.")
    try:
        return Level(value)
    except ValueError:
        pass
    allowed = ", ".join(level.value for level in Level)
    if value in REFUSED_LEVELS:
        raise errors.RequestParamsInvalid(
            f"permission '{value}' is not supported by Conveyor (it has no folder admins, "
            f"share links, history or child sites); use one of {allowed}."
        )
    raise errors.RequestParamsInvalid(f"permission {value[:40]!r} is not one of {allowed}.")


def parse_permission_path(value: Any) -> str:
    if not isinstance(value, str):
        raise errors.RequestParamsInvalid("path must be a string.")
    return check_path(value, "path", allow_empty=True)


def validate_create(body: Mapping[str, Any]) -> NewPermission:
    """A create body as Files.com's SDKs send it; everything not honoured is refused."""
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise errors.RequestParamsInvalid(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}."
        )
    for name in ("group_id", "group_name"):
        if body.get(name) is not None:
            raise errors.RequestParamsInvalid(
                f"{name}: Conveyor has no groups; grant the permission to a user "
                "(user_id or username)."
            )
    if body.get("path") is None:
        raise errors.RequestParamsRequired("Parameter missing: path")
    path = parse_permission_path(body["path"])
    if body.get("permission") is None:
        raise errors.RequestParamsRequired(
            "Parameter missing: permission (full, readonly, writeonly or list)"
        )
    level = parse_level(body["permission"])
    recursive = body.get("recursive", True)
    if recursive is None:
        recursive = True
    if not isinstance(recursive, bool):
        raise errors.RequestParamsInvalid("recursive must be true or false.")
    user_id = body.get("user_id")
    username = body.get("username")
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise errors.RequestParamsInvalid("user_id must be an integer.")
    if username is not None and (not isinstance(username, str) or not username):
        raise errors.RequestParamsInvalid("username must be a non-empty string.")
    if user_id is None and username is None:
        raise errors.RequestParamsRequired("Parameter missing: user_id or username")
    return NewPermission(path, level, recursive, user_id, username)
