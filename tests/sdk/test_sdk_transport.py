"""Retries, timeouts, error mapping and paging of conveyor.sdk on scripted answers.

These use httpx.MockTransport (a fake) because what they need cannot be
provoked from the real server on demand: 5xx answers, 429 with a chosen
Retry-After, dropped connections, timeouts, non-JSON bodies and cursor loops.
Sleep and jitter are injected, so no test waits. One test uses a real closed
port for connection refused.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from conveyor import sdk
from conveyor.sdk.error import error_for_response
from conveyor.sdk.http import HttpSession, RetryPolicy
from conveyor.testing.postgres import free_port

BASE = "http://conveyor.test"
KEY = "a" * 64
RUN = {
    "id": 7,
    "automation_id": 3,
    "completed_at": None,
    "created_at": "2024-02-16T12:46:41Z",
    "runtime": "2024-02-16T12:46:00Z",
    "status": "running",
    "run_stage": "executing",
    "successful_operations": 2,
    "failed_operations": 0,
    "status_messages_url": f"{BASE}/api/rest/v1/automation_runs/7/status_messages?x=1",
}

Step = Callable[[httpx.Request], httpx.Response]


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Step:
    content = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None else b""
    return lambda request: httpx.Response(status, content=content, headers=headers)


def fail(error: type[httpx.TransportError]) -> Step:
    def raise_(request: httpx.Request) -> httpx.Response:
        raise error("scripted failure", request=request)

    return raise_


def files_error(status: int, error_type: str, title: str) -> dict[str, Any]:
    return {
        "error": f"{title}!",
        "http-code": status,
        "instance": "0123456789abcdef",
        "title": title,
        "type": error_type,
    }


class Script:
    """Answers requests with its steps in order (the last one repeats) and records them."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)


class Harness:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def client(self, script: Script, jitter: float | None = 1.0, **options: Any) -> sdk.Client:
        if jitter is not None:
            options["jitter"] = lambda: jitter
        return sdk.Client(
            BASE, KEY, transport=httpx.MockTransport(script), sleep=self.sleeps.append, **options
        )


@pytest.fixture
def harness() -> Harness:
    return Harness()


def test_5xx_is_retried_with_exponential_backoff(harness: Harness) -> None:
    script = Script(answer(503), answer(500), answer(502), answer(200, RUN))
    run = harness.client(script).automation_run.find(7)
    assert run.id == 7 and run.run_stage == "executing"
    assert len(script.requests) == 4
    assert harness.sleeps == [0.1, 0.2, 0.4]


def test_retries_are_bounded_and_jitter_halves_at_most(harness: Harness) -> None:
    script = Script(answer(500, files_error(500, "internal-server-error", "Internal Server Error")))
    with pytest.raises(sdk.InternalServerError) as caught:
        harness.client(script, jitter=0.0).automation_run.find(7)
    assert len(script.requests) == 4  # the first try and 3 retries (the default)
    assert harness.sleeps == [0.05, 0.1, 0.2]
    assert caught.value.http_status == 500 and caught.value.instance == "0123456789abcdef"


def test_backoff_is_capped(harness: Harness) -> None:
    script = Script(answer(504))
    with pytest.raises(sdk.InternalServerError):
        harness.client(script, max_retries=6).automation_run.find(7)
    assert harness.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


def test_default_jitter_stays_within_bounds(harness: Harness) -> None:
    script = Script(answer(500))
    with pytest.raises(sdk.InternalServerError):
        harness.client(script, jitter=None, max_retries=5).automation_run.find(7)
    nominal = [0.1, 0.2, 0.4, 0.8, 1.6]
    assert len(harness.sleeps) == 5
    assert all(
        full / 2 <= slept <= full for slept, full in zip(harness.sleeps, nominal, strict=True)
    )


def test_429_retry_after_is_honoured_and_capped(harness: Harness) -> None:
    limited = files_error(429, "rate-limited/too-many-requests", "Too Many Requests")
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    script = Script(
        answer(429, limited, {"Retry-After": "7"}),
        answer(429, limited, {"Retry-After": "1000"}),
        answer(429, limited),
        answer(200, RUN),
    )
    assert harness.client(script).automation_run.find(7).id == 7
    # Told 7 s: waits 7; told 1000 s: waits the 30 s cap; told nothing: backoff.
    assert harness.sleeps == [7.0, 30.0, 0.4]

    harness.sleeps.clear()
    dated = Script(answer(429, limited, {"Retry-After": later}), answer(200, RUN))
    assert harness.client(dated).automation_run.find(7).id == 7
    assert len(harness.sleeps) == 1 and 3.0 < harness.sleeps[0] <= 5.0


def test_429_after_the_last_retry_raises_too_many_requests(harness: Harness) -> None:
    limited = files_error(429, "rate-limited/too-many-requests", "Too Many Requests")
    script = Script(answer(429, limited, {"Retry-After": "2"}))
    with pytest.raises(sdk.TooManyRequestsError) as caught:
        harness.client(script, max_retries=1).automation_run.find(7)
    assert len(script.requests) == 2 and harness.sleeps == [2.0]
    error = caught.value
    assert (error.http_status, error.error_type, error.title) == (
        429,
        "rate-limited/too-many-requests",
        "Too Many Requests",
    )
    assert error.retry_after == 2.0 and error.message == "Too Many Requests!"


def test_connection_errors_are_retried_then_raised_from_httpx(harness: Harness) -> None:
    recovering = Script(fail(httpx.ConnectError), fail(httpx.ReadError), answer(200, RUN))
    assert harness.client(recovering).automation_run.find(7).id == 7
    assert len(recovering.requests) == 3 and harness.sleeps == [0.1, 0.2]

    harness.sleeps.clear()
    down = Script(fail(httpx.ReadTimeout))
    with pytest.raises(sdk.APIConnectionError) as caught:
        harness.client(down).automation_run.find(7)
    assert len(down.requests) == 4 and harness.sleeps == [0.1, 0.2, 0.4]
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert str(caught.value) == (
        f"Could not get an answer from {BASE} after 4 attempts: ReadTimeout: scripted failure"
    )


def test_connection_refused_on_a_closed_port(harness: Harness) -> None:
    port = free_port()  # bound and released: nothing listens there
    client = sdk.Client(f"http://127.0.0.1:{port}", KEY, sleep=harness.sleeps.append)
    with client, pytest.raises(sdk.APIConnectionError) as caught:
        client.automation_run.list({"automation_id": 1})
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(harness.sleeps) == 3
    assert "after 4 attempts" in caught.value.message


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "bad-request/invalid-cursor", sdk.InvalidCursorError),
        (404, "not-found", sdk.NotFoundError),
        (401, "not-authenticated/invalid-credentials", sdk.InvalidCredentialsError),
        (501, "internal-server-error/not-implemented", sdk.InternalServerError),
    ],
)
def test_client_errors_and_501_are_not_retried(
    harness: Harness, status: int, error_type: str, cls: type[sdk.APIError]
) -> None:
    script = Script(answer(status, files_error(status, error_type, "Scripted")))
    with pytest.raises(cls):
        harness.client(script).automation_run.find(7)
    assert len(script.requests) == 1 and harness.sleeps == []


def test_max_retries_zero_sends_once(harness: Harness) -> None:
    script = Script(answer(503))
    with pytest.raises(sdk.ServiceUnavailableError):
        harness.client(script, max_retries=0).automation_run.find(7)
    assert len(script.requests) == 1 and harness.sleeps == []


def test_only_get_is_retried(harness: Harness) -> None:
    """A request that may change something is never sent twice by the SDK."""
    for step, error in [
        (answer(503), sdk.ServiceUnavailableError),
        (fail(httpx.ReadError), sdk.APIConnectionError),
    ]:
        script = Script(step)
        session = HttpSession(
            BASE,
            KEY,
            timeout=5,
            retry=RetryPolicy(),
            transport=httpx.MockTransport(script),
            sleep=harness.sleeps.append,
        )
        with pytest.raises(error):
            session.request("POST", "/automations/1/manual_run")
        assert len(script.requests) == 1 and harness.sleeps == []
        session.close()


def test_requests_carry_key_timeout_and_files_com_query(harness: Harness) -> None:
    page = answer(200, [RUN], {"X-Files-Cursor-Next": "c2"})
    script = Script(page, answer(200, [RUN]), answer(200, RUN))
    client = harness.client(script, timeout=2.5)
    listed = client.automation_run.list(
        {
            "automation_id": 3,
            "per_page": 1,
            "sort_by": {"created_at": "asc"},
            "filter": {"status": "running"},
            "cursor": None,
        }
    )
    listed.load_next_page()
    first, second = script.requests
    assert first.url.path == "/api/rest/v1/automation_runs"
    assert list(first.url.params.multi_items()) == [
        ("automation_id", "3"),
        ("per_page", "1"),
        ("sort_by[created_at]", "asc"),
        ("filter[status]", "running"),
    ]
    assert list(second.url.params.multi_items())[-1] == ("cursor", "c2")
    assert first.headers["X-FilesAPI-Key"] == KEY
    assert first.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    client.automation_run.find("../automations")  # type: ignore[arg-type]
    assert script.requests[-1].url.raw_path == b"/api/rest/v1/automation_runs/..%2Fautomations"

    anonymous = Script(answer(200, RUN))
    sdk.Client(BASE, None, transport=httpx.MockTransport(anonymous)).automation_run.find(7)
    assert "X-FilesAPI-Key" not in anonymous.requests[0].headers


@pytest.mark.parametrize(
    "step",
    [
        answer(200, b"<html>login</html>", {"Content-Type": "text/html"}),
        answer(200, {"not": "a list"}),
        answer(200, [{"id": 1}]),
        answer(200, [{**RUN, "created_at": "yesterday"}]),
    ],
)
def test_unusable_answers_are_connection_errors(harness: Harness, step: Step) -> None:
    with pytest.raises(sdk.APIConnectionError):
        harness.client(Script(step)).automation_run.list({"automation_id": 3})


def test_an_error_without_a_files_com_body_maps_by_status(harness: Harness) -> None:
    script = Script(answer(502, b"<html>Bad Gateway</html>"))
    with pytest.raises(sdk.InternalServerError) as caught:
        harness.client(script).automation_run.find(7)
    assert (caught.value.message, caught.value.error_type) == ("Bad Gateway", None)


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "bad-request/some-new-check", sdk.BadRequestError),
        (409, "processing-failure/conflict", sdk.ConflictError),
        (409, "processing-failure/illegal-transition", sdk.ProcessingFailureError),
        (
            422,
            "processing-failure/automation-cannot-be-run-manually",
            sdk.AutomationCannotBeRunManuallyError,
        ),
        (500, "processing-failure", sdk.InternalServerError),
        (500, "internal-server-error", sdk.InternalServerError),
        (400, "bad-request/invalid-path", sdk.InvalidPathError),
        (403, None, sdk.NotAuthorizedError),
        (418, None, sdk.APIError),
        (404, "something/else", sdk.NotFoundError),
    ],
)
def test_error_class_by_type_then_family_then_status(
    status: int, error_type: str | None, cls: type[sdk.APIError]
) -> None:
    body = {"error": "x", "type": error_type} if error_type else None
    assert type(error_for_response(status, body)) is cls


def pages(*batches: list[dict[str, Any]], repeat_cursor: bool = False) -> Script:
    """A list of pages chained by cursors p1, p2, ...; with repeat_cursor the last points back."""

    def respond(request: httpx.Request) -> httpx.Response:
        index = int(request.url.params.get("cursor", "p0")[1:])
        headers = {}
        if index + 1 < len(batches):
            headers["X-Files-Cursor-Next"] = f"p{index + 1}"
        elif repeat_cursor:
            headers["X-Files-Cursor-Next"] = "p1"
        return httpx.Response(200, content=orjson.dumps(batches[index]), headers=headers)

    return Script(respond)


def runs(*ids: int) -> list[dict[str, Any]]:
    return [{**RUN, "id": run_id} for run_id in ids]


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_failing_page_stops_the_walk_after_the_pages_before_it(
    harness: Harness, prefetch: bool
) -> None:
    batches = pages(runs(1, 2), runs(3, 4))
    walked: list[int] = []
    not_found = answer(404, files_error(404, "not-found", "Not Found"))
    script = Script(lambda r: batches(r), not_found)  # page 1, then 404 for page 2
    page = harness.client(script).automation_run.list({"automation_id": 3})
    with pytest.raises(sdk.NotFoundError):
        walked.extend(run.id for run in page.auto_paging_iter(prefetch=prefetch))
    assert walked == [1, 2]
    assert [run.id for run in page] == [1, 2]  # the page was left as it was


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_cursor_loop_is_stopped(harness: Harness, prefetch: bool) -> None:
    script = pages(runs(1), runs(2), runs(3), repeat_cursor=True)
    walked: list[int] = []
    page = harness.client(script).automation_run.list({"automation_id": 3})
    with pytest.raises(sdk.APIConnectionError, match="already followed"):
        walked.extend(run.id for run in page.auto_paging_iter(prefetch=prefetch))
    assert walked == [1, 2, 3]


def test_stopping_a_walk_early_asks_for_no_more_than_one_extra_page(harness: Harness) -> None:
    script = pages(runs(1), runs(2), runs(3), runs(4))
    walk = harness.client(script).automation_run.list({"automation_id": 3}).auto_paging_iter()
    assert [next(walk).id, next(walk).id] == [1, 2]
    walk.close()
    # Page 1, page 2, and at most page 3 in flight; never page 4.
    assert len(script.requests) in (2, 3)
    assert all(r.url.params.get("cursor") != "p3" for r in script.requests)


def test_a_given_http_client_is_used_and_left_open(harness: Harness) -> None:
    script = Script(answer(200, RUN))
    with httpx.Client(transport=httpx.MockTransport(script)) as http_client:
        client = sdk.Client(BASE, KEY, http_client=http_client)
        assert client.automation_run.find(7).id == 7
        client.close()
        assert not http_client.is_closed
        assert [str(r.url) for r in script.requests] == [f"{BASE}/api/rest/v1/automation_runs/7"]
