"""Every Automation field Files.com documents: honoured on real files, or refused with a 400.

Real HTTP on 127.0.0.1 to `conveyor serve`'s app with its embedded workers,
on both databases; real files in a storage root on disk. docs/api.md keeps
the table of fields these tests pin.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.domain.automations import UNSUPPORTED_FIELDS
from conveyor.engine.service import embedded_services
from conveyor.store.database import Database
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

API = "/api/rest/v1"
BAD_PARAMS = "bad-request/request-params-invalid"


@pytest.fixture
def live(database_url: str, db: Database, tmp_path: Path) -> Iterator[ServerThread]:
    settings = Settings.from_env(
        {
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_STORAGE_ROOT": str(tmp_path / "files"),
            "CONVEYOR_EMBEDDED_WORKERS": "2",
            "CONVEYOR_RATE_LIMIT_RATE": "0",
            "CONVEYOR_POLL_INTERVAL": "0.05",
        }
    )
    settings.storage_root.mkdir(parents=True)
    with ServerThread(create_app(settings, db, services=embedded_services())) as running:
        yield running


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


class Client:
    def __init__(self, live: ServerThread, account: Account) -> None:
        self.url = live.url + API
        self.headers = {"X-FilesAPI-Key": account.key}

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers)

    def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.patch(self.url + path, json=body, headers=self.headers)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.headers)

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.post("/automations", body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def finished(self, run: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while run["completed_at"] is None:
            assert time.monotonic() < deadline, f"run {run['id']} did not finish"
            time.sleep(0.05)
            run = self.get(f"/automation_runs/{run['id']}").json()
        return run

    def run(self, automation_id: int) -> dict[str, Any]:
        response = self.post(f"/automations/{automation_id}/manual_run")
        assert response.status_code == 201, response.text
        return self.finished(response.json())


@pytest.fixture
def api(live: ServerThread, alice: Account) -> Client:
    return Client(live, alice)


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def tree(root: Path, folder: str = "") -> dict[str, str]:
    top = root / folder
    return {
        p.relative_to(root).as_posix(): p.read_text() for p in sorted(top.rglob("*")) if p.is_file()
    }


def log_of(run: dict[str, Any]) -> str:
    response = httpx.get(run["status_messages_url"])
    assert response.status_code == 200
    return response.text


# ------------------------------------------------------------ honoured fields


def test_files_com_create_example_relative_destination_h_mm_time_and_glob_path(
    api: Client, root: Path
) -> None:
    """Files.com's own example: destination `./relative-folder/`, time "7:30", a glob path."""
    write(root, {"clients/a/in.txt": "A", "clients/b/in.txt": "BB", "clients/b/skip.csv": "c"})
    created = api.create(
        automation="copy_file",
        path="clients/*",
        source="*.txt",
        destinations=["./relative-folder/"],
        trigger="custom_schedule",
        schedule_days_of_week=[1, 2, 3, 4, 5],
        schedule_times_of_day=["7:30"],
        schedule_time_zone="UTC",
    )
    assert created["schedule_times_of_day"] == ["07:30"]
    assert created["path"] == "clients/*"
    assert created["destinations"] == ["./relative-folder/"]
    run = api.run(created["id"])
    assert (run["status"], run["successful_operations"]) == ("success", 2)
    assert tree(root) == {
        "clients/a/in.txt": "A",
        "clients/a/relative-folder/in.txt": "A",
        "clients/b/in.txt": "BB",
        "clients/b/relative-folder/in.txt": "BB",
        "clients/b/skip.csv": "c",
    }


def test_parent_relative_destinations_stay_inside_the_root(api: Client, root: Path) -> None:
    write(root, {"in/deep/a.txt": "a", "top.txt": "t"})
    up = api.create(
        automation="copy_file", path="in", source="**/*.txt", destinations=["../../sorted/"]
    )
    run = api.run(up["id"])
    assert (run["status"], run["successful_operations"]) == ("success", 1)
    assert (root / "sorted/deep/a.txt").read_text() == "a"
    # From a file at the top, ../ climbs above the root: that operation fails with the reason.
    escape = api.create(automation="copy_file", source="top.txt", destinations=["../out/"])
    run = api.run(escape["id"])
    assert (run["status"], run["failed_operations"]) == ("failure", 1)
    assert "climbs above the storage root" in log_of(run)
    assert not (root.parent / "out").exists()


def test_path_is_the_parent_of_create_folder_destinations(api: Client, root: Path) -> None:
    write(root, {"clients/a/keep": "", "clients/b/keep": "", "other/keep": ""})
    made = api.create(
        automation="create_folder", path="clients/*", destinations=["incoming/%Y", "./archive"]
    )
    run = api.run(made["id"])
    year = run["runtime"][:4]
    assert (run["status"], run["successful_operations"]) == ("success", 4)
    for client in ("a", "b"):
        assert (root / f"clients/{client}/incoming/{year}").is_dir()
        assert (root / f"clients/{client}/archive").is_dir()
    assert not (root / "incoming").exists()
    plain = api.create(automation="create_folder", path="projects/x", destinations=["docs"])
    assert api.run(plain["id"])["status"] == "success"
    assert (root / "projects/x/docs").is_dir()


def test_value_limit_copies_only_the_newest_files(api: Client, root: Path) -> None:
    write(root, {f"logs/{n}.log": str(n) for n in range(5)})
    for n in range(5):  # 3.log is the newest, then 1.log, then 4.log ...
        stamp = 1_700_000_000 + [10, 40, 20, 50, 30][n]
        os.utime(root / f"logs/{n}.log", (stamp, stamp))
    created = api.create(
        automation="copy_file",
        path="logs",
        source="*.log",
        destinations=["latest/"],
        value={"limit": "2"},
    )
    assert created["value"] == {"limit": 2}
    run = api.run(created["id"])
    assert (run["status"], run["successful_operations"]) == ("success", 2)
    assert tree(root, "latest") == {"latest/1.log": "1", "latest/3.log": "3"}
    assert "value.limit 2: the newest 2 files only" in log_of(run)
    moved = api.create(
        automation="move_file",
        path="logs",
        source="*.log",
        destinations=["old/"],
        value={"limit": 1},
    )
    assert api.run(moved["id"])["successful_operations"] == 1
    assert tree(root, "old") == {"old/3.log": "3"}


def test_overwrite_files_false_skips_an_existing_destination_and_says_so(
    api: Client, root: Path
) -> None:
    write(root, {"in/a.txt": "new", "out/a.txt": "older and longer"})
    keep = api.create(automation="copy_file", path="in", source="*.txt", destinations=["out/"])
    run = api.run(keep["id"])
    assert (run["status"], run["successful_operations"]) == ("success", 1)
    assert (root / "out/a.txt").read_text() == "older and longer"
    assert "out/a.txt already exists (16 bytes) and overwrite_files is false" in log_of(run)
    api.patch(f"/automations/{keep['id']}", {"overwrite_files": True})
    run = api.run(keep["id"])
    assert (root / "out/a.txt").read_text() == "new"


def test_webhook_parameters_name_the_destination(
    api: Client, live: ServerThread, root: Path
) -> None:
    write(root, {"in/report.csv": "r"})
    hook = api.create(
        automation="copy_file",
        trigger="webhook",
        path="in",
        source="*.csv",
        destinations=["users/%u-username/%u-day-"],
        destination_replace_from="-",
        destination_replace_to="-%u-username.csv",
    )
    sent = httpx.post(hook["webhook_url"], params={"username": "bob"}, data={"day": "mon"})
    assert sent.status_code == 201
    run = api.finished(sent.json())
    assert run["status"] == "success", log_of(run)
    assert tree(root, "users") == {"users/bob/mon-bob.csv": "r"}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"day": "mon"}, "parameter 'username' (used by %u-username) was not sent"),
        ({"username": "u" * 191, "day": "x"}, "191 characters long; the limit is 190"),
        ({"username": "../..", "day": "x"}, "is not usable as a name"),
        ({"username": "a" * 190, "day": "d" * 190, "tag": "t" * 190}, "the limit is 550"),
    ],
)
def test_bad_webhook_values_fail_the_run_with_the_reason(
    api: Client, root: Path, params: dict[str, str], reason: str
) -> None:
    write(root, {"in/report.csv": "r"})
    hook = api.create(
        automation="copy_file",
        trigger="webhook",
        path="in",
        source="*.csv",
        destinations=["users/%u-username/%u-day/%u-tag/"],
    )
    sent = httpx.post(hook["webhook_url"], json=params)
    assert sent.status_code == 201
    run = api.finished(sent.json())
    assert run["status"] == "failure"
    assert reason in log_of(run)
    assert tree(root) == {"in/report.csv": "r"}  # nothing written anywhere


def test_a_missing_folder_is_a_failure_and_an_empty_one_is_nothing_to_do(
    api: Client, root: Path
) -> None:
    missing = api.create(automation="copy_file", path="nowhere", source="*", destinations=["o/"])
    run = api.run(missing["id"])
    assert (run["status"], run["failed_operations"]) == ("failure", 0)
    assert "the folder 'nowhere' (the automation's path) does not exist" in log_of(run)
    no_match = api.create(automation="delete_file", path="gone/*", source="*")
    run = api.run(no_match["id"])
    assert run["status"] == "failure"
    assert "no folder matches the automation's path 'gone/*'" in log_of(run)
    (root / "empty").mkdir()
    empty = api.create(automation="copy_file", path="empty", source="*", destinations=["o/"])
    run = api.run(empty["id"])
    assert run["status"] == "success"
    assert "Nothing to do" in log_of(run)


def test_recurring_days_and_holiday_region_choose_the_slots(api: Client) -> None:
    monthly = api.create(
        automation="create_folder",
        destinations=["x"],
        trigger="daily",
        interval="month",
        recurring_days=[15, 1],
        schedule_times_of_day=["9:00"],
    )
    assert monthly["recurring_days"] == [15, 1]
    assert (
        monthly["human_readable_schedule"] == "Every month on its 1st and 15th day at 09:00 (UTC)"
    )
    slots = [s["runtime"][8:] for s in api.get(f"/automations/{monthly['id']}/next_runs").json()]
    assert set(slots) == {"01T09:00:00Z", "15T09:00:00Z"}

    daily = api.create(
        automation="create_folder",
        destinations=["x"],
        trigger="daily",
        schedule_times_of_day=["12:00"],
        holiday_region="us",
    )
    assert daily["holiday_region"] == "us"
    assert daily["human_readable_schedule"].endswith(", except public holidays in us")
    days = [
        s["runtime"][:10]
        for s in api.get(f"/automations/{daily['id']}/next_runs", count=100).json()
    ]
    import holidays

    us = holidays.country_holidays("US")
    assert len(days) == 100 and days == sorted(set(days))
    assert not [day for day in days if day in us]
    skipped = {d for d in us if days[0] <= d.isoformat() <= days[-1]}
    assert skipped  # 100 days from any date hold a US public holiday, and it was skipped


def test_the_official_sdk_can_save_an_automation_it_read(
    files: ModuleType, live: ServerThread, alice: Account
) -> None:
    """save() sends back every attribute it holds, read-only ones included."""
    files.base_url = live.url
    files.set_api_key(alice.key)
    created = files.automation.create(
        {"automation": "copy_file", "source": "*.txt", "destinations": ["o/"], "trigger": "webhook"}
    )
    found = files.automation.find(created.id)
    found.name = "renamed"
    found.save()
    assert files.automation.find(created.id).name == "renamed"


def test_manual_run_values_fill_parameter_tokens(api: Client, root: Path) -> None:
    write(root, {"in/report.csv": "r"})
    created = api.create(
        automation="copy_file", path="in", source="*.csv", destinations=["users/%u-username/"]
    )
    response = api.post(
        f"/automations/{created['id']}/manual_run", {"values": {"username": "carol"}}
    )
    assert response.status_code == 201, response.text
    run = api.finished(response.json())
    assert run["status"] == "success"
    assert tree(root, "users") == {"users/carol/report.csv": "r"}
    assert "Started by a manual run with values: username=carol" in log_of(run)
    # Without values, or without this one, the run fails with the reason; nothing is written.
    run = api.run(created["id"])
    assert run["status"] == "failure"
    assert "%u-username names a parameter, and this run was given none" in log_of(run)
    response = api.post(f"/automations/{created['id']}/manual_run", {"values": {"user": "x"}})
    run = api.finished(response.json())
    assert run["status"] == "failure"
    assert "parameter 'username' (used by %u-username) was not sent" in log_of(run)
    assert tree(root, "users") == {"users/carol/report.csv": "r"}


# ------------------------------------------------------------ refused fields

UNSUPPORTED_VALUES = {
    "sync_ids": "1,2",
    "user_ids": "3",
    "group_ids": [4],
    "schedule_id": 7,
    "schedule": {"days_of_week": [1]},
    "definition": {"nodes": []},
    "import_urls": [{"name": "a", "url": "http://127.0.0.1/"}],
    "ignore_locked_folders": True,
    "legacy_folder_matching": False,
    "workspace_id": 1,
}
COPY = {"automation": "copy_file", "source": "*.txt", "destinations": ["o/"]}


def test_every_unsupported_field_has_a_value_to_try() -> None:
    assert set(UNSUPPORTED_VALUES) == set(UNSUPPORTED_FIELDS)


@pytest.mark.parametrize("field", sorted(UNSUPPORTED_VALUES))
def test_unsupported_files_com_fields_are_refused_on_create_and_update(
    api: Client, field: str
) -> None:
    body = {**COPY, field: UNSUPPORTED_VALUES[field]}
    response = api.post("/automations", body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == BAD_PARAMS
    assert error["error"].startswith(f"{field} is not supported")
    created = api.create(**COPY)
    response = api.patch(f"/automations/{created['id']}", {field: UNSUPPORTED_VALUES[field]})
    assert response.status_code == 400
    assert response.json()["type"] == BAD_PARAMS
    assert api.get("/automations").json() == [created]


BAD_INPUT = [
    ({**COPY, "colour": "blue"}, "'colour' is not a field of an Automation"),
    ({**COPY, "value": {"limit": 0}}, "value.limit must be a positive integer"),
    ({**COPY, "value": {"limit": -3}}, "value.limit must be a positive integer"),
    ({**COPY, "value": {"limit": "ten"}}, "value.limit must be a positive integer"),
    ({**COPY, "value": {"limit": 1.5}}, "value.limit must be a positive integer"),
    ({**COPY, "value": {"limit": True}}, "value.limit must be a positive integer"),
    ({**COPY, "value": {"limit": 1, "other": 2}}, "value.other is not supported"),
    ({**COPY, "value": [1]}, "value must be an object"),
    ({"automation": "delete_file", "source": "*", "value": {"limit": 1}}, "value.limit applies"),
    ({**COPY, "trigger": "daily", "holiday_region": "atlantis"}, "holiday_region 'atlantis'"),
    ({**COPY, "trigger": "daily", "holiday_region": "us_zz"}, "holiday_region 'us_zz'"),
    ({**COPY, "holiday_region": "us"}, "holiday_region applies to the daily"),
    ({**COPY, "destinations": ["out/%q/"]}, "unknown token '%q'"),
    ({**COPY, "destinations": ["out/%tf"]}, "needs trigger 'action'"),
    (
        {**COPY, "trigger": "action", "trigger_actions": ["create"], "destinations": ["%u-a/"]},
        "needs trigger 'webhook'",
    ),
    ({"automation": "create_folder", "destinations": ["%p1"]}, "create_folder has no source"),
    ({**COPY, "destination_replace_from": "a", "destination_replace_to": "%t"}, "unknown token"),
    (
        {**COPY, "trigger": "daily", "interval": "month", "recurring_days": [1, 32]},
        "recurring_days",
    ),
    ({**COPY, "recurring_days": [1]}, "recurring_days applies to the daily trigger"),
    (
        {
            **COPY,
            "trigger": "custom_schedule",
            "schedule_days_of_week": [1],
            "schedule_times_of_day": ["7:5"],
        },
        "H:MM or HH:MM",
    ),
    ({**COPY, "id": 5}, "id is read-only"),
    ({**COPY, "destination": "x/"}, "not both"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_INPUT)
def test_bad_input_is_a_clear_400_and_creates_nothing(
    api: Client, body: dict[str, Any], mentions: str
) -> None:
    response = api.post("/automations", body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] in (BAD_PARAMS, "bad-request/invalid-path")
    assert mentions in error["error"]
    assert api.get("/automations").json() == []


def test_the_deprecated_single_destination_is_honoured(api: Client) -> None:
    created = api.create(automation="copy_file", source="*.txt", destination="out/")
    assert created["destinations"] == ["out/"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"items": [{"file": "a.txt"}]}, "items is not supported"),
        ({"colour": 1}, "'colour' is not a parameter of manual_run"),
        ({"values": ["a"]}, "values must be an object"),
        ({"values": {"a-b": "x"}}, "'a-b' is not a parameter name"),
        ({"values": {"a": {"x": 1}}}, "values.a must be a string"),
        ({"values": {"a": "y" * 191}}, "191 characters long; the limit is 190"),
        ({"values": {"a": "y" * 190, "b": "y" * 190, "c": "y" * 190}}, "the limit is 550"),
        ({"id": 999}, "does not match the automation"),
    ],
)
def test_manual_run_refuses_what_it_does_not_support(
    api: Client, body: dict[str, Any], mentions: str
) -> None:
    created = api.create(**COPY)
    response = api.post(f"/automations/{created['id']}/manual_run", body)
    assert response.status_code == 400
    assert mentions in response.json()["error"]
    assert api.get("/automation_runs", automation_id=created["id"]).json() == []
    fine = api.post(f"/automations/{created['id']}/manual_run", {"id": created["id"]})
    assert fine.status_code == 201
