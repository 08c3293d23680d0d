"""`client.automation` (create, list, find, update, delete, manual_run) and the run log
(`automation_run.log`, `automation_run.follow`) against the live server, on SQLite and PostgreSQL.

The server's clock stands still unless a test moves it, so dates and signed
links are known exactly and records can be compared with the API's own JSON.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from conveyor import sdk
from conveyor.app import create_app
from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.domain.runs import RunStage
from conveyor.sdk.run_log import log_lines
from conveyor.store import runs as runs_store
from conveyor.store.database import Database
from conveyor.testing.live_run import LIVE_RUN_LOG, LiveRunDriver, ObservedLines, log_entries
from conveyor.testing.postgres import free_port
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

# The ManualClock's start: 2023-11-14T22:13:20Z.
START = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)

COPY_BODY: dict[str, Any] = {
    "automation": "copy_file",
    "name": "Nightly reports",
    "description": "Copies the day's reports",
    "path": "inbox",
    "source": "reports/*.csv",
    "destinations": ["archive/%Y/", "backup/"],
    "exclude_pattern": "reports/tmp-*",
    "overwrite_files": True,
    "flatten_destination_structure": True,
    "trigger": "custom_schedule",
    "schedule_days_of_week": [1, 3],
    "schedule_times_of_day": ["06:30", "18:00"],
    "schedule_time_zone": "Europe/Paris",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def api(settings: Settings, db: Database, clock: ManualClock) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings, db, clock=clock)) as running:
        yield running


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


@pytest.fixture
def conveyor(api: ServerThread, alice: Account) -> Iterator[sdk.Client]:
    with sdk.Client(api.url, alice.key) as client:
        yield client


def api_json(api: ServerThread, key: str, path: str) -> Any:
    """The API's own answer, asked without the SDK."""
    response = httpx.get(f"{api.url}/api/rest/v1{path}", headers={"X-FilesAPI-Key": key})
    response.raise_for_status()
    return orjson.loads(response.content)


def folder_body(name: str, *destinations: str) -> dict[str, Any]:
    return {"automation": "create_folder", "name": name, "destinations": list(destinations)}


def test_create_returns_a_typed_record_with_every_field(
    conveyor: sdk.Client, api: ServerThread, alice: Account
) -> None:
    created = conveyor.automation.create(COPY_BODY)
    assert created == sdk.Automation(
        id=created.id,
        automation="copy_file",
        name="Nightly reports",
        description="Copies the day's reports",
        disabled=False,
        deleted=False,
        path="inbox",
        source="reports/*.csv",
        destinations=("archive/%Y/", "backup/"),
        destination_replace_from=None,
        destination_replace_to=None,
        exclude_pattern="reports/tmp-*",
        flatten_destination_structure=True,
        overwrite_files=True,
        always_overwrite_size_matching_files=False,
        path_time_zone=None,
        trigger="custom_schedule",
        interval=None,
        recurring_day=None,
        schedule_days_of_week=(1, 3),
        schedule_times_of_day=("06:30", "18:00"),
        schedule_time_zone="Europe/Paris",
        human_readable_schedule="Every Monday and Wednesday at 06:30, 18:00 (Europe/Paris)",
        trigger_actions=(),
        recurring_days=(),
        holiday_region=None,
        always_serialize_jobs=False,
        retry_on_failure_number_of_attempts=None,
        retry_on_failure_interval_in_minutes=None,
        value=None,
        webhook_url=None,
        user_id=alice.user.id,
        last_modified_at=START,
    )
    # The record gives back exactly what the API sends, field order included.
    wire = api_json(api, alice.key, f"/automations/{created.id}")
    assert list(created.to_json().items()) == list(wire.items())
    assert tuple(wire) == sdk.AUTOMATION_FIELDS
    assert conveyor.automation.find(created.id) == created == conveyor.automation.get(created.id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.name = "changed"  # type: ignore[misc]


def test_a_webhook_automation_has_its_webhook_url(conveyor: sdk.Client) -> None:
    hook = conveyor.automation.create({**folder_body("hook", "in"), "trigger": "webhook"})
    assert hook.webhook_url is not None
    assert re.fullmatch(
        re.escape(conveyor.base_url) + r"/api/rest/v1/webhooks/[0-9a-f]{48}", hook.webhook_url
    )


def test_list_pages_sorts_and_filters(conveyor: sdk.Client) -> None:
    made = [
        conveyor.automation.create(folder_body("delta", "d")),
        conveyor.automation.create({**COPY_BODY, "name": "alpha", "trigger": "manual"}),
        conveyor.automation.create(folder_body("charlie", "c")),
        conveyor.automation.create({**folder_body("bravo", "b"), "disabled": True}),
        conveyor.automation.create(folder_body("echo", "e")),
    ]
    ids = [automation.id for automation in made]

    page = conveyor.automation.list({"per_page": 2})
    assert [a.id for a in page] == ids[:2]
    assert page.has_next_page and not page.has_prev_page
    assert all(type(record) is sdk.Automation for record in page)
    assert list(page.auto_paging_iter()) == made  # by id, every page
    assert not page.has_next_page and [a.id for a in page] == ids[4:]

    resumed = conveyor.automation.all({"per_page": 2, "cursor": page.prev_cursor})
    assert [a.id for a in resumed] == ids[2:4]

    by_name = conveyor.automation.list({"sort_by": {"name": "desc"}, "per_page": 1})
    names = [a.name for a in by_name.auto_paging_iter(prefetch=False)]
    assert names == ["echo", "delta", "charlie", "bravo", "alpha"]

    disabled = conveyor.automation.list({"filter": {"disabled": True}})
    assert [a.id for a in disabled] == [ids[3]]
    copies = conveyor.automation.list({"filter": {"automation": "copy_file"}})
    assert [a.name for a in copies] == ["alpha"]

    with pytest.raises(sdk.RequestParamsInvalidError) as caught:
        conveyor.automation.list({"per_page": 0})
    assert caught.value.message == "Parameter per_page must be between 1 and 10000, got 0."
    with pytest.raises(sdk.InvalidSortFieldError):
        conveyor.automation.list({"sort_by": {"color": "asc"}})
    with pytest.raises(sdk.InvalidCursorError):
        conveyor.automation.list({"cursor": "not-a-cursor"})


def test_update_changes_only_the_given_fields(conveyor: sdk.Client, clock: ManualClock) -> None:
    created = conveyor.automation.create(COPY_BODY)
    clock.advance(60)
    renamed = conveyor.automation.update(created.id, {"name": "Renamed"})
    # A new name is not a change of behaviour: last_modified_at stays (as in Files.com).
    assert renamed == dataclasses.replace(created, name="Renamed")

    clock.advance(60)
    changed = conveyor.automation.update(
        created.id, {"destinations": ["elsewhere/"], "disabled": True, "trigger": "manual"}
    )
    assert changed == dataclasses.replace(
        renamed,
        destinations=("elsewhere/",),
        disabled=True,
        trigger="manual",
        human_readable_schedule=None,
        last_modified_at=datetime(2023, 11, 14, 22, 15, 20, tzinfo=UTC),
    )
    assert conveyor.automation.find(created.id) == changed

    with pytest.raises(sdk.InvalidPathError) as caught:
        conveyor.automation.update(created.id, {"source": "../outside/*"})
    assert caught.value.message == (
        "source '../outside/*' must not contain empty, '.' or '..' segments."
    )
    assert conveyor.automation.find(created.id) == changed  # a refused update changes nothing


def test_delete_hides_the_automation_but_keeps_its_runs(conveyor: sdk.Client) -> None:
    kept = conveyor.automation.create(folder_body("kept", "k"))
    doomed = conveyor.automation.create(folder_body("doomed", "x"))
    run = conveyor.automation.manual_run(doomed.id)

    assert conveyor.automation.delete(doomed.id) is None  # type: ignore[func-returns-value]
    with pytest.raises(sdk.NotFoundError) as caught:
        conveyor.automation.find(doomed.id)
    assert caught.value.message == f"Automation {doomed.id} not found."
    assert list(conveyor.automation.list()) == [kept]
    for again in (conveyor.automation.delete, conveyor.automation.destroy):
        with pytest.raises(sdk.NotFoundError):
            again(doomed.id)
    with pytest.raises(sdk.NotFoundError):
        conveyor.automation.manual_run(doomed.id)
    assert conveyor.automation_run.find(run.id) == run


def test_manual_run_returns_the_created_run(
    conveyor: sdk.Client, api: ServerThread, alice: Account
) -> None:
    automation = conveyor.automation.create(folder_body("now", "today/%Y-%m-%d"))
    run = conveyor.automation.manual_run(automation.id)
    assert type(run) is sdk.AutomationRun
    assert (run.automation_id, run.status, run.run_stage) == (
        automation.id,
        "running",
        "queued_for_planning",
    )
    assert (run.created_at, run.runtime, run.completed_at) == (START, START, None)
    assert (run.successful_operations, run.failed_operations) == (0, 0)
    # The same record the API shows for that run, signed link included.
    assert run.to_json() == api_json(api, alice.key, f"/automation_runs/{run.id}")
    listed = conveyor.automation_run.list({"automation_id": automation.id})
    assert list(listed) == [run]

    conveyor.automation.update(automation.id, {"disabled": True})
    with pytest.raises(sdk.AutomationCannotBeRunManuallyError) as caught:
        conveyor.automation.manual_run(automation.id)
    assert (caught.value.http_status, caught.value.error_type, caught.value.message) == (
        422,
        "processing-failure/automation-cannot-be-run-manually",
        f"Automation {automation.id} is disabled; enable it before running it.",
    )
    assert [r.id for r in conveyor.automation_run.list({"automation_id": automation.id})] == [
        run.id
    ]


def test_invalid_automations_raise_their_class_and_create_nothing(
    conveyor: sdk.Client, api: ServerThread, seed: Seeder
) -> None:
    cases: list[tuple[dict[str, Any], type[sdk.APIError], str | None]] = [
        (
            {"automation": "as2_send"},
            sdk.RequestParamsInvalidError,
            "automation 'as2_send' is not supported; supported types are "
            "create_folder, copy_file, move_file, delete_file.",
        ),
        ({}, sdk.RequestParamsRequiredError, "Parameter missing: automation"),
        (
            {"automation": "create_folder"},
            sdk.RequestParamsRequiredError,
            "Parameter missing: destinations (the folders create_folder creates)",
        ),
        (
            folder_body("abs", "/etc"),
            sdk.InvalidPathError,
            "destination '/etc' must not start with a slash.",
        ),
        (
            {**folder_body("t", "x"), "trigger": "on_tuesdays"},
            sdk.RequestParamsInvalidError,
            "trigger 'on_tuesdays' is not supported; supported triggers are "
            "manual, daily, custom_schedule, webhook, action.",
        ),
        ({**folder_body("d", "x"), "disabled": "maybe"}, sdk.RequestParamsInvalidError, None),
    ]
    for body, cls, message in cases:
        with pytest.raises(sdk.APIError) as caught:
            conveyor.automation.create(body)
        assert type(caught.value) is cls, (body, caught.value)
        assert caught.value.http_status == 400
        if message is not None:
            assert caught.value.message == message
    assert list(conveyor.automation.list()) == []

    bob = seed.account("bob")
    with sdk.Client(api.url, bob.key) as other:
        hidden = other.automation.create(folder_body("bob's", "b"))
    for call in (
        lambda: conveyor.automation.find(hidden.id),
        lambda: conveyor.automation.update(hidden.id, {"name": "mine"}),
        lambda: conveyor.automation.manual_run(hidden.id),
        lambda: conveyor.automation.delete(hidden.id),
    ):
        with pytest.raises(sdk.NotFoundError):
            call()
    with sdk.Client(api.url, None) as anonymous, pytest.raises(sdk.AuthenticationRequiredError):
        anonymous.automation.create(folder_body("no key", "n"))


@pytest.fixture
def module_settings(api: ServerThread, alice: Account) -> Iterator[None]:
    """Module-level SDK settings pointed at the live server, restored afterwards."""
    saved = (sdk.base_url, sdk.get_api_key())
    sdk.base_url = api.url
    sdk.set_api_key(alice.key)
    yield
    sdk.base_url = saved[0]
    sdk.set_api_key(saved[1])
    sdk.close()


def test_module_level_calls(module_settings: None, db: Database, clock: ManualClock) -> None:
    created = sdk.automation.create(folder_body("module", "m"))
    assert sdk.automation.find(created.id) == created == sdk.automation.get(created.id)
    assert list(sdk.automation.list({"per_page": 1})) == [created]
    assert list(sdk.automation.all()) == [created]
    updated = sdk.automation.update(created.id, {"name": "module level"})
    assert updated.name == "module level"
    run = sdk.automation.manual_run(created.id)
    assert sdk.automation_run.find(run.id) == run
    with db.write() as conn:
        runs_store.finish_run(
            conn, run.id, clock.now(), planning_failed=True, message="Planning failed"
        )
    assert log_entries(log_lines(sdk.automation_run.log(run.id))) == [("info", "Planning failed")]
    assert list(sdk.automation_run.follow(run.id)) == [
        "2023-11-14T22:13:20Z [info] Planning failed"
    ]
    sdk.automation.delete(created.id)
    with pytest.raises(sdk.NotFoundError):
        sdk.automation.find(created.id)
    sdk.automation.destroy(sdk.automation.create(folder_body("other", "o")).id)
    assert list(sdk.automation.list()) == []


def test_log_reads_the_status_messages_without_the_key(
    conveyor: sdk.Client, api: ServerThread, alice: Account, seed: Seeder
) -> None:
    automation = conveyor.automation.create(folder_body("logged", "l"))
    messages = ["Planned 2 operations", "Created folder l", "Skipped l: it exists"]
    run = seed.run(automation.id, outcome=(2, 0), messages=messages)

    sent: list[httpx.Request] = []
    watched = httpx.Client(event_hooks={"request": [sent.append]})
    with sdk.Client(api.url, alice.key, http_client=watched) as client:
        text = client.automation_run.log(run.id)
    watched.close()
    record = conveyor.automation_run.find(run.id)
    assert record.status_messages_url is not None
    assert text == httpx.get(record.status_messages_url).text
    assert log_entries(log_lines(text)) == [("info", message) for message in messages]
    # The run was found with the key; its signed link was read without it.
    assert [(r.url.path, "x-filesapi-key" in r.headers) for r in sent] == [
        (f"/api/rest/v1/automation_runs/{run.id}", True),
        (f"/api/rest/v1/automation_runs/{run.id}/status_messages", False),
    ]

    empty = seed.run(automation.id)
    assert conveyor.automation_run.log(empty.id) == ""
    with pytest.raises(sdk.NotFoundError):
        conveyor.automation_run.log(10**12)


def test_follow_yields_each_line_once_while_the_run_progresses(
    conveyor: sdk.Client, db: Database
) -> None:
    automation = conveyor.automation.create(folder_body("live", "reports"))
    run = conveyor.automation.manual_run(automation.id)
    observed = ObservedLines()
    driver = LiveRunDriver(db, run.id, observed)
    follower = conveyor.automation_run.follow(run.id, interval=0.05)
    driver.start()
    for line in follower:
        observed.add(line)
    driver.join()
    assert driver.error is None, driver.error

    final = conveyor.automation_run.log(run.id)
    assert observed.lines == log_lines(final)
    assert log_entries(observed.lines) == list(LIVE_RUN_LOG)
    assert follower.run is not None
    assert (follower.run.run_stage, follower.run.status) == ("finished", "partial_failure")
    assert (follower.run.successful_operations, follower.run.failed_operations) == (2, 1)
    assert follower.lines_seen == len(LIVE_RUN_LOG)
    assert follower.polls > 1


def test_follow_outlives_expiring_links_and_stops_at_finished(
    conveyor: sdk.Client, db: Database, clock: ManualClock, settings: Settings
) -> None:
    """Each poll signs a fresh link: a follow that takes longer than a link lives keeps going."""
    automation = conveyor.automation.create(folder_body("slow", "s"))
    run = conveyor.automation.manual_run(automation.id)
    first_link = run.status_messages_url
    assert first_link is not None

    def write(step: int) -> None:
        with db.write() as conn:
            now = clock.now()
            if step == 0:
                runs_store.advance_stage(conn, run.id, RunStage.PLANNING)
                runs_store.append_message(conn, run.id, now, "Planned 1 operation")
            elif step == 1:
                for stage in (RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING):
                    runs_store.advance_stage(conn, run.id, stage)
            else:
                runs_store.record_operation(conn, run.id, True, now, "Created folder s")
                runs_store.finish_run(conn, run.id, now, message="Run finished")

    steps = iter(range(3))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        # The follower's wait between polls: the run moves on and the clock
        # passes the links' lifetime, so every link signed so far expires.
        waits.append(seconds)
        clock.advance(settings.signed_url_ttl + 1)
        write(next(steps))

    follower = conveyor.automation_run.follow(run.id, interval=2.5, sleep=sleep)
    texts = [text for _, text in log_entries(list(follower))]
    assert texts == ["Planned 1 operation", "Created folder s", "Run finished"]
    assert waits == [2.5, 2.5, 2.5] and follower.polls == 4
    expired = httpx.get(first_link)  # the first link expired long ago
    assert (expired.status_code, expired.json()["type"]) == (403, "not-authorized")

    # A finished run: one poll, its whole log, no wait.
    again = conveyor.automation_run.follow(run.id, sleep=waits.append)
    assert len(list(again)) == 3 and again.polls == 1 and len(waits) == 3


@pytest.mark.parametrize("interval", [0.0, 0.01, 61.0])
def test_follow_refuses_an_interval_out_of_bounds(conveyor: sdk.Client, interval: float) -> None:
    with pytest.raises(ValueError) as caught:
        conveyor.automation_run.follow(1, interval=interval)
    assert str(caught.value) == (f"interval must be between 0.05 and 60.0 seconds, got {interval}")


def test_only_reads_are_retried(conveyor: sdk.Client, alice: Account) -> None:
    """Creating, updating, deleting or running twice is not harmless, so only GETs are resent.

    Nothing listens on the port: a real refused connection.
    """
    port = free_port()
    with sdk.Client(f"http://127.0.0.1:{port}", alice.key, sleep=lambda _: None) as down:
        calls: list[tuple[Callable[[], object], str]] = [
            (lambda: down.automation.create(folder_body("x", "x")), ""),
            (lambda: down.automation.update(1, {"name": "x"}), ""),
            (lambda: down.automation.delete(1), ""),
            (lambda: down.automation.manual_run(1), ""),
            (lambda: down.automation.find(1), " after 4 attempts"),
            (lambda: down.automation.list(), " after 4 attempts"),
        ]
        for call, attempts in calls:
            with pytest.raises(sdk.APIConnectionError) as caught:
                call()
            assert caught.value.message == (
                f"Could not get an answer from http://127.0.0.1:{port}{attempts}: "
                "ConnectError: [Errno 111] Connection refused"
            )


def test_writes_are_not_resent_after_a_server_error(alice: Account) -> None:
    """A 503 cannot be provoked from the real server on demand, so a scripted transport (a
    fake) answers it and counts the requests; a GET is retried, the writes are not."""
    seen: list[tuple[str, str, bytes]] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        return httpx.Response(
            503,
            json={"error": "Down", "http-code": 503, "type": "service-unavailable"},
        )

    transport = httpx.MockTransport(unavailable)
    with sdk.Client(
        "http://conveyor.test", alice.key, transport=transport, sleep=lambda _: None
    ) as client:
        for call in (
            lambda: client.automation.create({"automation": "create_folder"}),
            lambda: client.automation.update(7, {"disabled": False}),
            lambda: client.automation.delete(7),
            lambda: client.automation.manual_run(7),
        ):
            with pytest.raises(sdk.ServiceUnavailableError):
                call()
        assert seen == [
            ("POST", "/api/rest/v1/automations", b'{"automation":"create_folder"}'),
            ("PATCH", "/api/rest/v1/automations/7", b'{"disabled":false}'),
            ("DELETE", "/api/rest/v1/automations/7", b""),
            ("POST", "/api/rest/v1/automations/7/manual_run", b""),
        ]
        seen.clear()
        with pytest.raises(sdk.ServiceUnavailableError):
            client.automation.find(7)
        assert [method for method, _, _ in seen] == ["GET"] * 4
