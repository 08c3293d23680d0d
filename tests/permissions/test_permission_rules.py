"""The pure folder-permission rules: where a grant applies, what each level gives, and
what an automation needs before any file is looked at."""

from __future__ import annotations

import pytest

from conveyor.domain import errors
from conveyor.domain.automations import Automation, AutomationType, Trigger
from conveyor.domain.permissions import (
    Grant,
    Level,
    Need,
    allows,
    automation_needs,
    check_automation,
    parse_level,
    validate_create,
)


def test_a_grant_covers_its_folder_and_its_subfolders_by_whole_segments() -> None:
    grant = Grant("out/al", Level.FULL)
    assert grant.covers("out/al")
    assert grant.covers("out/al/x/y")
    assert not grant.covers("out/alice")
    assert not grant.covers("out/alice/x")
    assert not grant.covers("out")
    assert not grant.covers("")


def test_a_non_recursive_grant_covers_only_its_own_folder() -> None:
    grant = Grant("out", Level.FULL, recursive=False)
    assert grant.covers("out")
    assert not grant.covers("out/a")
    assert not grant.covers("out", subtree=True)
    assert Grant("out", Level.FULL).covers("out", subtree=True)


def test_the_root_grant_covers_everything_or_only_the_root_files() -> None:
    assert Grant("", Level.FULL).covers("a/b/c")
    assert Grant("", Level.FULL).covers("", subtree=True)
    assert Grant("", Level.FULL, recursive=False).covers("")
    assert not Grant("", Level.FULL, recursive=False).covers("a")


@pytest.mark.parametrize(
    ("level", "read", "write", "full"),
    [
        (Level.FULL, True, True, True),
        (Level.READONLY, True, False, False),
        (Level.WRITEONLY, False, True, False),
        (Level.LIST, False, False, False),
    ],
)
def test_what_each_level_gives(level: Level, read: bool, write: bool, full: bool) -> None:
    grants = [Grant("data", level)]
    assert allows(grants, Need.READ, "data/x") is read
    assert allows(grants, Need.WRITE, "data/x") is write
    assert allows(grants, Need.FULL, "data/x") is full
    assert not allows(grants, Need.READ, "elsewhere")


def _automation(kind: AutomationType, **values: object) -> Automation:
    return Automation(id=1, user_id=2, automation=kind, trigger=Trigger.MANUAL, **values)  # type: ignore[arg-type]


def test_what_each_automation_type_needs() -> None:
    copy = _automation(
        AutomationType.COPY_FILE,
        path="in",
        source="**/*.csv",
        destinations=("out/a/", "out/%Y/%m/", "out/b/file.csv", "./done/"),
    )
    assert automation_needs(copy) == [
        (Need.READ, "in", True, "source '**/*.csv'"),
        (Need.WRITE, "out/a", True, "destination 'out/a/'"),
        (Need.WRITE, "out", True, "destination 'out/%Y/%m/'"),
        (Need.WRITE, "out/b", False, "destination 'out/b/file.csv'"),
    ]
    delete = _automation(AutomationType.DELETE_FILE, source="out/alice/**")
    assert automation_needs(delete) == [(Need.FULL, "out/alice", True, "source 'out/alice/**'")]
    move = _automation(AutomationType.MOVE_FILE, source="in/*.txt", destinations=("done/",))
    assert automation_needs(move) == [
        (Need.FULL, "in", False, "source 'in/*.txt'"),
        (Need.WRITE, "done", True, "destination 'done/'"),  # to done/in/...
    ]
    folders = _automation(AutomationType.CREATE_FOLDER, destinations=("a/b", "c/%Y"))
    assert automation_needs(folders) == [
        (Need.WRITE, "a/b", False, "destination 'a/b'"),
        (Need.WRITE, "c", True, "destination 'c/%Y'"),
    ]


def test_check_automation_names_the_path_and_the_files_com_type() -> None:
    delete = _automation(AutomationType.DELETE_FILE, source="out/alice/**")
    with pytest.raises(errors.FullPermissionRequired) as raised:
        check_automation(delete, [Grant("out/bob", Level.FULL), Grant("out", Level.READONLY)])
    assert raised.value.message == (
        "source 'out/alice/**': no full permission on 'out/alice' and its subfolders."
    )
    assert raised.value.http_status == 403
    assert raised.value.error_type == "not-authorized/full-permission-required"
    check_automation(delete, [Grant("out/alice", Level.FULL)])
    with pytest.raises(errors.FullPermissionRequired):  # the subfolders are not covered
        check_automation(delete, [Grant("out/alice", Level.FULL, recursive=False)])


def test_levels_files_com_documents_but_conveyor_cannot_honour_are_refused() -> None:
    assert parse_level("writeonly") is Level.WRITEONLY
    for value in ("admin", "bundle", "history", "site_admin"):
        with pytest.raises(errors.RequestParamsInvalid, match="not supported by Conveyor"):
            parse_level(value)
    with pytest.raises(errors.RequestParamsInvalid, match="is not one of full"):
        parse_level("everything")


INVALID, REQUIRED = errors.RequestParamsInvalid, errors.RequestParamsRequired


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        ({"path": "a", "permission": "full"}, REQUIRED, "user_id or username"),
        ({"user_id": 1, "permission": "full"}, REQUIRED, "path"),
        ({"user_id": 1, "path": "a"}, REQUIRED, "permission"),
        ({"group_id": 3, "path": "a", "permission": "full"}, INVALID, "groups"),
        ({"group_name": "g", "path": "a", "permission": "full"}, INVALID, "groups"),
        ({"user_id": 1, "path": "/a", "permission": "full"}, errors.InvalidPath, "slash"),
        ({"user_id": 1, "path": "a/../b", "permission": "full"}, errors.InvalidPath, ".."),
        ({"user_id": 1, "path": "a/*", "permission": "full"}, errors.InvalidPath, "glob"),
        ({"user_id": 1, "path": 5, "permission": "full"}, INVALID, "path"),
        ({"user_id": "1", "path": "a", "permission": "full"}, INVALID, "user_id"),
        ({"user_id": True, "path": "a", "permission": "full"}, INVALID, "user_id"),
        ({"user_id": 1, "path": "a", "permission": "full", "recursive": "yes"},
         INVALID, "recursive"),
        ({"user_id": 1, "path": "a", "permission": "full", "color": 1},
         INVALID, "color"),
    ],
)  # fmt: skip
def test_bad_create_bodies_are_refused(body: dict[str, object], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        validate_create(body)


def test_recursive_defaults_to_true_and_the_root_is_the_empty_path() -> None:
    new = validate_create({"username": "bob", "path": "", "permission": "readonly"})
    assert (new.path, new.level, new.recursive, new.user_id, new.username) == (
        "",
        Level.READONLY,
        True,
        None,
        "bob",
    )


@pytest.mark.parametrize(
    "error",
    [
        errors.ReadPermissionRequired,
        errors.WritePermissionRequired,
        errors.FullPermissionRequired,
        errors.SiteAdminRequired,
        errors.InsufficientPermissionForParams,
        errors.UserNotFound,
    ],
)
def test_the_new_error_types_name_classes_of_the_official_sdk(error: type) -> None:
    """files_sdk maps the last segment of `type` to a class (write-permission-required ->
    WritePermissionRequiredError); the family must be the one the class derives from."""
    import files_sdk.error as official

    family, _, name = error.error_type.partition("/")
    cls = getattr(official, "".join(part.title() for part in name.split("-")) + "Error")
    parent = getattr(official, "".join(part.title() for part in family.split("-")) + "Error")
    assert issubclass(cls, parent)
