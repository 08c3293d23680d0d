"""The official Files.com Python SDK, unchanged, against Conveyor's Automation Runs API.

Real HTTP on 127.0.0.1, both databases. The SDK maps an error answer to its
exception class by the last segment of the error's `type`, so each bad request
must raise exactly the class Files.com itself would make it raise.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import files_sdk.error as sdk_error
import httpx
import pytest
from files_sdk.models.automation_run import AutomationRun as SdkRun

from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.store import users
from conveyor.testing.seed import Account, Seeder

T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
SECOND = 1_000_000


def held_by_sdk(server_url: str, key: str, run_id: int) -> dict[str, Any]:
    """What the SDK model should hold for a run: the API's JSON (tests/api checks it
    field by field) less run_stage, which the SDK's model lacks, and null values."""
    reply = httpx.get(
        f"{server_url}/api/rest/v1/automation_runs/{run_id}", headers={"X-FilesAPI-Key": key}
    )
    assert reply.status_code == 200
    return {k: v for k, v in reply.json().items() if k != "run_stage" and v is not None}


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


@pytest.fixture
def history(seed: Seeder, alice: Account) -> tuple[int, list[AutomationRun]]:
    """Seven runs of one automation, created_at out of id order, two of them tied."""
    automation = seed.automation(alice)
    plan: list[tuple[int, dict[str, Any]]] = [
        (0, {"outcome": (1, 0)}),
        (30, {"outcome": (2, 1)}),
        (10, {"stage": RunStage.EXECUTING}),
        (10, {"outcome": (0, 1)}),
        (20, {"outcome": (4, 0)}),
        (5, {}),
        (40, {"outcome": (0, 0)}),
    ]
    made = [seed.run(automation, created_at=T0 + s * SECOND, **how) for s, how in plan]
    return automation, made


@pytest.fixture
def signed_in(
    files: ModuleType, alice: Account, history: tuple[int, list[AutomationRun]]
) -> tuple[int, list[AutomationRun]]:
    """The history, with the SDK using alice's key."""
    files.set_api_key(alice.key)
    return history


def newest_first(runs: list[AutomationRun]) -> list[int]:
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]


# ------------------------------------------------------------------ reading


def test_list_returns_a_page_with_the_seed_call_form(
    files: ModuleType, alice: Account, signed_in: tuple[int, list[AutomationRun]]
) -> None:
    automation, made = signed_in
    page = files.automation_run.list({"per_page": 1, "automation_id": automation})
    assert len(page) == 1 and page.has_next_page
    (record,) = list(page)
    assert isinstance(record, SdkRun)
    newest = max(made, key=lambda r: (r.created_at, r.id))
    assert record.get_attributes() == held_by_sdk(files.base_url, alice.key, newest.id)
    assert (record.id, record.created_at, record.status) == (
        newest.id,
        "2023-11-14T22:14:00Z",
        "success",
    )


def test_auto_paging_iter_yields_every_record_once_in_order(
    files: ModuleType, signed_in: tuple[int, list[AutomationRun]]
) -> None:
    automation, made = signed_in
    pages = files.automation_run.list({"per_page": 2, "automation_id": automation})
    assert [r.id for r in pages.auto_paging_iter()] == newest_first(made)
    ascending = files.automation_run.list(
        {"per_page": 3, "automation_id": automation, "sort_by": {"created_at": "asc"}}
    )
    assert [r.id for r in ascending.auto_paging_iter()] == list(reversed(newest_first(made)))
    failed = files.automation_run.list(
        {
            "per_page": 1,
            "automation_id": automation,
            "filter": {"status": "failure", "automation_id": automation},
            "sort_by": {"status": "desc"},
        }
    )
    expected = [r.id for r in made if r.status.value == "failure"]
    assert [r.id for r in failed.auto_paging_iter()] == sorted(expected, reverse=True)
    by_status = files.automation_run.all(
        {"per_page": 2, "automation_id": automation, "sort_by": {"status": "asc"}}
    )
    assert [r.id for r in by_status.auto_paging_iter()] == [
        r.id for r in sorted(made, key=lambda r: (r.status.value, r.id))
    ]


def test_find_returns_the_run_attributes(
    files: ModuleType, alice: Account, signed_in: tuple[int, list[AutomationRun]]
) -> None:
    _, made = signed_in
    for run in made:
        found = files.automation_run.find(run.id)
        attributes = found.get_attributes()
        assert attributes == held_by_sdk(files.base_url, alice.key, run.id)
        assert (found.id, found.automation_id, found.status) == (
            run.id,
            run.automation_id,
            run.status.value,
        )
        assert (found.successful_operations, found.failed_operations) == (
            run.successful_operations,
            run.failed_operations,
        )
        assert files.automation_run.get(run.id).get_attributes() == attributes
    # The SDK's model has no run_stage attribute and drops it; runtime stays our
    # date-time string although the SDK's annotation says double (docs/api.md).
    assert not hasattr(found, "run_stage")
    assert isinstance(found.runtime, str)


def test_status_messages_url_from_the_sdk_reads_without_a_key(
    files: ModuleType, seed: Seeder, alice: Account
) -> None:
    run = seed.run(seed.automation(alice), stage=RunStage.EXECUTING, messages=["planned 1"])
    files.set_api_key(alice.key)
    url = files.automation_run.find(run.id).status_messages_url
    assert url.startswith(f"{files.base_url}/api/rest/v1/automation_runs/{run.id}/")
    reply = httpx.get(url)
    assert reply.status_code == 200 and reply.text.endswith(" [info] planned 1\n")


# ------------------------------------------------------------------- errors


def test_each_bad_request_raises_the_matching_sdk_error(
    files: ModuleType, seed: Seeder, signed_in: tuple[int, list[AutomationRun]]
) -> None:
    automation, _ = signed_in
    bobs = seed.automation(seed.account("bob"))
    bobs_run = seed.run(bobs)
    cursor = files.automation_run.list({"per_page": 1, "automation_id": automation}).cursor
    assert cursor
    listing = files.automation_run.list
    cases: list[tuple[type[sdk_error.APIError], str, Any]] = [
        (sdk_error.InvalidCursorError, "invalid-cursor", {"cursor": "garbage"}),
        (
            sdk_error.InvalidCursorTypeForSortError,
            "invalid-cursor-type-for-sort",
            {"cursor": cursor, "sort_by": {"created_at": "asc"}},
        ),
        (sdk_error.InvalidSortFieldError, "invalid-sort-field", {"sort_by": {"id": "asc"}}),
        (
            sdk_error.InvalidSortFieldError,
            "invalid-sort-field",
            {"sort_by": {"created_at": "sideways"}},
        ),
        (
            sdk_error.MultipleSortParamsNotAllowedError,
            "multiple-sort-params-not-allowed",
            {"sort_by": {"created_at": "asc", "status": "asc"}},
        ),
        (
            sdk_error.InvalidFilterFieldError,
            "invalid-filter-field",
            {"filter": {"run_stage": "finished"}},
        ),
        (
            sdk_error.InvalidFilterParamValueError,
            "invalid-filter-param-value",
            {"filter": {"status": "nope"}},
        ),
        (
            sdk_error.InvalidFilterParamValueError,
            "invalid-filter-param-value",
            {"filter": {"automation_id": bobs}},
        ),
        (sdk_error.RequestParamsInvalidError, "request-params-invalid", {"per_page": 0}),
        (sdk_error.RequestParamsInvalidError, "request-params-invalid", {"per_page": 10_001}),
    ]
    for error_class, last_segment, extra in cases:
        with pytest.raises(error_class) as raised:
            listing({"automation_id": automation, "per_page": 1, **extra})
        assert type(raised.value) is error_class, extra
        assert raised.value.http_status == 400
        assert raised.value.json_body["type"] == f"bad-request/{last_segment}"
        assert str(raised.value) == f"HTTP 400 {raised.value.json_body['error']}"
    for call in (
        lambda: listing({"automation_id": bobs}),
        lambda: listing({"automation_id": 9_000_000}),
        lambda: files.automation_run.find(bobs_run.id),
        lambda: files.automation_run.find(9_000_000),
    ):
        with pytest.raises(sdk_error.NotFoundError) as missing:
            call()
        assert missing.value.http_status == 404
        assert missing.value.json_body["type"] == "not-found"


def test_unknown_and_revoked_keys_raise_invalid_credentials(
    files: ModuleType, seed: Seeder, alice: Account, history: tuple[int, list[AutomationRun]]
) -> None:
    automation, made = history
    revoked = seed.account("carol").key
    with seed.db.write() as conn:
        users.revoke_api_key(conn, revoked, seed.clock.now())
    for key in ("0" * 64, revoked):
        files.set_api_key(key)
        with pytest.raises(sdk_error.InvalidCredentialsError) as raised:
            files.automation_run.list({"automation_id": automation})
        assert raised.value.http_status == 401
        with pytest.raises(sdk_error.InvalidCredentialsError):
            files.automation_run.find(made[0].id)


def test_without_a_key_the_sdk_refuses_and_a_keyless_request_is_authentication_required(
    files: ModuleType, history: tuple[int, list[AutomationRun]]
) -> None:
    automation, _ = history
    # With neither key nor session the SDK sends nothing: a local AuthenticationError.
    with pytest.raises(sdk_error.AuthenticationError) as local:
        files.automation_run.list({"automation_id": automation})
    assert not isinstance(local.value, sdk_error.APIError) and local.value.http_status is None
    # With a session id instead it does send, without X-FilesAPI-Key; Conveyor has no
    # sessions, so the request is unauthenticated.
    files.session_id = "nosuchsession"
    with pytest.raises(sdk_error.AuthenticationRequiredError) as remote:
        files.automation_run.list({"automation_id": automation})
    assert remote.value.http_status == 401
    assert remote.value.json_body["type"] == "not-authenticated/authentication-required"


def test_the_sdk_checks_required_and_typed_parameters_itself(
    files: ModuleType, alice: Account
) -> None:
    files.set_api_key(alice.key)
    with pytest.raises(sdk_error.MissingParameterError):
        files.automation_run.list({"per_page": 1})
    with pytest.raises(sdk_error.InvalidParameterError):
        files.automation_run.list({"automation_id": "1"})
