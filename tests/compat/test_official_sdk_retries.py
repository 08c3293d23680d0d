"""Automatic retries through the official Files.com Python SDK, unchanged, and the raw API:
the automation's retry settings (and their ranges), and the run lineage both ways.

Real HTTP on 127.0.0.1, both databases. Runs fail through the store's lifecycle
functions (the ones the engine calls) and the retry is made by the real
scheduler pass at an injected clock's time.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import files_sdk.error as sdk_error
import httpx
import orjson
import pytest
from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.clock import ManualClock, to_rfc3339
from conveyor.engine.scheduler import run_pass
from conveyor.store.database import Database
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
MINUTE_US = 60_000_000
COPY = {"automation": "copy_file", "source": "*.txt", "destinations": ["out/"]}


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


def api(server: ServerThread, alice: Account, method: str, path: str, **kw: Any) -> Any:
    return httpx.request(
        method,
        f"{server.url}/api/rest/v1{path}",
        headers={"X-FilesAPI-Key": alice.key},
        **kw,
    )


def test_retry_settings_and_lineage_through_the_official_sdk(
    files: ModuleType, server: ServerThread, alice: Account, db: Database
) -> None:
    files.set_api_key(alice.key)
    automation = files.automation.create(
        {
            **COPY,
            "retry_on_failure_number_of_attempts": 2,
            "retry_on_failure_interval_in_minutes": 15,
        }
    )
    assert automation.retry_on_failure_number_of_attempts == 2
    assert automation.retry_on_failure_interval_in_minutes == 15
    updated = files.automation.update(automation.id, {"retry_on_failure_interval_in_minutes": 30})
    assert updated.retry_on_failure_interval_in_minutes == 30
    found = files.automation.find(automation.id)
    assert found.retry_on_failure_number_of_attempts == 2
    assert found.retry_on_failure_interval_in_minutes == 30

    failed = Seeder(db).run(automation.id, created_at=T0, outcome=(1, 2))  # partial_failure
    first = files.automation_run.find(failed.id)
    assert first.status == "partial_failure"
    assert first.retry_at == to_rfc3339(T0 + 30 * MINUTE_US)
    assert first.retried_at is None and first.retried_in_run_id is None

    clock = ManualClock(T0 + 30 * MINUTE_US)
    (retry_id,) = run_pass(db, clock).created
    first = files.automation_run.find(failed.id)
    retry = files.automation_run.find(retry_id)
    assert first.retried_in_run_id == retry_id
    assert first.retried_at == to_rfc3339(clock.now())
    assert retry.retry_of_run_id == failed.id
    assert retry.retry_at is None and retry.retried_in_run_id is None
    assert retry.runtime == first.runtime
    # The raw API says the same, and lists the retry with its automation's runs.
    raw = api(server, alice, "GET", f"/automation_runs/{retry_id}").json()
    assert raw["retry_of_run_id"] == failed.id
    listed = api(server, alice, "GET", "/automation_runs", params={"automation_id": automation.id})
    assert {r["id"]: r["retry_of_run_id"] for r in listed.json()} == {
        failed.id: None,
        retry_id: failed.id,
    }

    # The CLI shows the lineage too (`automation-runs get`, JSON and table).
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": alice.key}
    shown = CliRunner().invoke(
        app, ["automation-runs", "get", str(retry_id), "--format", "json"], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["retry_of_run_id"] == failed.id
    table = CliRunner().invoke(app, ["automation-runs", "get", str(failed.id)], env=env)
    assert re.search(rf"^retried_in_run_id +{retry_id}$", table.stdout, re.M)

    # null turns retries off; the SDK's update refuses None client-side, so the raw API.
    nulls = {
        "retry_on_failure_number_of_attempts": None,
        "retry_on_failure_interval_in_minutes": None,
    }
    response = api(server, alice, "PATCH", f"/automations/{automation.id}", json=nulls)
    assert response.status_code == 200, response.text
    off = files.automation.find(automation.id)
    assert off.retry_on_failure_number_of_attempts is None
    assert off.retry_on_failure_interval_in_minutes is None


OUT_OF_RANGE = [
    ({"retry_on_failure_number_of_attempts": 0}, "retry_on_failure_number_of_attempts must be"),
    ({"retry_on_failure_number_of_attempts": 11}, "retry_on_failure_number_of_attempts must be"),
    ({"retry_on_failure_interval_in_minutes": 4}, "retry_on_failure_interval_in_minutes must be"),
    (
        {"retry_on_failure_interval_in_minutes": 1441},
        "retry_on_failure_interval_in_minutes must be",
    ),
    ({"retry_on_failure_number_of_attempts": "three"}, "retry_on_failure_number_of_attempts"),
    ({"retry_on_failure_interval_in_minutes": 7.5}, "retry_on_failure_interval_in_minutes"),
]


@pytest.mark.parametrize(("fields", "message"), OUT_OF_RANGE)
def test_retry_settings_out_of_files_com_ranges_are_refused_naming_the_field(
    server: ServerThread, alice: Account, fields: dict[str, Any], message: str
) -> None:
    both = {
        "retry_on_failure_number_of_attempts": 3,
        "retry_on_failure_interval_in_minutes": 60,
        **fields,
    }
    response = api(server, alice, "POST", "/automations", json={**COPY, **both})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "bad-request/request-params-invalid"
    assert message in error["error"]
    assert api(server, alice, "GET", "/automations").json() == []
    created = api(server, alice, "POST", "/automations", json=COPY).json()
    response = api(server, alice, "PATCH", f"/automations/{created['id']}", json=fields)
    assert response.status_code == 400 and message in response.json()["error"]
    assert api(server, alice, "GET", f"/automations/{created['id']}").json() == created


def test_one_retry_setting_without_the_other_is_refused(
    files: ModuleType, server: ServerThread, alice: Account
) -> None:
    files.set_api_key(alice.key)
    with pytest.raises(sdk_error.RequestParamsInvalidError) as raised:
        files.automation.create({**COPY, "retry_on_failure_number_of_attempts": 3})
    assert "retry_on_failure_interval_in_minutes is required" in str(raised.value)
    created = files.automation.create(
        {
            **COPY,
            "retry_on_failure_number_of_attempts": 3,
            "retry_on_failure_interval_in_minutes": 5,
        }
    )
    response = api(
        server,
        alice,
        "PATCH",
        f"/automations/{created.id}",
        json={"retry_on_failure_number_of_attempts": None},
    )
    assert response.status_code == 400
    assert "retry_on_failure_number_of_attempts is required" in response.json()["error"]
    assert files.automation.find(created.id).retry_on_failure_number_of_attempts == 3


def test_runs_of_a_serialized_automation_are_queued_through_the_official_sdk(
    files: ModuleType, server: ServerThread, alice: Account
) -> None:
    """No worker runs here: every run of an always_serialize_jobs automation waits
    `queued` (tests/engine/test_retries.py has the worker's claim make it `running`),
    while another automation's runs are `running` from the start, as before."""
    files.set_api_key(alice.key)
    serial = files.automation.create({**COPY, "always_serialize_jobs": True})
    parallel = files.automation.create(COPY)
    for automation in (serial, serial, parallel):
        files.automation.manual_run(automation.id)
    statuses = {
        automation.id: [
            r.status for r in files.automation_run.list({"automation_id": automation.id})
        ]
        for automation in (serial, parallel)
    }
    assert statuses == {serial.id: ["queued", "queued"], parallel.id: ["running"]}
    queued = files.automation_run.list({"automation_id": serial.id, "filter": {"status": "queued"}})
    assert len(list(queued)) == 2
