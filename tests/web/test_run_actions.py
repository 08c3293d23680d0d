"""Cancel and Rerun on the run page: confirmation pages, CSRF-checked forms that call
the API's store functions (conveyor.store.run_control), refusals as readable pages."""

from __future__ import annotations

import re

from web_client import WebClient
from web_site import Site

from conveyor.domain.runs import RunStatus
from conveyor.store import runs as runs_store
from conveyor.testing.seed import Account


def signed_in(site: Site, name: str = "alice") -> tuple[WebClient, Account]:
    account = site.seed.account(name)
    client = site.client()
    assert client.sign_in(account.key).status_code == 303
    return client, account


def test_cancel_asks_first_needs_the_token_and_cancels_once(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "to cancel")
    run = site.seed.run(automation)  # queued: canceled at once
    page = client.get(f"/runs/{run.id}").text
    shown, finished = page.split('<template id="finished-actions">')
    assert f'href="/runs/{run.id}/cancel">Cancel…</a>' in shown and "Rerun…" not in shown
    # What the live script puts in its place once the run has finished.
    assert finished.startswith(f'<a class="button" href="/runs/{run.id}/rerun">Rerun…</a>')
    confirm = client.get(f"/runs/{run.id}/cancel")
    assert confirm.status_code == 200 and "Cancel run" in confirm.text
    refused = client.post(f"/runs/{run.id}/cancel", {"csrf_token": "guess"})
    assert refused.status_code == 403
    with site.db.read() as conn:
        assert runs_store.get_run(conn, run.id) == run
    done = client.post(f"/runs/{run.id}/cancel", {"csrf_token": client.token()})
    assert done.status_code == 303 and done.headers["location"] == f"/runs/{run.id}"
    with site.db.read() as conn:
        canceled = runs_store.get_run(conn, run.id)
    assert canceled is not None and canceled.status is RunStatus.CANCELED
    assert "<dt>Cancel requested</dt>" in client.get(f"/runs/{run.id}").text
    again = client.post(f"/runs/{run.id}/cancel", {"csrf_token": client.token()})
    assert again.status_code == 422 and again.headers["content-type"].startswith("text/html")
    with site.db.read() as conn:
        assert runs_store.get_run(conn, run.id) == canceled


def test_rerun_of_failed_operations_links_both_ways(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "to rerun")
    run = site.seed.run(automation, outcome=(2, 1))
    page = client.get(f"/runs/{run.id}").text
    assert f'href="/runs/{run.id}/rerun">Rerun…</a>' in page and "Cancel…" not in page
    confirm = client.get(f"/runs/{run.id}/rerun").text
    assert "Only the 1 failed operation" in confirm
    done = client.post(
        f"/runs/{run.id}/rerun", {"csrf_token": client.token(), "failed_only": "true"}
    )
    assert done.status_code == 303
    new_id = int(re.fullmatch(r"/runs/(\d+)", done.headers["location"]).group(1))  # type: ignore[union-attr]
    with site.db.read() as conn:
        row = runs_store.run_row(conn, new_id)
    assert row is not None and row.rerun_of_run_id == run.id
    assert f'<a href="/runs/{run.id}">Run {run.id}</a>' in client.get(f"/runs/{new_id}").text
    # Another user's run is not found, and nothing is created.
    bob_client, _ = signed_in(site, "bob")
    assert (
        bob_client.post(f"/runs/{run.id}/rerun", {"csrf_token": bob_client.token()}).status_code
        == 404
    )
    with site.db.read() as conn:
        assert runs_store.get_run(conn, new_id + 1) is None


def test_an_unfinished_run_page_carries_a_badge_for_every_status(site: Site) -> None:
    """The live script swaps the status badge for one of these templates; a status
    without one (the run-control statuses once were) left the old badge showing."""
    client, alice = signed_in(site)
    run = site.seed.run(site.seed.automation(alice, "watched"))
    page = client.get(f"/runs/{run.id}").text
    templates = re.search(r'<template id="status-templates">(.*?)</template>', page, re.S)
    assert templates is not None
    assert set(re.findall(r'data-status="([a-z_]+)"', templates.group(1))) == {
        status.value for status in RunStatus
    }
