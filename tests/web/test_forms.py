"""Managing automations with the UI's forms, as a browser without JavaScript sends them.

Every refusal is compared with what the API answers for the same body: the
forms have no rules of their own. Each bad input is checked to leave the
database as it was.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest
from web_client import WebClient, form_token
from web_site import NOW, Site

from conveyor.domain.automations import Automation, AutomationType, Trigger
from conveyor.domain.permissions import Level
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.domain.schedules import schedule_of, upcoming_slots
from conveyor.store import automations as automations_store
from conveyor.store import permissions as permissions_store
from conveyor.store import runs as runs_store
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import permissions as permissions_t
from conveyor.testing.seed import Account
from conveyor.web.automation_form import OPTIONAL_NUMBER_FIELDS, error_field
from conveyor.web.presentation import when

SECOND = 1_000_000
DAY = 86_400 * SECOND
# What the API reports for a created automation, minus what differs per record.
_VOLATILE = {"id", "webhook_url", "last_modified_at", "name"}


def signed_in(site: Site, name: str = "alice") -> tuple[WebClient, Account]:
    account = site.seed.account(name)
    client = site.client()
    assert client.sign_in(account.key).status_code == 303
    return client, account


def new_form(client: WebClient) -> dict[str, str]:
    """The hidden fields of a freshly opened create form."""
    page = client.get("/automations/new")
    assert page.status_code == 200, page.text
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text)
    assert token
    return {"csrf_token": form_token(page.text), "form_token": token.group(1)}


def post(client: WebClient, path: str, fields: list[tuple[str, str]]) -> httpx.Response:
    return client.http.post(path, content=httpx.QueryParams(fields).__str__(), headers=_FORM)


_FORM = {"content-type": "application/x-www-form-urlencoded"}


def count_automations(site: Site) -> int:
    with site.db.read() as conn:
        return len(conn.execute(automations_t.select()).all())


def api(site: Site, account: Account, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{site.url}/api/rest/v1{path}",
        json=body,
        headers={"X-FilesAPI-Key": account.key},
    )


def inline_error(html: str, field: str) -> str | None:
    found = re.search(rf'id="{field}-error" role="alert"><strong>Error:</strong> ([^<]*)</p>', html)
    return unescape(found.group(1)) if found else None


# Each type with a trigger, as form fields and as the API body they stand for.
CASES: list[tuple[list[tuple[str, str]], dict[str, Any]]] = [
    (
        [("automation", "create_folder"), ("trigger", "manual"), ("destinations", "a/%Y\nb/")],
        {"automation": "create_folder", "trigger": "manual", "destinations": ["a/%Y", "b/"]},
    ),
    (
        [
            ("automation", "copy_file"),
            ("trigger", "daily"),
            ("source", "in/*.csv"),
            ("destinations", "out/"),
            ("interval", "week"),
            ("recurring_day", "1"),
            ("schedule_times_of_day", "07:00, 17:30"),
            ("schedule_time_zone", "Europe/Paris"),
            ("overwrite_files", "true"),
            ("exclude_pattern", "in/skip*"),
        ],
        {
            "automation": "copy_file",
            "trigger": "daily",
            "source": "in/*.csv",
            "destinations": ["out/"],
            "interval": "week",
            "recurring_day": 1,
            "schedule_times_of_day": ["07:00", "17:30"],
            "schedule_time_zone": "Europe/Paris",
            "overwrite_files": True,
            "exclude_pattern": "in/skip*",
        },
    ),
    (
        [
            ("automation", "move_file"),
            ("trigger", "custom_schedule"),
            ("source", "in/*"),
            ("destinations", "archive/%Y-%m-%d/"),
            ("schedule_days_of_week", "1"),
            ("schedule_days_of_week", "5"),
            ("schedule_times_of_day", "09:00"),
            ("flatten_destination_structure", "true"),
            ("destination_replace_from", "in"),
            ("destination_replace_to", "out"),
        ],
        {
            "automation": "move_file",
            "trigger": "custom_schedule",
            "source": "in/*",
            "destinations": ["archive/%Y-%m-%d/"],
            "schedule_days_of_week": [1, 5],
            "schedule_times_of_day": ["09:00"],
            "flatten_destination_structure": True,
            "destination_replace_from": "in",
            "destination_replace_to": "out",
        },
    ),
    (
        [
            ("automation", "delete_file"),
            ("trigger", "action"),
            ("path", "drop"),
            ("source", "drop/*.tmp"),
            ("trigger_actions", "create"),
            ("trigger_actions", "update"),
        ],
        {
            "automation": "delete_file",
            "trigger": "action",
            "path": "drop",
            "source": "drop/*.tmp",
            "trigger_actions": ["create", "update"],
        },
    ),
    (
        [
            ("automation", "copy_file"),
            ("trigger", "webhook"),
            ("source", "x"),
            ("destinations", "y/"),
        ],
        {"automation": "copy_file", "trigger": "webhook", "source": "x", "destinations": ["y/"]},
    ),
    (
        [
            ("automation", "copy_file"),
            ("trigger", "manual"),
            ("source", "x"),
            ("destinations", "y/"),
            ("retry_on_failure_number_of_attempts", "3"),
            ("retry_on_failure_interval_in_minutes", " 15 "),
        ],
        {
            "automation": "copy_file",
            "trigger": "manual",
            "source": "x",
            "destinations": ["y/"],
            "retry_on_failure_number_of_attempts": 3,
            "retry_on_failure_interval_in_minutes": 15,
        },
    ),
    (
        [
            ("automation", "copy_file"),
            ("trigger", "daily"),
            ("source", "in/*"),
            ("destinations", "out/"),
            ("interval", "month"),
            ("recurring_days", "1, 15"),
            ("schedule_times_of_day", "08:00"),
            ("holiday_region", "us"),
            ("value_limit", "5"),
            ("always_serialize_jobs", "true"),
        ],
        {
            "automation": "copy_file",
            "trigger": "daily",
            "source": "in/*",
            "destinations": ["out/"],
            "interval": "month",
            "recurring_days": [1, 15],
            "schedule_times_of_day": ["08:00"],
            "holiday_region": "us",
            "value": {"limit": 5},
            "always_serialize_jobs": True,
        },
    ),
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=lambda i: CASES[i][1]["trigger"])
def test_each_type_and_trigger_is_created_as_the_api_creates_it(site: Site, case: int) -> None:
    client, alice = signed_in(site)
    fields, body = CASES[case]
    response = post(
        client, "/automations/new", [*new_form(client).items(), ("name", "UI"), *fields]
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    created_id = int(re.match(r"/automations/(\d+)\?created=1$", location).group(1))  # type: ignore[union-attr]
    through_api = api(site, alice, "POST", "/automations", {**body, "name": "API"})
    assert through_api.status_code == 201, through_api.text
    from_form = api(site, alice, "GET", f"/automations/{created_id}").json()
    expected = through_api.json()
    assert {k: v for k, v in from_form.items() if k not in _VOLATILE} == {
        k: v for k, v in expected.items() if k not in _VOLATILE
    }
    page = client.get(location).text
    assert "The automation was created." in page
    if body["trigger"] == "webhook":
        # The webhook URL is shown after saving, with a copy button (the script reveals it).
        assert from_form["webhook_url"]
        assert f'value="{from_form["webhook_url"]}"' in page
        assert 'data-copy="webhook-url"' in page
    else:
        assert 'id="webhook-url"' not in page


# Bad forms: the API's message next to its field, and nothing stored.
BAD: list[tuple[list[tuple[str, str]], str]] = [
    ([("automation", "create_folder"), ("trigger", "manual")], "destinations"),
    ([("automation", "copy_file"), ("destinations", "out/")], "source"),
    ([("automation", ""), ("destinations", "a")], "automation"),
    ([("automation", "copy_file"), ("source", "../etc/*"), ("destinations", "x/")], "source"),
    ([("automation", "create_folder"), ("destinations", "/etc/x")], "destinations"),
    ([("automation", "create_folder"), ("destinations", "a"), ("path", "a/../../b")], "path"),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("trigger", "custom_schedule"),
            ("schedule_times_of_day", "09:00"),
        ],
        "schedule_days_of_week",
    ),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("trigger", "daily"),
            ("schedule_times_of_day", "25:00"),
        ],
        "schedule_times_of_day",
    ),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("trigger", "daily"),
            ("schedule_time_zone", "Mars/Olympus"),
        ],
        "schedule_time_zone",
    ),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("trigger", "daily"),
            ("interval", "week"),
            ("recurring_day", "9"),
        ],
        "recurring_day",
    ),
    (
        [("automation", "create_folder"), ("destinations", "a"), ("trigger", "action")],
        "trigger_actions",
    ),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("retry_on_failure_number_of_attempts", "11"),
            ("retry_on_failure_interval_in_minutes", "5"),
        ],
        "retry_on_failure_number_of_attempts",
    ),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("retry_on_failure_number_of_attempts", "2"),
            ("retry_on_failure_interval_in_minutes", ""),
        ],
        "retry_on_failure_interval_in_minutes",
    ),
    (
        [
            ("automation", "copy_file"),
            ("source", "a"),
            ("destinations", "b/"),
            ("value_limit", "0"),
        ],
        "value_limit",
    ),
    (
        [
            ("automation", "create_folder"),
            ("destinations", "a"),
            ("trigger", "daily"),
            ("holiday_region", "zz_nowhere"),
        ],
        "holiday_region",
    ),
    # Longer than the name column: refused on both databases (PostgreSQL failed the insert).
    ([("automation", "create_folder"), ("destinations", "a"), ("name", "n" * 256)], "name"),
]


@pytest.mark.parametrize("case", range(len(BAD)), ids=lambda i: BAD[i][1])
def test_a_refused_form_shows_the_api_message_at_its_field_and_stores_nothing(
    site: Site, case: int
) -> None:
    client, alice = signed_in(site)
    fields, field = BAD[case]
    before = count_automations(site)
    response = post(client, "/automations/new", [*new_form(client).items(), *fields])
    assert response.status_code == 400
    # The API's answer to the same body (the form's list fields as lists).
    body: dict[str, Any] = {}
    for key, value in fields:
        if key in ("schedule_days_of_week", "trigger_actions"):
            body.setdefault(key, []).append(value)
        elif key == "destinations":
            body[key] = value.splitlines()
        elif key == "value_limit":
            body["value"] = {"limit": value}
        elif key in OPTIONAL_NUMBER_FIELDS:
            body[key] = int(value) if value else None
        else:
            body[key] = value
    refused = api(site, alice, "POST", "/automations", body)
    assert refused.status_code == 400
    message = refused.json()["error"] if "error" in refused.json() else refused.json()["message"]
    assert inline_error(response.text, field) == message
    assert f'aria-invalid="true" aria-describedby="{field}-error' in response.text
    # What was typed is still there.
    for key, value in fields:
        if key == "destinations" and value:
            assert f">{value}</textarea>" in response.text
    assert count_automations(site) == before + 0  # the API's attempt was refused too


def test_error_field_names_the_field_of_every_api_message() -> None:
    assert error_field("Parameter missing: source (the glob of files copy_file acts on)") == (
        "source"
    )
    assert error_field("at most 100 destinations are allowed.") == "destinations"
    assert error_field("destination '/x' must not start with a slash.") == "destinations"
    assert error_field("trigger_actions entry 'x' is not supported; use create") == (
        "trigger_actions"
    )
    assert error_field("recurring_day for interval week must be between 0 and 6.") == (
        "recurring_day"
    )
    assert error_field("Something else entirely.") is None


def test_csrf_token_missing_or_from_another_session_is_refused(site: Site) -> None:
    client, _ = signed_in(site)
    other, _ = signed_in(site, "bob")
    hidden = new_form(client)
    fields = [("automation", "create_folder"), ("destinations", "a")]
    missing = post(client, "/automations/new", [("form_token", hidden["form_token"]), *fields])
    stale = post(
        client,
        "/automations/new",
        [
            ("csrf_token", new_form(other)["csrf_token"]),
            ("form_token", hidden["form_token"]),
            *fields,
        ],
    )
    assert missing.status_code == 403 and stale.status_code == 403
    assert "This form has expired" in stale.text
    assert count_automations(site) == 0
    # Enable, disable, delete and edit need the token too.
    automation = site.seed.automation(site.seed.account("carol"))
    carol = site.client()
    carol.sign_in(site.seed.account("carol").key)
    for action in ("disable", "enable", "delete", "edit"):
        refused = post(carol, f"/automations/{automation}/{action}", [("csrf_token", "nope")])
        assert refused.status_code == 403, action
    with site.db.read() as conn:
        found = automations_store.get_automation(conn, automation)
    assert found is not None and not found.deleted and not found.disabled


def test_a_form_sent_twice_creates_one_automation(site: Site) -> None:
    client, _ = signed_in(site)
    hidden = new_form(client)
    fields = [*hidden.items(), ("automation", "create_folder"), ("destinations", "a")]
    first = post(client, "/automations/new", fields)
    second = post(client, "/automations/new", fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert count_automations(site) == 1
    # A token this server did not issue, or none, creates nothing.
    for token in ("", "abc", "f" * 42):
        forged = post(
            client,
            "/automations/new",
            [("csrf_token", hidden["csrf_token"]), ("form_token", token), *fields[2:]],
        )
        assert forged.status_code == 403
    assert count_automations(site) == 1


def test_preview_shows_the_next_five_slots_and_saves_nothing(site: Site) -> None:
    client, _ = signed_in(site)
    fields = [
        ("automation", "create_folder"),
        ("destinations", "a"),
        ("trigger", "custom_schedule"),
        ("schedule_days_of_week", "2"),
        ("schedule_days_of_week", "4"),
        ("schedule_times_of_day", "08:30"),
        ("schedule_time_zone", "America/New_York"),
        ("action", "preview"),
    ]
    response = post(client, "/automations/new", [*new_form(client).items(), *fields])
    assert response.status_code == 200
    draft = Automation(
        id=0,
        user_id=0,
        automation=AutomationType.CREATE_FOLDER,
        trigger=Trigger.CUSTOM_SCHEDULE,
        schedule_days_of_week=(2, 4),
        schedule_times_of_day=("08:30",),
        schedule_time_zone="America/New_York",
    )
    schedule = schedule_of(draft)
    assert schedule is not None
    expected = [when(slot) for slot in upcoming_slots(schedule, NOW, 5)]
    section = response.text[response.text.index('id="preview"') :]
    assert re.findall(r"<time datetime=\"[^\"]+\">([^<]+)</time>", section) == expected
    assert "Nothing is saved yet." in section
    assert count_automations(site) == 0
    # The form keeps what was typed, with the same one-time token.
    assert 'value="2" checked' in response.text and 'value="4" checked' in response.text
    assert 'name="form_token"' in response.text


def test_edit_saves_valid_changes_and_a_refused_edit_changes_nothing(site: Site) -> None:
    client, alice = signed_in(site)
    created = api(
        site,
        alice,
        "POST",
        "/automations",
        {"automation": "copy_file", "source": "a/*", "destinations": ["b/"], "name": "Before"},
    ).json()
    page = client.get(f"/automations/{created['id']}/edit")
    assert page.status_code == 200
    assert 'value="Before"' in page.text and ">b/</textarea>" in page.text
    token = form_token(page.text)
    good = [
        ("csrf_token", token),
        ("name", "After"),
        ("automation", "copy_file"),
        ("trigger", "daily"),
        ("source", "a/*"),
        ("destinations", "b/\nc/"),
        ("schedule_times_of_day", "06:00"),
    ]
    saved = post(client, f"/automations/{created['id']}/edit", good)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/automations/{created['id']}?saved=1"
    shown = api(site, alice, "GET", f"/automations/{created['id']}").json()
    assert shown["name"] == "After" and shown["trigger"] == "daily"
    assert shown["destinations"] == ["b/", "c/"] and shown["schedule_times_of_day"] == ["06:00"]
    # A bad edit: the API's message at the field, the record as it was.
    bad = [*good[:5], ("destinations", "b/\nb/../escape")]
    refused = post(client, f"/automations/{created['id']}/edit", bad)
    assert refused.status_code == 400
    assert inline_error(refused.text, "destinations") == (
        "destination 'b/../escape' must not contain empty, '.' or '..' segments."
    )
    assert api(site, alice, "GET", f"/automations/{created['id']}").json() == shown


def test_retry_settings_are_set_shown_and_turned_off_from_the_edit_form(site: Site) -> None:
    client, alice = signed_in(site)
    created = api(
        site,
        alice,
        "POST",
        "/automations",
        {"automation": "create_folder", "destinations": ["a/"], "name": "Retries"},
    ).json()
    path = f"/automations/{created['id']}/edit"
    base = [("automation", "create_folder"), ("destinations", "a/"), ("name", "Retries")]
    attempts = "retry_on_failure_number_of_attempts"
    interval = "retry_on_failure_interval_in_minutes"
    token = form_token(client.get(path).text)
    set_them = [("csrf_token", token), *base, (attempts, "4"), (interval, "30")]
    assert post(client, path, set_them).status_code == 303
    shown = api(site, alice, "GET", f"/automations/{created['id']}").json()
    assert (shown[attempts], shown[interval]) == (4, 30)
    page = client.get(path).text
    assert f'name="{attempts}" type="text" inputmode="numeric" value="4"' in page
    assert f'name="{interval}" type="text" inputmode="numeric" value="30"' in page
    # Both boxes emptied: automatic retries are off again.
    turn_off = [("csrf_token", token), *base, (attempts, ""), (interval, "")]
    assert post(client, path, turn_off).status_code == 303
    shown = api(site, alice, "GET", f"/automations/{created['id']}").json()
    assert (shown[attempts], shown[interval]) == (None, None)


def test_a_form_acting_where_its_owner_may_not_is_refused_as_the_api_refuses_it(
    site: Site,
) -> None:
    """The folder-permission check of the API's save runs for the forms too, in the
    writing transaction: the API's 403 message at its field, nothing saved."""
    bob = site.seed.account("bob", root=None)
    with site.db.write() as conn:
        permissions_store.grant(conn, bob.user.id, "in", Level.READONLY, NOW)
        permissions_store.grant(conn, bob.user.id, "out/bob", Level.FULL, NOW)
    client = site.client()
    assert client.sign_in(bob.key).status_code == 303
    hidden = new_form(client)
    fields = [
        ("automation", "copy_file"),
        ("trigger", "manual"),
        ("source", "in/*.csv"),
        ("destinations", "out/alice/"),
    ]
    before = count_automations(site)
    refused = post(client, "/automations/new", [*hidden.items(), *fields])
    assert refused.status_code == 403
    by_api = api(
        site,
        bob,
        "POST",
        "/automations",
        {"automation": "copy_file", "source": "in/*.csv", "destinations": ["out/alice/"]},
    )
    assert by_api.status_code == 403
    assert (
        inline_error(refused.text, "destinations")
        == by_api.json()["error"]
        == (
            "destination 'out/alice/': no write (or full) permission on 'out/alice' "
            "and its subfolders."
        )
    )
    assert ">out/alice/</textarea>" in refused.text  # what was typed is kept
    assert count_automations(site) == before
    # The refusal rolled back the form's one-time token too: corrected, it saves.
    fixed = [*fields[:3], ("destinations", "out/bob/")]
    created = post(client, "/automations/new", [*hidden.items(), *fixed])
    assert created.status_code == 303, created.text
    automation_id = int(created.headers["location"].split("/")[2].split("?")[0])
    # Editing: a source bob may not read is refused at its field, the record unchanged.
    edit = [
        ("csrf_token", hidden["csrf_token"]),
        ("automation", "copy_file"),
        ("trigger", "manual"),
        ("source", "secret/*"),
        ("destinations", "out/bob/"),
    ]
    unreadable = post(client, f"/automations/{automation_id}/edit", edit)
    assert unreadable.status_code == 403
    assert inline_error(unreadable.text, "source") == (
        "source 'secret/*': no read (or full) permission on 'secret'."
    )
    shown = api(site, bob, "GET", f"/automations/{automation_id}").json()
    assert (shown["source"], shown["destinations"]) == ("in/*.csv", ["out/bob/"])
    # A change that does not touch where it reads or writes is not checked, as in the
    # API: after the grant on "in" is revoked, renaming still saves.
    with site.db.write() as conn:
        conn.execute(permissions_t.delete().where(permissions_t.c.path == "in"))
    renamed = [*edit[:3], ("source", "in/*.csv"), ("destinations", "out/bob/"), ("name", "R")]
    assert post(client, f"/automations/{automation_id}/edit", renamed).status_code == 303
    assert api(site, bob, "GET", f"/automations/{automation_id}").json()["name"] == "R"


def test_disable_enable_and_delete(site: Site) -> None:
    client, alice = signed_in(site)
    body = {"automation": "create_folder", "destinations": ["d"], "name": "Doomed"}
    automation = api(site, alice, "POST", "/automations", body).json()["id"]
    run = site.seed.run(automation, outcome=(1, 0))
    token = client.token()
    confirm_off = client.get(f"/automations/{automation}/disable")
    assert confirm_off.status_code == 200
    assert "A run still queued finishes as a failure" in confirm_off.text
    assert form_token(confirm_off.text) == token
    assert api(site, alice, "GET", f"/automations/{automation}").json()["disabled"] is False
    off = post(client, f"/automations/{automation}/disable", [("csrf_token", token)])
    assert off.headers["location"] == f"/automations/{automation}?disabled=1"
    page = client.get(off.headers["location"]).text
    assert "The automation is disabled" in page
    assert re.search(r'<button type="submit" class="primary" disabled>Run now</button>', page)
    assert api(site, alice, "GET", f"/automations/{automation}").json()["disabled"] is True
    on = post(client, f"/automations/{automation}/enable", [("csrf_token", token)])
    assert on.status_code == 303
    assert api(site, alice, "GET", f"/automations/{automation}").json()["disabled"] is False
    # Delete: the confirmation says what happens to the runs, then the API's delete.
    confirm = client.get(f"/automations/{automation}/delete")
    assert confirm.status_code == 200
    assert "Its runs are kept" in confirm.text and "no longer listed" in confirm.text
    gone = post(client, f"/automations/{automation}/delete", [("csrf_token", token)])
    assert gone.headers["location"] == f"/automations?deleted={automation}"
    assert f"Automation {automation} was deleted." in client.get(gone.headers["location"]).text
    assert api(site, alice, "GET", f"/automations/{automation}").status_code == 404
    assert client.get(f"/automations/{automation}").status_code == 404
    # Its run stays readable by id, in the UI and in the API.
    assert client.get(f"/runs/{run.id}").status_code == 200
    assert api(site, alice, "GET", f"/automation_runs/{run.id}").status_code == 200


def test_other_users_automations_cannot_be_changed(site: Site) -> None:
    bob = site.seed.account("bob")
    theirs = site.seed.automation(bob, "Bob's")
    client, _ = signed_in(site)
    token = client.token()
    assert client.get(f"/automations/{theirs}/edit").status_code == 404
    assert client.get(f"/automations/{theirs}/delete").status_code == 404
    assert client.get(f"/automations/{theirs}/disable").status_code == 404
    for action in ("disable", "delete"):
        response = post(client, f"/automations/{theirs}/{action}", [("csrf_token", token)])
        assert response.status_code == 404
    with site.db.read() as conn:
        found = automations_store.get_automation(conn, theirs)
    assert found is not None and not found.deleted and not found.disabled


def test_runs_table_shows_the_trigger_and_filters_by_trigger_and_date(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Mixed")
    made = []
    with site.db.write() as conn:
        for n, trigger in enumerate(["manual", "webhook", "daily", "webhook", "manual"]):
            made.append(
                (
                    runs_store.create_run(
                        conn, automation, NOW - (4 - n) * DAY, trigger=trigger
                    ).id,
                    n,
                )
            )
    page = client.get(f"/automations/{automation}").text
    cells = re.findall(r'<td data-label="Trigger">(\w+)</td>', page)
    assert cells == ["manual", "webhook", "daily", "webhook", "manual"][::-1]
    webhooks = client.get(f"/automations/{automation}", params={"trigger": "webhook"}).text
    assert [int(i) for i in re.findall(r'<tr data-run-id="(\d+)">', webhooks)] == [
        made[3][0],
        made[1][0],
    ]
    # Dates are UTC days, both ends included: NOW is 2023-11-14.
    ranged = client.get(
        f"/automations/{automation}", params={"from": "2023-11-11", "to": "2023-11-13"}
    ).text
    assert [int(i) for i in re.findall(r'<tr data-run-id="(\d+)">', ranged)] == [
        made[3][0],
        made[2][0],
        made[1][0],
    ]
    assert 'value="2023-11-11"' in ranged and 'value="2023-11-13"' in ranged
    paged = client.get(
        f"/automations/{automation}", params={"trigger": "manual", "per_page": "1"}
    ).text
    next_link = unescape(re.search(r'<a rel="next" href="([^"]+)">', paged).group(1))  # type: ignore[union-attr]
    assert "trigger=manual" in next_link
    second = client.get(next_link).text
    assert [int(i) for i in re.findall(r'<tr data-run-id="(\d+)">', second)] == [made[0][0]]
    assert client.get(f"/automations/{automation}", params={"trigger": "nope"}).status_code == 400
    assert client.get(f"/automations/{automation}", params={"from": "13/11/2023"}).status_code == (
        400
    )
    nothing = client.get(f"/automations/{automation}", params={"trigger": "action"}).text
    assert "No runs match these filters" in nothing


def test_run_page_pages_and_filters_its_log_without_javascript(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "Chatty")
    run = site.seed.run(automation, stage=RunStage.EXECUTING)
    with site.db.write() as conn:
        for n in range(1203):
            level = MessageLevel.ERROR if n % 100 == 0 else MessageLevel.INFO
            runs_store.append_message(conn, run.id, NOW, f"line {n} <b>", level)

    def texts(html: str) -> list[str]:
        return [unescape(t) for t in re.findall(r'<span class="text">([^<]*)</span>', html)]

    def link(html: str, label: str) -> str:
        found = re.search(rf'<a href="([^"]+)">{re.escape(label)}', html)
        assert found, label
        return unescape(found.group(1))

    latest = client.get(f"/runs/{run.id}").text
    assert texts(latest) == [f"line {n} <b>" for n in range(703, 1203)]
    assert 'data-at-tail="true"' in latest and "Later lines" not in latest
    middle = client.get(link(latest, "← Earlier 500 lines")).text
    assert texts(middle) == [f"line {n} <b>" for n in range(203, 703)]
    assert 'data-at-tail="false"' in middle
    first = client.get(link(middle, "← Earlier 500 lines")).text
    assert texts(first) == [f"line {n} <b>" for n in range(203)]
    assert "Earlier 500 lines" not in first
    forward = client.get(link(first, "Later lines →")).text
    assert texts(forward) == [f"line {n} <b>" for n in range(203, 703)]
    assert client.get(link(forward, "Latest lines")).text.count('<li class="line') == 500
    errors_only = client.get(f"/runs/{run.id}", params={"level": "error"}).text
    assert texts(errors_only) == [f"line {n} <b>" for n in range(0, 1203, 100)]
    found = client.get(f"/runs/{run.id}", params={"q": "LINE 11"}).text
    assert texts(found) == [f"line {n} <b>" for n in [11, *range(110, 120), *range(1100, 1200)]]
    nothing = client.get(f"/runs/{run.id}", params={"q": "no such line"}).text
    assert "No lines match." in nothing
    for params in ({"level": "debug"}, {"before": "x"}, {"after": "-1"}, {"q": "x" * 201}):
        assert client.get(f"/runs/{run.id}", params=params).status_code == 400, params
    # A reader of earlier lines polls for the run's fields only.
    live = client.get(f"/runs/{run.id}/live", params={"log": "none"}).json()
    assert live["messages"] == [] and live["run"]["id"] == run.id
