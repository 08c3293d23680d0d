"""conveyor.sdk against the live server over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC

import httpx
import pytest
from sdk_helpers import Seeded, expected_fields, fields_of, seed_runs

from conveyor import sdk
from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

REQUEST_ID = re.compile(r"[0-9a-f]{16}")


def ids(records: Iterable[sdk.AutomationRun]) -> list[int]:
    return [record.id for record in records]


def test_list_returns_typed_records_newest_first(client: sdk.Client, seeded: Seeded) -> None:
    page = client.automation_run.list({"automation_id": seeded.automation_id, "per_page": 3})
    newest = list(reversed(seeded.runs))[:3]
    assert len(page) == 3
    assert list(page) == page.data
    assert all(type(record) is sdk.AutomationRun for record in page)
    assert [fields_of(record) for record in page] == [expected_fields(run) for run in newest]
    assert all(record.created_at and record.created_at.tzinfo is UTC for record in page)
    assert page.has_next_page and page.cursor == page.next_cursor
    assert not page.has_prev_page and page.prev_cursor is None
    with pytest.raises(AttributeError):
        page.data[0].status = "failure"  # type: ignore[misc]


def test_a_running_run_has_no_completed_at(client: sdk.Client, seeded: Seeded) -> None:
    executing = seeded.by_status("running")[0]
    record = client.automation_run.find(executing.id)
    assert (record.status, record.run_stage, record.completed_at) == ("running", "executing", None)


@pytest.mark.parametrize("prefetch", [True, False])
def test_auto_paging_iter_walks_every_page(
    client: sdk.Client, seeded: Seeded, prefetch: bool
) -> None:
    params = {
        "automation_id": seeded.automation_id,
        "per_page": 2,
        "sort_by": {"created_at": "asc"},
    }
    page = client.automation_run.list(params)
    walked = list(page.auto_paging_iter(prefetch=prefetch))
    assert [fields_of(record) for record in walked] == [expected_fields(r) for r in seeded.runs]
    # The page object ends on the last page, which has no next page.
    assert ids(page) == [seeded.runs[6].id]
    assert not page.has_next_page and page.has_prev_page


def test_load_next_and_prev_page_move_the_page(client: sdk.Client, seeded: Seeded) -> None:
    run_ids = [run.id for run in seeded.runs]
    page = client.automation_run.list(
        {"automation_id": seeded.automation_id, "per_page": 3, "sort_by": {"created_at": "asc"}}
    )
    assert ids(page) == run_ids[0:3]
    assert ids(page.load_next_page()) == run_ids[3:6]
    assert page.has_prev_page
    assert ids(page.load_next_page()) == run_ids[6:7]
    assert ids(page.load_next_page()) == run_ids[6:7]  # the last page stays
    assert ids(page.load_prev_page()) == run_ids[3:6]
    assert ids(page.load_prev_page()) == run_ids[0:3]
    assert not page.has_prev_page


def test_a_cursor_parameter_resumes_the_list(client: sdk.Client, seeded: Seeded) -> None:
    params = {"automation_id": seeded.automation_id, "per_page": 4}
    first = client.automation_run.list(params)
    resumed = client.automation_run.list({**params, "cursor": first.next_cursor})
    assert ids(resumed) == [run.id for run in reversed(seeded.runs)][4:]


def test_sort_and_filter(client: sdk.Client, seeded: Seeded) -> None:
    automation = seeded.automation_id
    by_status = client.automation_run.list(
        {"automation_id": automation, "sort_by": {"status": "asc"}}
    )
    expected = sorted(seeded.runs, key=lambda run: (str(run.status), run.id))
    assert ids(by_status) == [run.id for run in expected]

    failures = client.automation_run.list(
        {
            "automation_id": automation,
            "filter": {"status": "failure"},
            "sort_by": {"created_at": "desc"},
        }
    )
    assert ids(failures) == [run.id for run in reversed(seeded.by_status("failure"))]
    assert {record.failed_operations for record in failures} == {3}

    both = client.automation_run.list(
        {
            "automation_id": automation,
            "filter": {"automation_id": automation, "status": "success"},
            "sort_by": {"created_at": "asc"},
            "per_page": 1,
        }
    )
    assert ids(both.auto_paging_iter()) == [run.id for run in seeded.by_status("success")]


def test_find_returns_each_run_and_its_log_link_works(client: sdk.Client, seeded: Seeded) -> None:
    for run in seeded.runs:
        record = client.automation_run.find(run.id)
        assert fields_of(record) == expected_fields(run)
        assert client.automation_run.get(run.id) == record
    url = client.automation_run.find(seeded.runs[0].id).status_messages_url
    assert url is not None
    assert url.startswith(f"{client.base_url}/api/rest/v1/automation_runs/{seeded.runs[0].id}/")
    # The signed link is readable without a key.
    assert httpx.get(url).status_code == 200


@pytest.fixture
def module_settings(server: ServerThread) -> Iterator[None]:
    """Module-level SDK settings pointed at the live server, restored afterwards."""
    saved = (sdk.base_url, sdk.get_api_key())
    sdk.base_url = server.url
    yield
    sdk.base_url = saved[0]
    sdk.set_api_key(saved[1])
    sdk.close()


def test_module_level_calls_use_base_url_and_api_key(
    module_settings: None, seeded: Seeded, server: ServerThread
) -> None:
    sdk.set_api_key(seeded.account.key)
    page = sdk.automation_run.list({"per_page": 1, "automation_id": seeded.automation_id})
    assert ids(page) == [seeded.runs[-1].id]
    walked = sdk.automation_run.all({"per_page": 5, "automation_id": seeded.automation_id})
    assert len(list(walked.auto_paging_iter())) == 7
    assert fields_of(sdk.automation_run.find(seeded.runs[0].id)) == expected_fields(seeded.runs[0])
    assert sdk.automation_run.get(seeded.runs[1].id).id == seeded.runs[1].id

    client = sdk.default_client()
    assert sdk.default_client() is client
    sdk.set_api_key("0" * 64)  # a changed setting takes effect on the next call
    assert sdk.default_client() is not client
    with pytest.raises(sdk.InvalidCredentialsError):
        sdk.automation_run.find(seeded.runs[0].id)


def test_every_server_error_maps_to_its_class(
    seed: Seeder, seeded: Seeded, make_client: Callable[..., sdk.Client]
) -> None:
    client = make_client(seeded.account.key)
    automation = seeded.automation_id
    others = seed_runs(seed, seed.account("bob"), 1)
    asc = client.automation_run.list(
        {"automation_id": automation, "per_page": 2, "sort_by": {"created_at": "asc"}}
    )
    runs = client.automation_run
    cases: list[tuple[Callable[[], object], type[sdk.APIError], int, str]] = [
        (
            lambda: runs.list({"automation_id": automation, "cursor": "not-a-cursor"}),
            sdk.InvalidCursorError,
            400,
            "bad-request/invalid-cursor",
        ),
        (
            lambda: runs.list(
                {
                    "automation_id": automation,
                    "sort_by": {"status": "asc"},
                    "cursor": asc.next_cursor,
                }
            ),
            sdk.InvalidCursorTypeForSortError,
            400,
            "bad-request/invalid-cursor-type-for-sort",
        ),
        (
            lambda: runs.list({"automation_id": automation, "sort_by": {"color": "asc"}}),
            sdk.InvalidSortFieldError,
            400,
            "bad-request/invalid-sort-field",
        ),
        (
            lambda: runs.list(
                {"automation_id": automation, "sort_by": {"status": "asc", "created_at": "asc"}}
            ),
            sdk.MultipleSortParamsNotAllowedError,
            400,
            "bad-request/multiple-sort-params-not-allowed",
        ),
        (
            lambda: runs.list({"automation_id": automation, "filter": {"color": "red"}}),
            sdk.InvalidFilterFieldError,
            400,
            "bad-request/invalid-filter-field",
        ),
        (
            lambda: runs.list({"automation_id": automation, "filter": {"status": "nope"}}),
            sdk.InvalidFilterParamValueError,
            400,
            "bad-request/invalid-filter-param-value",
        ),
        (
            lambda: runs.list({"per_page": 1}),
            sdk.RequestParamsRequiredError,
            400,
            "bad-request/request-params-required",
        ),
        (
            lambda: runs.list({"automation_id": automation, "per_page": 0}),
            sdk.RequestParamsInvalidError,
            400,
            "bad-request/request-params-invalid",
        ),
        (
            lambda: runs.find("abc"),  # type: ignore[arg-type]
            sdk.RequestParamsInvalidError,
            400,
            "bad-request/request-params-invalid",
        ),
        (lambda: runs.find(10**12), sdk.NotFoundError, 404, "not-found"),
        (
            lambda: runs.list({"automation_id": 10**12}),
            sdk.NotFoundError,
            404,
            "not-found",
        ),
        # Another user's run and automation are not visible: 404, not 403.
        (lambda: runs.find(others.runs[0].id), sdk.NotFoundError, 404, "not-found"),
        (
            lambda: runs.list({"automation_id": others.automation_id}),
            sdk.NotFoundError,
            404,
            "not-found",
        ),
        (
            lambda: make_client(None).automation_run.find(seeded.runs[0].id),
            sdk.AuthenticationRequiredError,
            401,
            "not-authenticated/authentication-required",
        ),
        (
            lambda: make_client("f" * 64).automation_run.list({"automation_id": automation}),
            sdk.InvalidCredentialsError,
            401,
            "not-authenticated/invalid-credentials",
        ),
    ]
    for call, cls, status, error_type in cases:
        with pytest.raises(sdk.APIError) as caught:
            call()
        error = caught.value
        assert type(error) is cls, (error_type, error)
        assert (error.http_status, error.error_type) == (status, error_type)
        assert error.title and error.message and str(error) == f"HTTP {status} {error.message}"
        assert error.instance is not None and REQUEST_ID.fullmatch(error.instance)
        assert isinstance(error.json_body, dict) and error.json_body["type"] == error_type
    # The families, as the module docstring draws them.
    assert issubclass(sdk.InvalidCursorError, sdk.BadRequestError)
    assert issubclass(sdk.InvalidCredentialsError, sdk.NotAuthenticatedError)
    assert issubclass(sdk.TooManyRequestsError, sdk.RateLimitedError)
    assert issubclass(sdk.APIConnectionError, sdk.Error) and not issubclass(
        sdk.APIConnectionError, sdk.APIError
    )


class InProcessTransport(httpx.BaseTransport):
    """A sync transport that calls the ASGI app directly, through httpx's own ASGITransport."""

    def __init__(self, app: object) -> None:
        self._asgi = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(call())


def test_in_process_against_the_asgi_app(settings: Settings, db: Database, seed: Seeder) -> None:
    """The same client with the app injected as its transport: no socket at all."""
    seeded = seed_runs(seed, seed.account("carol"), 3)
    transport = InProcessTransport(create_app(settings, db))
    with sdk.Client("http://testserver", seeded.account.key, transport=transport) as client:
        walked = client.automation_run.list(
            {"automation_id": seeded.automation_id, "per_page": 1, "sort_by": {"created_at": "asc"}}
        ).auto_paging_iter()
        assert [fields_of(r) for r in walked] == [expected_fields(r) for r in seeded.runs]
        record = client.automation_run.find(seeded.runs[0].id)
        assert record.status_messages_url is not None
        assert record.status_messages_url.startswith("http://testserver/api/rest/v1/")
        with pytest.raises(sdk.NotFoundError):
            client.automation_run.find(10**12)
