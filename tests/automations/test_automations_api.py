"""The Automations API through the official Files.com SDK over real HTTP, on both databases."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import files_sdk
import files_sdk.error as sdk_errors
import httpx
import orjson
import pytest
from sqlalchemy import func, select

from conveyor.store.database import Database
from conveyor.store.schema import automation_runs, automations
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

COPY = {
    "automation": "copy_file",
    "name": "Copy reports",
    "path": "incoming",
    "source": "*.csv",
    "destinations": ["archive/%Y/", "backup/"],
}


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


@pytest.fixture
def sdk(files: ModuleType, alice: Account) -> None:
    """The official SDK pointed at the live server as alice (restored by `files`)."""
    files.set_api_key(alice.key)


def counts(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(automations)).scalar_one(),
            conn.execute(select(func.count()).select_from(automation_runs)).scalar_one(),
        )


def test_create_find_list_update_delete(sdk: None, alice: Account, db: Database) -> None:
    created = files_sdk.automation.create(COPY)
    assert created.automation == "copy_file"
    assert created.name == "Copy reports"
    assert created.path == "incoming"
    assert created.source == "*.csv"
    assert created.destinations == ["archive/%Y/", "backup/"]
    assert created.trigger == "manual"
    assert created.disabled is False
    assert created.user_id == alice.user.id
    assert created.human_readable_schedule is None

    found = files_sdk.automation.find(created.id)
    assert found.get_attributes() == created.get_attributes()

    second = files_sdk.automation.create({"automation": "delete_file", "source": "tmp/*.tmp"})
    listed = list(files_sdk.automation.list({"per_page": 1}).auto_paging_iter())
    assert [a.id for a in listed] == [created.id, second.id]

    modified_before = found.last_modified_at
    renamed = files_sdk.automation.update(created.id, {"name": "Renamed"})
    assert renamed.name == "Renamed"
    assert renamed.source == "*.csv"
    # Files.com: last_modified_at does not change for name or description updates.
    assert renamed.last_modified_at == modified_before

    files_sdk.automation.delete(second.id)
    with pytest.raises(sdk_errors.NotFoundError):
        files_sdk.automation.find(second.id)
    assert [a.id for a in files_sdk.automation.list().auto_paging_iter()] == [created.id]


def test_sort_and_filter(sdk: None) -> None:
    ids = {}
    for name, kind in (("b", "copy_file"), ("a", "delete_file"), ("c", "copy_file")):
        body: dict[str, Any] = {**COPY, "name": name, "automation": kind}
        ids[name] = files_sdk.automation.create(body).id
    files_sdk.automation.update(ids["c"], {"disabled": True})
    by_name = files_sdk.automation.list({"sort_by": {"name": "desc"}, "per_page": 2})
    assert [a.name for a in by_name.auto_paging_iter()] == ["c", "b", "a"]
    copies = files_sdk.automation.list({"filter": {"automation": "copy_file"}})
    assert sorted(a.name for a in copies) == ["b", "c"]
    enabled = files_sdk.automation.list({"filter": {"disabled": "false"}})
    assert sorted(a.name for a in enabled) == ["a", "b"]
    # Pages sorted by disabled follow their cursors across the false/true boundary
    # (a cursor's key is the boolean itself, on both databases).
    for direction, expected in (("asc", ["b", "a", "c"]), ("desc", ["c", "a", "b"])):
        pages = files_sdk.automation.list({"sort_by": {"disabled": direction}, "per_page": 1})
        assert [a.name for a in pages.auto_paging_iter()] == expected
    with pytest.raises(sdk_errors.InvalidSortFieldError):
        list(files_sdk.automation.list({"sort_by": {"path": "asc"}}))
    with pytest.raises(sdk_errors.InvalidFilterFieldError):
        list(files_sdk.automation.list({"filter": {"path": "x"}}))


def test_manual_run_creates_a_queued_run(sdk: None, server: ServerThread, alice: Account) -> None:
    created = files_sdk.automation.create(COPY)
    assert files_sdk.automation.manual_run(created.id) is None  # the official SDK drops the body
    runs = list(files_sdk.automation_run.list({"automation_id": created.id}))
    assert len(runs) == 1
    assert runs[0].automation_id == created.id
    assert runs[0].status in ("running", "success", "failure", "partial_failure")
    # Conveyor answers manual_run with the run itself (201), for its own SDK and CLI.
    response = httpx.post(
        f"{server.url}/api/rest/v1/automations/{created.id}/manual_run",
        headers={"X-FilesAPI-Key": alice.key},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["automation_id"] == created.id
    assert body["run_stage"] in (
        "queued_for_planning",
        "planning",
        "queued_for_execution",
        "executing",
        "finished",
    )
    assert body["runtime"] == body["created_at"]


def test_disabled_automation_cannot_be_run(sdk: None, db: Database) -> None:
    created = files_sdk.automation.create({**COPY, "disabled": True})
    before = counts(db)
    with pytest.raises(sdk_errors.AutomationCannotBeRunManuallyError) as raised:
        files_sdk.automation.manual_run(created.id)
    assert raised.value.http_status == 422
    assert counts(db) == before


def test_other_users_automations_are_invisible(
    sdk: None, seed: Seeder, server: ServerThread, db: Database
) -> None:
    mine = files_sdk.automation.create(COPY)
    bob = seed.account("bob")
    admin = seed.account("root", admin=True)
    files_sdk.set_api_key(bob.key)
    assert list(files_sdk.automation.list()) == []
    before = counts(db)
    for call in (
        lambda: files_sdk.automation.find(mine.id),
        lambda: files_sdk.automation.update(mine.id, {"name": "stolen"}),
        lambda: files_sdk.automation.delete(mine.id),
        lambda: files_sdk.automation.manual_run(mine.id),
    ):
        with pytest.raises(sdk_errors.NotFoundError):
            call()
    assert counts(db) == before
    files_sdk.set_api_key(admin.key)
    assert files_sdk.automation.find(mine.id).name == "Copy reports"


BAD_PARAMS = "bad-request/request-params-invalid"
MISSING = "bad-request/request-params-required"
BAD_PATH = "bad-request/invalid-path"
INVALID = [
    ({"automation": "as2_send"}, BAD_PARAMS, "create_folder, copy_file"),
    ({}, MISSING, "automation"),
    ({"automation": "copy_file", "destinations": ["a/"]}, MISSING, "source"),
    ({"automation": "copy_file", "source": "*.txt"}, MISSING, "destinations"),
    ({"automation": "create_folder"}, MISSING, "destinations"),
    ({**COPY, "trigger": "email"}, BAD_PARAMS, "manual, daily"),
    ({**COPY, "path": "../etc"}, BAD_PATH, "'..'"),
    ({**COPY, "path": "/etc"}, BAD_PATH, "start with a slash"),
    ({**COPY, "path": "a//b"}, BAD_PATH, "empty"),
    ({**COPY, "source": "../../*"}, BAD_PATH, "'..'"),
    ({**COPY, "destinations": ["ok/", "out/../x/"]}, BAD_PATH, "destination"),
    ({**COPY, "destinations": ["./../a/../x/"]}, BAD_PATH, "destination"),
    ({**COPY, "destinations": ["a\\b"]}, BAD_PATH, "backslash"),
    ({**COPY, "trigger": "daily", "interval": "fortnight"}, BAD_PARAMS, "interval"),
    (
        {**COPY, "trigger": "daily", "interval": "month", "recurring_day": 40},
        BAD_PARAMS,
        "recurring_day",
    ),
    (
        {
            **COPY,
            "trigger": "custom_schedule",
            "schedule_days_of_week": [7],
            "schedule_times_of_day": ["09:00"],
        },
        BAD_PARAMS,
        "0 (Sunday)",
    ),
    (
        {
            **COPY,
            "trigger": "custom_schedule",
            "schedule_days_of_week": [1],
            "schedule_times_of_day": ["25:00"],
        },
        BAD_PARAMS,
        "HH:MM",
    ),
    (
        {**COPY, "trigger": "custom_schedule", "schedule_times_of_day": ["09:00"]},
        MISSING,
        "schedule_days_of_week",
    ),
    ({**COPY, "trigger": "daily", "schedule_time_zone": "Mars/Olympus"}, BAD_PARAMS, "time zone"),
    ({**COPY, "trigger": "action"}, MISSING, "trigger_actions"),
    ({**COPY, "trigger": "action", "trigger_actions": ["explode"]}, BAD_PARAMS, "trigger_actions"),
    ({**COPY, "disabled": "maybe"}, BAD_PARAMS, "boolean"),
    ({**COPY, "name": 5}, BAD_PARAMS, "string"),
    (
        {**COPY, "destinations": "a/,b/", "schedule_days_of_week": [True]},
        BAD_PARAMS,
        "schedule_days_of_week",
    ),
    # Strict ASCII and bounded lengths: none of these may be a 500 or a valid value.
    *(
        (
            {
                **COPY,
                "trigger": "custom_schedule",
                "schedule_days_of_week": [day],
                "schedule_times_of_day": ["09:00"],
            },
            BAD_PARAMS,
            "schedule_days_of_week",
        )
        for day in ("\u00b2", "\u0663", "9" * 5000, 10**40, "3.0")
    ),
    *(
        (
            {
                **COPY,
                "trigger": "custom_schedule",
                "schedule_days_of_week": [1],
                "schedule_times_of_day": [time_of_day],
            },
            BAD_PARAMS,
            "HH:MM",
        )
        for time_of_day in ("10:00\n", "\u0661\u0660:00", "10:00:00", "24:00")
    ),
    (
        {**COPY, "trigger": "daily", "schedule_time_zone": "A" * 300},
        BAD_PARAMS,
        "schedule_time_zone",
    ),
    ({**COPY, "path_time_zone": "Europe/" + "x" * 300}, BAD_PARAMS, "path_time_zone"),
    (
        {**COPY, "trigger": "daily", "interval": "month", "recurring_day": "9" * 5000},
        BAD_PARAMS,
        "recurring_day",
    ),
    (
        {**COPY, "trigger": "daily", "interval": "month", "recurring_day": "\u0663"},
        BAD_PARAMS,
        "recurring_day",
    ),
]


@pytest.mark.parametrize(("body", "error_type", "mentions"), INVALID)
def test_invalid_automations_create_nothing(
    server: ServerThread,
    alice: Account,
    db: Database,
    body: dict[str, Any],
    error_type: str,
    mentions: str,
) -> None:
    """Raw HTTP, because the official SDK refuses some of these before sending them."""
    before = counts(db)
    response = httpx.post(
        f"{server.url}/api/rest/v1/automations", json=body, headers={"X-FilesAPI-Key": alice.key}
    )
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == error_type
    assert mentions in error["error"]
    assert error["http-code"] == 400
    assert error["instance"] == response.headers["X-Request-Id"]
    assert counts(db) == before


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"automation": "as2_send"}, sdk_errors.RequestParamsInvalidError),
        ({"automation": "copy_file", "source": "*.txt"}, sdk_errors.RequestParamsRequiredError),
        ({**COPY, "path": "../etc"}, sdk_errors.InvalidPathError),
    ],
)
def test_official_sdk_raises_the_matching_error(
    sdk: None, db: Database, body: dict[str, Any], error: type[Exception]
) -> None:
    before = counts(db)
    with pytest.raises(error):
        files_sdk.automation.create(body)
    assert counts(db) == before


def test_invalid_schedule_updates_are_400s(
    server: ServerThread, alice: Account, db: Database
) -> None:
    """PATCH with the values that once were 500s: each a 400, nothing changed."""
    headers = {"X-FilesAPI-Key": alice.key}
    url = f"{server.url}/api/rest/v1/automations"
    created = httpx.post(url, json=COPY, headers=headers).json()
    for patch in (
        {"trigger": "daily", "schedule_time_zone": "A" * 300},
        {
            "trigger": "custom_schedule",
            "schedule_days_of_week": ["\u00b2"],
            "schedule_times_of_day": ["09:00"],
        },
        {
            "trigger": "custom_schedule",
            "schedule_days_of_week": ["9" * 5000],
            "schedule_times_of_day": ["09:00"],
        },
    ):
        response = httpx.patch(f"{url}/{created['id']}", json=patch, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == BAD_PARAMS
    assert httpx.get(f"{url}/{created['id']}", headers=headers).json() == created


def test_invalid_update_changes_nothing(sdk: None) -> None:
    created = files_sdk.automation.create(COPY)
    with pytest.raises(sdk_errors.InvalidPathError):
        files_sdk.automation.update(created.id, {"destinations": ["a/../x/"]})
    with pytest.raises(sdk_errors.RequestParamsInvalidError):
        files_sdk.automation.update(created.id, {"automation": "unzip"})
    assert files_sdk.automation.find(created.id).get_attributes() == created.get_attributes()


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_malformed_bodies(
    server: ServerThread, alice: Account, db: Database, raw: bytes, content_type: str
) -> None:
    before = counts(db)
    response = httpx.post(
        f"{server.url}/api/rest/v1/automations",
        content=raw,
        headers={"X-FilesAPI-Key": alice.key, "Content-Type": content_type},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "bad-request/request-params-invalid"
    assert counts(db) == before


def test_webhook_automation_gets_a_secret_url(sdk: None, server: ServerThread) -> None:
    hook = files_sdk.automation.create({**COPY, "trigger": "webhook"})
    assert hook.webhook_url.startswith(f"{server.url}/api/rest/v1/webhooks/")
    secret = hook.webhook_url.rsplit("/", 1)[1]
    assert len(secret) >= 32
    other = files_sdk.automation.create({**COPY, "trigger": "webhook"})
    assert other.webhook_url != hook.webhook_url
    assert files_sdk.automation.create(COPY).webhook_url is None


def test_schedules_are_described(sdk: None) -> None:
    weekly = files_sdk.automation.create(
        {
            **COPY,
            "trigger": "custom_schedule",
            "schedule_days_of_week": [5, 1],
            "schedule_times_of_day": ["09:00", "17:30"],
            "schedule_time_zone": "Eastern Time (US & Canada)",
        }
    )
    assert weekly.human_readable_schedule == (
        "Every Monday and Friday at 09:00, 17:30 (Eastern Time (US & Canada))"
    )
    monthly = files_sdk.automation.create(
        {
            **COPY,
            "trigger": "daily",
            "interval": "month",
            "recurring_day": 1,
        }
    )
    assert monthly.human_readable_schedule == "Every month on its 1st day at 00:00 (UTC)"


def test_oversized_body_is_refused_without_creating_anything(
    server: ServerThread, alice: Account, db: Database
) -> None:
    before = counts(db)
    padding = "x" * 1_100_000
    for headers in ({}, {"Transfer-Encoding": "chunked"}):
        body = orjson.dumps({**COPY, "description": padding})
        content: Any = body if not headers else iter([body[:500_000], body[500_000:]])
        response = httpx.post(
            f"{server.url}/api/rest/v1/automations",
            content=content,
            headers={"X-FilesAPI-Key": alice.key, "Content-Type": "application/json", **headers},
        )
        assert response.status_code == 400
        assert response.json()["type"] == "bad-request/request-params-invalid"
        assert "exceeds" in response.json()["error"]
    assert counts(db) == before


def test_switching_away_from_webhook_revokes_its_url(sdk: None, server: ServerThread) -> None:
    hook = files_sdk.automation.create({**COPY, "trigger": "webhook"})
    assert httpx.post(hook.webhook_url).status_code == 201
    manual = files_sdk.automation.update(hook.id, {"trigger": "manual"})
    assert manual.webhook_url is None
    assert httpx.post(hook.webhook_url).status_code == 404
    again = files_sdk.automation.update(hook.id, {"trigger": "webhook"})
    assert again.webhook_url not in (None, hook.webhook_url)
    assert httpx.post(hook.webhook_url).status_code == 404
    assert httpx.post(again.webhook_url).status_code == 201
