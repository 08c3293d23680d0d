"""Automations from both official Files.com SDKs, unchanged: create, find, update,
list with auto-pagination, manual_run and delete; each SDK's record matches
the API's JSON. Real HTTP on 127.0.0.1, both databases."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import files_sdk.error as sdk_error
import httpx
import pytest
from js_sdk import error_class, run_js, value

from conveyor.testing.seed import Account, Seeder

API = "/api/rest/v1"
NEW = {
    "name": "Nightly copy",
    "automation": "copy_file",
    "trigger": "manual",
    "path": "in",
    "source": "*.csv",
    "destinations": ["out/"],
}


def api_json(base_url: str, key: str, path: str) -> Any:
    reply = httpx.get(f"{base_url}{API}{path}", headers={"X-FilesAPI-Key": key})
    assert reply.status_code == 200, reply.text
    return reply.json()


def runs_of(base_url: str, key: str, automation: int) -> list[int]:
    return [
        r["id"] for r in api_json(base_url, key, f"/automation_runs?automation_id={automation}")
    ]


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


def test_python_sdk_creates_finds_updates_lists_runs_and_deletes(
    files: ModuleType, seed: Seeder, alice: Account
) -> None:
    files.set_api_key(alice.key)
    created = files.automation.create(NEW)
    shown = api_json(files.base_url, alice.key, f"/automations/{created.id}")
    assert created.get_attributes() == {k: v for k, v in shown.items() if v is not None}
    assert (created.name, created.automation, created.destinations) == (
        "Nightly copy",
        "copy_file",
        ["out/"],
    )
    found = files.automation.find(created.id)
    assert found.get_attributes() == created.get_attributes()
    updated = files.automation.update(created.id, {"name": "Renamed", "source": "*.txt"})
    assert (updated.name, updated.source) == ("Renamed", "*.txt")
    assert api_json(files.base_url, alice.key, f"/automations/{created.id}")["name"] == "Renamed"
    found.update({"description": "via the record"})
    assert files.automation.find(created.id).description == "via the record"
    others = [seed.automation(alice, f"more {i}") for i in range(4)]
    listed = files.automation.list({"per_page": 2})
    assert [a.id for a in listed.auto_paging_iter()] == sorted([created.id, *others])
    files.automation.manual_run(created.id)
    found.manual_run()
    assert len(runs_of(files.base_url, alice.key, created.id)) == 2
    files.automation.update(created.id, {"disabled": True})
    with pytest.raises(sdk_error.AutomationCannotBeRunManuallyError) as refused:
        files.automation.manual_run(created.id)
    assert refused.value.http_status == 422
    files.automation.delete(created.id)
    with pytest.raises(sdk_error.NotFoundError):
        files.automation.find(created.id)
    files.automation.find(others[0]).delete()
    with pytest.raises(sdk_error.NotFoundError):
        files.automation.find(others[0])


def test_javascript_sdk_creates_finds_updates_lists_runs_and_deletes(
    server: Any, seed: Seeder, alice: Account
) -> None:
    (created,) = run_js(
        server.url, alice.key, {"model": "Automation", "method": "create", "args": [NEW]}
    )
    made = value(created)
    automation = made["id"]
    assert made == api_json(server.url, alice.key, f"/automations/{automation}")
    others = [seed.automation(alice, f"more {i}") for i in range(4)]
    answers = run_js(
        server.url,
        alice.key,
        {"model": "Automation", "method": "find", "args": [automation]},
        {"model": "Automation", "find": automation, "method": "update", "args": [{"name": "JS"}]},
        {"model": "Automation", "method": "list", "args": [{"per_page": 2}]},
        {"model": "Automation", "find": automation, "method": "manualRun", "args": []},
        {"model": "Automation", "find": automation, "method": "manualRun", "args": []},
        {"model": "Automation", "find": others[0], "method": "delete", "args": []},
        {"model": "Automation", "method": "find", "args": [others[0]]},
        {"model": "Automation", "method": "find", "args": [9_999_999]},
        {"model": "AutomationRun", "method": "find", "args": [9_999_999]},
    )
    assert value(answers[0]) == made
    assert value(answers[1])["name"] == "JS"
    assert api_json(server.url, alice.key, f"/automations/{automation}")["name"] == "JS"
    assert [a["id"] for a in value(answers[2])] == sorted([automation, *others])
    value(answers[3])
    value(answers[4])
    runs = runs_of(server.url, alice.key, automation)
    assert len(runs) == 2
    value(answers[5])
    assert [error_class(a) for a in answers[6:]] == ["NotFoundError"] * 3
    (run,) = run_js(
        server.url, alice.key, {"model": "AutomationRun", "method": "find", "args": [runs[0]]}
    )
    assert value(run) == api_json(server.url, alice.key, f"/automation_runs/{runs[0]}")
    disabled = run_js(
        server.url,
        alice.key,
        {
            "model": "Automation",
            "find": automation,
            "method": "update",
            "args": [{"disabled": True}],
        },
        {"model": "Automation", "find": automation, "method": "manualRun", "args": []},
        {"model": "Automation", "find": automation, "method": "delete", "args": []},
        {"model": "Automation", "method": "find", "args": [automation]},
    )
    assert value(disabled[0])["disabled"] is True
    assert error_class(disabled[1]) == "ProcessingFailure_AutomationCannotBeRunManuallyError"
    value(disabled[2])
    assert error_class(disabled[3]) == "NotFoundError"
