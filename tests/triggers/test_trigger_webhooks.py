"""Webhooks over real HTTP on both databases: the secret URL creates a run, nothing else does.

Also Conveyor's `next_runs` extension, through the API and the real CLI process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from triggers_world import World

from conveyor.app import create_app
from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

API = "/api/rest/v1"
ERROR_KEYS = {"error", "http-code", "instance", "title", "type"}


@pytest.fixture
def live(settings: Settings, db: Database, clock: ManualClock) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings, db, clock=clock)) as running:
        yield running


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


def create(live: ServerThread, owner: Account, **body: Any) -> dict[str, Any]:
    body.setdefault("automation", "create_folder")
    body.setdefault("destinations", ["hooked"])
    response = httpx.post(
        f"{live.url}{API}/automations", json=body, headers={"X-FilesAPI-Key": owner.key}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def log_of(run: dict[str, Any]) -> str:
    # The signed status_messages_url needs no key.
    response = httpx.get(run["status_messages_url"])
    assert response.status_code == 200
    return response.text


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "not-found"
    assert body["error"] == "Webhook not found."


def test_a_post_to_the_secret_url_creates_a_run_with_its_body_and_query(
    live: ServerThread, alice: Account, world: World, db: Database
) -> None:
    hook = create(live, alice, trigger="webhook", name="on deploy")
    url = hook["webhook_url"]
    secret = url.rsplit("/", 1)[1]
    assert url == f"{live.url}{API}/webhooks/{secret}"
    assert len(secret) >= 32  # 192 random bits, hex
    body = {"release": "v1.2.3", "files": 3}
    response = httpx.post(url, params={"env": "prod", "tag": "a b"}, json=body)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["automation_id"] == hook["id"]
    assert run["status"] == "running" and run["run_stage"] == "queued_for_planning"

    (seen,) = world.runs(hook["id"])
    assert seen.id == run["id"]
    assert seen.trigger == "webhook"
    assert seen.input_kind == "webhook"
    assert seen.payload == {
        "method": "POST",
        "query": [["env", "prod"], ["tag", "a b"]],
        "content_type": "application/json",
        "body_bytes": len(json.dumps(body, separators=(",", ":"))),
        "body": json.dumps(body, separators=(",", ":")),
        "body_encoding": "utf-8",
    }
    text = log_of(run)
    assert "Started by a webhook call: POST from 127.0.0.1." in text
    assert "Webhook query: env=prod&tag=a b" in text
    assert '{"release":"v1.2.3","files":3}' in text
    assert secret not in text  # the log's URL may be shared; the secret must not be in it
    # The run is an ordinary run for the API.
    shown = httpx.get(
        f"{live.url}{API}/automation_runs/{run['id']}", headers={"X-FilesAPI-Key": alice.key}
    )
    assert shown.json()["id"] == run["id"]


def test_get_works_too_and_every_call_is_a_run(
    live: ServerThread, alice: Account, world: World
) -> None:
    hook = create(live, alice, trigger="webhook")
    first = httpx.get(hook["webhook_url"], params={"ping": "1"})
    second = httpx.get(hook["webhook_url"])
    assert first.status_code == second.status_code == 201
    runs = world.runs(hook["id"])
    assert [r.id for r in runs] == [first.json()["id"], second.json()["id"]]
    assert runs[0].payload is not None and runs[0].payload["method"] == "GET"
    assert runs[0].payload["query"] == [["ping", "1"]]
    assert "Webhook body: empty." in log_of(second.json())


def test_wrong_unknown_disabled_deleted_and_switched_webhooks_are_404(
    live: ServerThread, alice: Account, world: World
) -> None:
    hook = create(live, alice, trigger="webhook")
    url = hook["webhook_url"]
    secret = url.rsplit("/", 1)[1]
    base = f"{live.url}{API}/webhooks/"
    # One character off, a made-up secret, a malformed one.
    wrong = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    for candidate in (wrong, "0" * len(secret), "not-a-secret", secret.upper()):
        assert_not_found(httpx.post(base + candidate, json={}))
    headers = {"X-FilesAPI-Key": alice.key}
    patch = httpx.patch(
        f"{live.url}{API}/automations/{hook['id']}", json={"disabled": True}, headers=headers
    )
    assert patch.status_code == 200
    assert_not_found(httpx.post(url, json={}))
    assert_not_found(httpx.get(url))
    httpx.patch(
        f"{live.url}{API}/automations/{hook['id']}", json={"disabled": False}, headers=headers
    )
    assert httpx.post(url).status_code == 201
    # No longer a webhook automation: its old URL is dead.
    httpx.patch(
        f"{live.url}{API}/automations/{hook['id']}", json={"trigger": "manual"}, headers=headers
    )
    assert_not_found(httpx.post(url))
    other = create(live, alice, trigger="webhook")
    assert (
        httpx.delete(f"{live.url}{API}/automations/{other['id']}", headers=headers).status_code
        == 204
    )
    assert_not_found(httpx.post(other["webhook_url"]))
    assert len(world.runs()) == 1  # only the call while it was enabled


def test_no_api_key_is_needed_and_none_leaks(
    live: ServerThread, alice: Account, world: World
) -> None:
    hook = create(live, alice, trigger="webhook")
    # A caller that sends a key anyway (or a wrong one) is neither helped nor refused,
    # and the key appears nowhere: not in the answer, not in the stored request, not in the log.
    for headers in ({}, {"X-FilesAPI-Key": alice.key}, {"X-FilesAPI-Key": "bogus"}):
        response = httpx.post(hook["webhook_url"], content=b"plain words", headers=headers)
        assert response.status_code == 201
        assert alice.key not in response.text
        assert alice.key not in log_of(response.json())
    runs = world.runs(hook["id"])
    assert len(runs) == 3  # one per call: the stored requests below are the three calls
    for run in runs:
        assert run.payload is not None and run.payload["body"] == "plain words"
        assert alice.key not in json.dumps(run.payload)
    # The automation's own API answer is the only place the URL shows, and only to its owner.
    bob = Seeder(world.db).account("bob")
    hidden = httpx.get(
        f"{live.url}{API}/automations/{hook['id']}", headers={"X-FilesAPI-Key": bob.key}
    )
    assert hidden.status_code == 404
    assert hook["webhook_url"].rsplit("/", 1)[1] not in hidden.text


def test_each_webhook_has_its_own_rate_limit(
    serve: Callable[..., ServerThread], alice: Account, world: World, clock: ManualClock
) -> None:
    # Webhook calls carry no API key; each automation's webhook has a token bucket of its own.
    live = serve(clock=clock, rate_limit_rate=0.5, rate_limit_burst=2)
    first = create(live, alice, trigger="webhook")
    second = create(live, alice, trigger="webhook")
    answers = [httpx.post(first["webhook_url"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    refused = answers[2]
    assert refused.headers["Retry-After"] == "2"  # one token at 0.5 per second
    body = refused.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "rate-limited/too-many-requests"
    assert body["error"] == "Too many requests for this webhook; retry in 2 s."
    assert body["instance"] == refused.headers["X-Request-Id"]
    assert len(world.runs(first["id"])) == 2, "the refused call created no run"
    # Another webhook is not affected; made-up secrets are still 404, never 429.
    assert httpx.post(second["webhook_url"]).status_code == 201
    for _ in range(3):
        assert_not_found(httpx.post(f"{live.url}{API}/webhooks/{'0' * 48}"))
    clock.advance(2)
    assert httpx.post(first["webhook_url"]).status_code == 201
    assert len(world.runs(first["id"])) == 3


def test_binary_and_oversized_bodies(live: ServerThread, alice: Account, world: World) -> None:
    hook = create(live, alice, trigger="webhook")
    blob = bytes(range(256))
    response = httpx.post(
        hook["webhook_url"], content=blob, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 201
    (run,) = world.runs(hook["id"])
    assert run.payload is not None and run.payload["body_encoding"] == "base64"
    assert "is not UTF-8 text; it is stored with the run, base64-encoded" in log_of(response.json())
    too_big = httpx.post(hook["webhook_url"], content=b"x" * 1_000_001)
    assert too_big.status_code == 400
    assert too_big.json()["type"] == "bad-request/request-params-invalid"
    assert len(world.runs(hook["id"])) == 1


# ------------------------------------------------------------------- next runs


def next_runs_cli(
    live: ServerThread, owner: Account, automation_id: int, *options: str
) -> subprocess.CompletedProcess[str]:
    """The real `conveyor automations next-runs` command, as a process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor.cli.main",
            "automations",
            "next-runs",
            str(automation_id),
            "--url",
            live.url,
            "--api-key",
            owner.key,
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_next_runs_through_the_api_and_the_cli(
    live: ServerThread, alice: Account, clock: ManualClock
) -> None:
    headers = {"X-FilesAPI-Key": alice.key}
    weekly = create(
        live,
        alice,
        trigger="custom_schedule",
        schedule_days_of_week=[0],
        schedule_times_of_day=["02:30", "12:00"],
        schedule_time_zone="Eastern Time (US & Canada)",
    )
    response = httpx.get(
        f"{live.url}{API}/automations/{weekly['id']}/next_runs",
        params={"count": 3},
        headers=headers,
    )
    assert response.status_code == 200
    # The clock stands at Saturday 2024-03-09 12:00 UTC; Sunday 02:30 does not exist in
    # New York that night, so the first slot is the jump to 03:00 EDT.
    expected = [
        {"runtime": "2024-03-10T07:00:00Z", "local_time": "2024-03-10T03:00:00-04:00"},
        {"runtime": "2024-03-10T16:00:00Z", "local_time": "2024-03-10T12:00:00-04:00"},
        {"runtime": "2024-03-17T06:30:00Z", "local_time": "2024-03-17T02:30:00-04:00"},
    ]
    assert response.json() == expected
    cli = next_runs_cli(live, alice, weekly["id"], "--count", "3", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == expected
    table = next_runs_cli(live, alice, weekly["id"], "--count", "1")
    assert "2024-03-10T07:00:00Z" in table.stdout and "2024-03-10T03:00:00-04:00" in table.stdout

    manual = create(live, alice)
    none = httpx.get(f"{live.url}{API}/automations/{manual['id']}/next_runs", headers=headers)
    assert none.json() == []
    httpx.patch(
        f"{live.url}{API}/automations/{weekly['id']}", json={"disabled": True}, headers=headers
    )
    assert (
        httpx.get(f"{live.url}{API}/automations/{weekly['id']}/next_runs", headers=headers).json()
        == []
    )
    bad = httpx.get(
        f"{live.url}{API}/automations/{weekly['id']}/next_runs",
        params={"count": 101},
        headers=headers,
    )
    assert bad.status_code == 400
    missing = httpx.get(
        f"{live.url}{API}/automations/{weekly['id'] + 100}/next_runs", headers=headers
    )
    assert missing.status_code == 404
    anonymous = httpx.get(f"{live.url}{API}/automations/{weekly['id']}/next_runs")
    assert anonymous.status_code == 401
    not_found = next_runs_cli(live, alice, weekly["id"] + 100)
    assert not_found.returncode != 0
    assert "not-found" in not_found.stderr
