"""The Runs page across automations (/runs) and the run page's run-control buttons."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from web_client import WebClient
from web_site import NOW, Site

from conveyor.store import runs as runs_store
from conveyor.store.schema import automation_runs
from conveyor.testing.seed import Account

SECOND = 1_000_000
DAY = 86_400 * SECOND


def signed_in(site: Site, name: str = "alice", admin: bool = False) -> tuple[WebClient, Account]:
    account = site.seed.account(name, admin=admin)
    client = site.client()
    assert client.sign_in(account.key).status_code == 303
    return client, account


def run_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-run-id="(\d+)">', html)]


def next_link(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)">', html)
    return unescape(found.group(1)) if found else None


def test_runs_page_lists_visible_runs_across_automations_with_filters_and_paging(
    site: Site,
) -> None:
    alice_client, alice = signed_in(site, "alice")
    admin_client, _ = signed_in(site, "root", admin=True)
    bob = site.seed.account("bob")
    first = site.seed.automation(alice, "first <b>")
    second = site.seed.automation(alice, "second")
    theirs = site.seed.automation(bob, "bob-only")
    made = {
        "ok": site.seed.run(first, created_at=NOW - 3 * DAY, outcome=(1, 0)),
        "failed": site.seed.run(second, created_at=NOW - 2 * DAY, outcome=(0, 1)),
        "partial": site.seed.run(first, created_at=NOW - DAY, outcome=(1, 1)),
        "bob": site.seed.run(theirs, created_at=NOW, outcome=(0, 1)),
    }
    page = alice_client.get("/runs")
    assert page.status_code == 200
    html = page.text
    ids = [made[k].id for k in ("partial", "failed", "ok")]
    assert run_ids(html) == ids
    assert "first &lt;b&gt;" in html and "bob-only" not in html
    assert run_ids(admin_client.get("/runs").text) == [made["bob"].id, *ids]

    # Several statuses at once, oldest first.
    failed = alice_client.get("/runs?status=failure&status=partial_failure&order=oldest").text
    assert run_ids(failed) == [made["failed"].id, made["partial"].id]
    assert 'value="failure" checked' in failed
    # One automation, a date range (UTC days, both ends included).
    day = (NOW - 2 * DAY) // DAY
    on = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
    ranged = alice_client.get(f"/runs?from={on}&to={on}").text
    assert run_ids(ranged) == [made["failed"].id]
    assert run_ids(alice_client.get(f"/runs?automation={first}").text) == [
        made["partial"].id,
        made["ok"].id,
    ]
    assert run_ids(alice_client.get("/runs?trigger=webhook").text) == []
    assert "No runs match these filters" in alice_client.get("/runs?trigger=webhook").text

    # Paging with the API's cursors, filters kept.
    one = alice_client.get("/runs?per_page=1&status=success&status=partial_failure").text
    assert run_ids(one) == [made["partial"].id]
    following = next_link(one)
    assert following is not None and "status=success" in following
    assert run_ids(alice_client.get(following).text) == [made["ok"].id]


def test_runs_page_refuses_bad_filters_readably(site: Site) -> None:
    client, _ = signed_in(site)
    for query, text in (
        ("status=nope", "filter[status]"),
        ("trigger=cron", "filter[trigger]"),
        ("from=yesterday", "from must be a date"),
        ("automation=x", "filter[automation_id]"),
        ("order=sideways", "order must be"),
        ("colour=red", "Unknown parameter: colour"),
    ):
        response = client.get(f"/runs?{query}")
        assert response.status_code == 400, query
        assert response.headers["content-type"].startswith("text/html")
        assert text in unescape(response.text), (query, response.text[:500])
    assert site.client().get("/runs").status_code in (303, 307)


def test_run_page_links_its_lineage(site: Site) -> None:
    client, alice = signed_in(site)
    automation = site.seed.automation(alice, "lineage")
    original = site.seed.run(automation, outcome=(0, 1))
    with site.db.write() as conn:
        rerun = runs_store.create_run(conn, automation, NOW, rerun_of_run_id=original.id)
        retry = runs_store.create_run(conn, automation, NOW, retry_of_run_id=rerun.id)
        conn.execute(
            automation_runs.update()
            .where(automation_runs.c.id == rerun.id)
            .values(retried_in_run_id=retry.id)
        )
    html = client.get(f"/runs/{rerun.id}").text
    assert f'<dt>Rerun of</dt><dd><a href="/runs/{original.id}">Run {original.id}</a>' in html
    assert f'<dt>Retried in</dt><dd><a href="/runs/{retry.id}">Run {retry.id}</a>' in html
    html = client.get(f"/runs/{retry.id}").text
    assert f'<dt>Retry of</dt><dd><a href="/runs/{rerun.id}">Run {rerun.id}</a>' in html
    assert "Rerun of" not in client.get(f"/runs/{original.id}").text
