"""The pages as a browser without JavaScript gets them, and the UI's error pages.

Every assertion reads the served HTML: the records, their order, the links.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from web_client import WebClient
from web_site import NOW, Site

from conveyor.domain.runs import RunStage
from conveyor.store import automations as automations_store
from conveyor.store import retention as retention_store
from conveyor.store import runs as runs_store
from conveyor.testing.seed import Account

SECOND = 1_000_000


def signed_in(site: Site, name: str = "alice", admin: bool = False) -> tuple[WebClient, Account]:
    account = site.seed.account(name, admin=admin)
    client = site.client()
    assert client.sign_in(account.key).status_code == 303
    return client, account


def run_ids(html: str) -> list[int]:
    """The runs table's rows, in page order."""
    return [int(i) for i in re.findall(r'<tr data-run-id="(\d+)">', html)]


def links(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)">', html)
    return unescape(found.group(1)) if found else None


def test_automations_page_shows_each_automation_with_latest_run_and_strip(site: Site) -> None:
    client, alice = signed_in(site)
    first = site.seed.automation(alice, "Nightly folders")
    site.seed.automation(alice, "Never run")
    outcomes = [(1, 0), (0, 2), (2, 1)] * 8  # 24 runs: success, failure, partial failure
    made = [
        site.seed.run(first, created_at=NOW - (30 - i) * 60 * SECOND, outcome=o)
        for i, o in enumerate(outcomes)
    ]
    running = site.seed.run(first, created_at=NOW - 10 * SECOND, stage=RunStage.EXECUTING)
    html = client.get("/automations").text

    assert "Nightly folders" in html and "Never run" in html
    row = html[html.index("Nightly folders") : html.index("Never run")]
    # Latest run: the running one, shown with text, linked, with its age.
    assert f'<a href="/runs/{running.id}"><span class="status status-running"' in row
    assert "Running</span>" in row and "10 s ago" in row
    # Strip: the last 20 runs, oldest first, newest last, each with its status in text.
    marks = re.findall(r'href="/runs/(\d+)" title="Run \d+: ([^,]+),', row)
    expected = [*made[-19:], running]
    assert [int(i) for i, _ in marks] == [r.id for r in expected]
    labels = {"success": "Success", "failure": "Failure", "partial_failure": "Partial failure"}
    assert [label for _, label in marks] == [labels[r.status.value] for r in made[-19:]] + [
        "Running"
    ]
    succeeded = sum(1 for r in made[-19:] if r.status.value == "success")
    assert f"{succeeded} of 19 finished runs succeeded" in row
    idle_row = html[html.index("Never run") :]
    assert "No runs yet" in idle_row
    # One Run now form per automation, each carrying the session's token.
    assert html.count('action="/automations/') == 2
    assert html.count('name="csrf_token"') == 3  # two Run now forms and Sign out


def test_automations_page_empty_state_explains_what_to_do(site: Site) -> None:
    client, _ = signed_in(site)
    html = client.get("/automations").text
    assert "No automations yet" in html
    assert "conveyor automations create" in html


def test_non_admins_see_only_their_own_automations_and_runs(site: Site) -> None:
    alice_client, alice = signed_in(site, "alice")
    bob_client, bob = signed_in(site, "bob")
    admin_client, _ = signed_in(site, "root", admin=True)
    mine = site.seed.automation(alice, "alice-only")
    theirs = site.seed.automation(bob, "bob-only")
    their_run = site.seed.run(theirs, outcome=(1, 0), messages=["secret path bob/x"])

    page = alice_client.get("/automations").text
    assert "alice-only" in page and "bob-only" not in page
    admin_page = admin_client.get("/automations").text
    assert "alice-only" in admin_page and "bob-only" in admin_page

    for path in (f"/automations/{theirs}", f"/runs/{their_run.id}", f"/runs/{their_run.id}/live"):
        response = alice_client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>Not Found</h1>" in response.text
        assert "bob-only" not in response.text and "secret path" not in response.text
    # Running another user's automation is refused the same way and creates nothing.
    refused = alice_client.post(f"/automations/{theirs}/run", {"csrf_token": alice_client.token()})
    assert refused.status_code == 404
    with site.db.read() as conn:
        assert runs_store.get_run(conn, their_run.id + 1) is None
    assert admin_client.get(f"/runs/{their_run.id}").status_code == 200
    assert bob_client.get(f"/automations/{mine}").status_code == 404


def test_automation_page_pages_filters_and_sorts_with_the_api_cursors(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Paged")
    runs = [
        site.seed.run(
            automation,
            created_at=NOW - (100 - i) * 60 * SECOND,
            outcome=(1, 0) if i % 3 else (0, 1),
        )
        for i in range(12)
    ]
    newest_first = [r.id for r in reversed(runs)]
    base = f"/automations/{automation}"

    first = client.get(base, params={"per_page": "5"}).text
    assert run_ids(first) == newest_first[:5]
    assert links(first, "prev") is None
    second_url = links(first, "next")
    assert second_url is not None
    second = client.get(second_url).text
    assert run_ids(second) == newest_first[5:10]
    third = client.get(links(second, "next") or "").text
    assert run_ids(third) == newest_first[10:]
    assert links(third, "next") is None
    back = client.get(links(third, "prev") or "").text
    assert run_ids(back) == newest_first[5:10]
    assert run_ids(client.get(links(back, "prev") or "").text) == newest_first[:5]

    # The UI's cursor is the API's: the same next page through the API.
    cursor = parse_qs(urlsplit(second_url).query)["cursor"][0]
    api = httpx.get(
        f"{site.url}/api/rest/v1/automation_runs",
        params={"automation_id": automation, "per_page": 5, "cursor": cursor},
        headers={"X-FilesAPI-Key": alice.key},
    )
    assert [r["id"] for r in api.json()] == newest_first[5:10]

    failed = client.get(base, params={"filter[status]": "failure", "per_page": "2"}).text
    failures = [r.id for r in reversed(runs) if r.status.value == "failure"]
    assert run_ids(failed) == failures[:2]
    assert 'option value="failure" selected' in failed
    following = links(failed, "next") or ""
    assert "filter%5Bstatus%5D=failure" in following
    assert run_ids(client.get(following).text) == failures[2:4]

    by_status = client.get(base, params={"sort_by[status]": "asc", "per_page": "50"}).text
    expected = sorted(runs, key=lambda r: (r.status.value, r.id))
    assert run_ids(by_status) == [r.id for r in expected]
    assert 'aria-sort="ascending"><a href="' in by_status
    oldest = client.get(base, params={"sort_by[created_at]": "asc", "per_page": "3"}).text
    assert run_ids(oldest) == [r.id for r in runs[:3]]
    # The API's third sort, automation_id, is the id order; its cursors page too.
    by_id = client.get(base, params={"sort_by[automation_id]": "desc", "per_page": "5"}).text
    assert run_ids(by_id) == sorted((r.id for r in runs), reverse=True)[:5]
    assert run_ids(client.get(links(by_id, "next") or "").text) == newest_first[5:10]


def test_automation_page_charts_and_empty_filter_state(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Charted")
    day = 86_400 * SECOND
    site.seed.run(automation, created_at=NOW - 40 * day, outcome=(1, 0))  # outside the 30 days
    site.seed.run(automation, created_at=NOW - 2 * day, outcome=(1, 0))
    site.seed.run(automation, created_at=NOW - 2 * day + SECOND, outcome=(0, 1))
    site.seed.run(automation, created_at=NOW - 60 * SECOND, outcome=(2, 0))
    html = client.get(f"/automations/{automation}").text
    assert "3 runs in the last 30 days; busiest day 2 runs" in html
    bars = re.findall(r'<rect class="bar bar-(\w+)"[^>]*><title>([^<]+)</title>', html)
    daily = [b for b in bars if ": " in b[1] and not b[1].startswith("Run ")]
    assert sorted(daily) == [
        ("failure", "Nov 12: 1 failure"),
        ("success", "Nov 12: 1 success"),
        ("success", "Nov 14: 1 success"),
    ]
    durations = [b for b in bars if b[1].startswith("Run ")]
    assert len(durations) == 4
    empty = client.get(
        f"/automations/{automation}", params={"filter[status]": "partial_failure"}
    ).text
    assert "No partial failure runs." in empty
    assert "Show runs of any status" in empty


def test_automation_without_runs_says_run_it(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Fresh")
    html = client.get(f"/automations/{automation}").text
    assert "No runs yet: press <strong>Run now</strong> to start one." in html
    assert "No runs in the last 30 days." in html


def test_scheduled_automation_lists_its_next_times(site: Site) -> None:
    client, alice = signed_in(site)
    with site.db.write() as conn:
        automation = automations_store.create_automation(
            conn,
            alice.user.id,
            NOW,
            name="Weekdays",
            automation="create_folder",
            trigger="custom_schedule",
            destinations=["out"],
            schedule_days_of_week=[1, 3],
            schedule_times_of_day=["06:30"],
            schedule_time_zone="UTC",
        )
    html = client.get(f"/automations/{automation}").text
    assert "Every Monday and Wednesday at 06:30 (UTC)" in html
    section = html[html.index('id="next-times"') :]
    times = re.findall(r'<time datetime="([^"]+)">', section)[:5]
    # NOW is Tuesday 2023-11-14 22:13 UTC.
    assert times == [
        "2023-11-15T06:30:00Z",
        "2023-11-20T06:30:00Z",
        "2023-11-22T06:30:00Z",
        "2023-11-27T06:30:00Z",
        "2023-11-29T06:30:00Z",
    ]


def test_run_page_shows_every_field_the_timeline_and_the_log(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Copier")
    run = site.seed.run(
        automation,
        created_at=NOW - 90 * SECOND,
        outcome=(3, 1),
        messages=["Planned 4 operations", "Copied <b>a.txt</b> & more"],
    )
    html = client.get(f"/runs/{run.id}").text
    assert f"<h1>Run {run.id}</h1>" in html
    for text in (
        "Partial failure <code>partial_failure</code>",
        "Finished <code>finished</code>",
        '<dd class="count-ok" data-field="successful_operations">3</dd>',
        '<dd class="count-failed" data-field="failed_operations">1</dd>',
        "2023-11-14 22:11:50 UTC",  # created
        "This run has finished.",
        "<dt>Trigger</dt><dd>manual</dd>",
    ):
        assert text in html, text
    # Every field, each under its own label (the seeded run was created, ran and
    # finished in the same second).
    shown = {
        label: re.sub(r"<[^>]+>", "", value)
        for label, value in re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(.*?)</dd>", html, re.S)
    }
    at = "2023-11-14 22:11:50 UTC"
    assert shown == {
        "ID": str(run.id),
        "Automation": f"Copier #{automation}",
        "Status": "Partial failure partial_failure",
        "Stage": "Finished finished",
        "Created": at,
        "Runtime": at,
        "Completed": at,
        "Duration": "0 ms",
        "Trigger": "manual",
        "Successful operations": "3",
        "Failed operations": "1",
        # Retention's default of 90 days after completion (CONVEYOR_RETENTION_DAYS).
        "Log kept until": "2024-02-12 22:11:50 UTC",
        "Status messages": "Download the log (a signed link that works without signing in "
        "until it expires)",
    }
    assert f'<a href="/automations/{automation}">Copier</a>' in html
    # User text is escaped, never markup.
    assert "Copied &lt;b&gt;a.txt&lt;/b&gt; &amp; more" in html
    # A finished run's page does not poll: its script sees data-finished and only
    # handles the log's scrolling.
    assert 'data-finished="true"' in html
    steps = re.findall(r'<li class="step step-(\w+)" data-stage="(\w+)">', html)
    assert [stage for _, stage in steps] == [
        "queued_for_planning",
        "planning",
        "queued_for_execution",
        "executing",
        "finished",
    ]
    assert all(state == "done" for state, _ in steps)
    # The log link is the API's signed status_messages_url and works without a session.
    link = unescape(re.search(r'<a href="([^"]+)" download=', html).group(1))  # type: ignore[union-attr]
    api_run = httpx.get(
        f"{site.url}/api/rest/v1/automation_runs/{run.id}",
        headers={"X-FilesAPI-Key": alice.key},
    ).json()
    assert link == api_run["status_messages_url"]
    log = httpx.get(link)
    assert log.status_code == 200
    assert "Planned 4 operations" in log.text


def test_running_run_page_degrades_to_a_reload_link(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice)
    run = site.seed.run(automation, stage=RunStage.PLANNING)
    html = client.get(f"/runs/{run.id}").text
    assert f'This run is still in progress. <a href="/runs/{run.id}">Reload</a>' in html
    assert re.search(r'<script src="/static/run-live\.js\?v=\w+" defer></script>', html)
    steps = dict(
        (stage, state) for state, stage in re.findall(r'step-(\w+)" data-stage="(\w+)"', html)
    )
    assert steps == {
        "queued_for_planning": "done",
        "planning": "current",
        "queued_for_execution": "pending",
        "executing": "pending",
        "finished": "pending",
    }
    assert "No status messages yet: they appear here" in html


def test_run_that_failed_planning_shows_skipped_stages(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice)
    run = site.seed.run(automation, stage=RunStage.PLANNING)
    with site.db.write() as conn:
        runs_store.finish_run(conn, run.id, NOW, planning_failed=True, message="no such folder")
    html = client.get(f"/runs/{run.id}").text
    steps = dict(
        (stage, state) for state, stage in re.findall(r'step-(\w+)" data-stage="(\w+)"', html)
    )
    assert steps["queued_for_execution"] == "skipped" and steps["executing"] == "skipped"
    assert steps["finished"] == "done"
    assert "Failure <code>failure</code>" in html


def test_live_document_returns_fields_and_only_newer_messages(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice)
    run = site.seed.run(automation, stage=RunStage.EXECUTING, messages=["one", "two"])
    body = client.get(f"/runs/{run.id}/live").json()
    assert [m["text"] for m in body["messages"]] == ["one", "two"]
    assert body["run"]["finished"] is False and body["run"]["stage_label"] == "Executing"
    last = body["messages"][-1]["id"]
    with site.db.write() as conn:
        runs_store.record_operation(conn, run.id, True, NOW, "three")
        runs_store.finish_run(conn, run.id, NOW)
    later = client.get(f"/runs/{run.id}/live", params={"after": last}).json()
    assert [m["text"] for m in later["messages"]] == ["three"]
    assert later["run"]["finished"] is True
    assert later["run"]["status"] == "success" and later["run"]["successful_operations"] == 1


def test_run_now_creates_a_run_and_needs_the_token(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Button")
    created: list[int] = []
    site.app.state.ctx.on_run_created = created.append

    refused = client.post(f"/automations/{automation}/run", {"csrf_token": "guess"})
    assert refused.status_code == 403
    assert "did not come from a Conveyor page" in refused.text
    missing = client.post(f"/automations/{automation}/run", {})
    assert missing.status_code == 403
    with site.db.read() as conn:
        assert runs_store.get_run(conn, 1) is None
    assert created == []

    done = client.post(f"/automations/{automation}/run", {"csrf_token": client.token()})
    assert done.status_code == 303
    run_id = int(done.headers["location"].rsplit("/", 1)[1])
    assert created == [run_id]
    with site.db.read() as conn:
        run = runs_store.get_run(conn, run_id)
    assert run is not None and run.automation_id == automation
    assert run.run_stage is RunStage.QUEUED_FOR_PLANNING and run.created_at == NOW


def test_run_now_on_a_disabled_automation_is_refused_readably(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Off")
    with site.db.write() as conn:
        current = automations_store.get_automation(conn, automation)
        assert current is not None
        automations_store.update_automation(conn, current, {"disabled": True}, NOW)
    assert "disabled" in client.get("/automations").text
    response = client.post(f"/automations/{automation}/run", {"csrf_token": client.token()})
    assert response.status_code >= 400
    assert "is disabled; enable it before running it." in response.text


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/no/such/page", 404, "There is no page at this address."),
        ("/automations/abc", 404, "There is no automation &#39;abc&#39;."),
        ("/automations/999999", 404, "Automation 999999 not found."),
        ("/runs/999999", 404, "Automation Run 999999 not found."),
        ("/automations/1?cursor=forged", 400, "The cursor is not valid for this list"),
        ("/automations/1?per_page=0", 400, "per_page must be between 1 and"),
        ("/automations/1?sort_by[name]=asc", 400, "Cannot sort by"),
    ],
)
def test_error_pages_are_readable_html(site: Site, path: str, status: int, text: str) -> None:
    client, alice = signed_in(site)
    site.seed.automation(alice)
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text
    assert "Request id <code>" in response.text
    assert "Traceback" not in response.text


def test_api_paths_keep_their_json_errors(site: Site) -> None:
    response = site.client().get("/api/rest/v1/automation_runs/1")
    assert response.status_code == 401
    assert response.json()["type"] == "not-authenticated/authentication-required"


def test_unexpected_failure_is_a_page_without_a_stack_trace(site: Site) -> None:
    app = site.app
    assert isinstance(app, FastAPI)

    def broken() -> None:
        raise RuntimeError("secret internals at /srv/conveyor/db.py line 12")

    app.add_api_route("/broken-page", broken)
    response = site.client().get("/broken-page")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong on the server." in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_run_of_a_deleted_automation_stays_readable(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Gone soon")
    run = site.seed.run(automation, outcome=(1, 0))
    with site.db.write() as conn:
        automations_store.delete_automation(conn, automation, NOW)
    html = client.get(f"/runs/{run.id}").text
    assert f'Gone soon <span class="muted">#{automation} (deleted)</span>' in html
    assert f'href="/automations/{automation}"' not in html
    assert client.get(f"/automations/{automation}").status_code == 404
    assert "Gone soon" not in client.get("/automations").text


def test_run_page_shows_when_the_log_expires_only_once_known(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Keeper")
    running = site.seed.run(automation, stage=RunStage.EXECUTING)
    assert "Log kept until" not in client.get(f"/runs/{running.id}").text
    finished = site.seed.run(automation, created_at=NOW - 90 * SECOND, outcome=(1, 0))
    with site.seed.db.write() as conn:
        retention_store.set_override(conn, automation, 0)  # keep this automation's runs forever
    html = client.get(f"/runs/{finished.id}").text
    assert (
        '<dt>Log kept until</dt><dd data-field="log_expires_at">forever (retention off)</dd>'
        in (html)
    )
