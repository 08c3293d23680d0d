"""The web UI in a real browser: sign in, run an automation and watch it finish live,
filter, sort and page its runs, sign out; other users' things are 404 pages.

The server is Conveyor's app with the embedded engine workers, on SQLite. The
engine's test hooks slow planning and each operation down, so the run is
still in progress when its page opens and the page has to follow it live.
"""

from __future__ import annotations

import re

from e2e_browser import FOLDERS, World
from e2e_checks import audit, check_page, security_headers
from playwright.sync_api import Page, Response, expect

from conveyor.clock import SystemClock
from conveyor.store import automations as automations_store
from conveyor.testing.seed import Account

SECOND = 1_000_000


def folders_automation(world: World, owner: Account, name: str) -> int:
    with world.db.write() as conn:
        return automations_store.create_automation(
            conn,
            owner.user.id,
            SystemClock().now(),
            name=name,
            automation="create_folder",
            trigger="manual",
            destinations=FOLDERS,
        )


def neighbours(world: World) -> None:
    """Two more automations of alice's, so the list looks like a list."""
    now = SystemClock().now()
    with world.db.write() as conn:
        scheduled = automations_store.create_automation(
            conn,
            world.alice.user.id,
            now,
            name="Weekday reports",
            automation="copy_file",
            trigger="custom_schedule",
            source="incoming/*.csv",
            destinations=["reports/%Y-%m-%d/"],
            schedule_days_of_week=[1, 2, 3, 4, 5],
            schedule_times_of_day=["07:00"],
            schedule_time_zone="Europe/Paris",
        )
        retired = automations_store.create_automation(
            conn,
            world.alice.user.id,
            now,
            name="Old imports",
            automation="delete_file",
            trigger="manual",
            source="imports/*.tmp",
            disabled=True,
        )
    for n, outcome in enumerate([(5, 0)] * 9 + [(3, 2), (5, 0), (0, 4), (5, 0)]):
        world.seed.run(scheduled, created_at=now - (13 - n) * 86_400 * SECOND, outcome=outcome)
    world.seed.run(retired, created_at=now - 40 * 86_400 * SECOND, outcome=(12, 0))


def sign_in(page: Page, world: World, account: Account) -> None:
    page.goto(world.url + "/automations")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/automations$"))
    page.get_by_label("API key").fill(account.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(world.url + "/automations")


def test_sign_in_run_now_watch_live_and_sign_out(page: Page, world: World) -> None:
    automation = folders_automation(world, world.alice, "Daily folders")
    earlier = world.seed.run(automation, outcome=(6, 0))
    world.seed.run(automation, outcome=(4, 2))
    neighbours(world)

    # Signing in: the page, its accessibility, its headers, the cookie.
    first = page.goto(world.url + "/automations")
    assert first is not None
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Conveyor")
    security_headers(first.headers)
    audit(page, expect_status_marks=False)
    check_page(page, "sign-in")
    page.get_by_label("API key").fill(world.alice.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(world.url + "/automations")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["conveyor_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["value"] != world.alice.key
    assert "conveyor_session" not in page.evaluate("document.cookie")  # scripts cannot read it
    assert world.alice.key not in page.url

    # The automations page: the automation, its latest run and its strip.
    row = page.get_by_role("row").filter(has_text="Daily folders")
    expect(row.locator(".status").first).to_have_text("Partial failure")
    expect(row.locator(".strip .mark")).to_have_count(2)
    expect(row).to_contain_text("1 of 2 finished runs succeeded")
    audit(page)
    check_page(page, "automations")

    # A form post without the session's token is refused, and creates nothing.
    forged = page.request.post(f"{world.url}/automations/{automation}/run", form={"x": "1"})
    assert forged.status == 403

    # Run now: the run page opens and follows the run live, without a reload.
    live: list[Response] = []
    page.on("response", lambda r: live.append(r) if "/live?" in r.url else None)
    row.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    assert run_id > earlier.id
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#live-status")).to_have_text(
        "This run is in progress; this page updates live."
    )
    badge = page.locator('[data-field="status-badge"] .status')
    expect(badge).to_have_text("Success", timeout=30_000)
    expect(page.locator("#live-status")).to_have_text("This run has finished.")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(page.locator('[data-field="successful_operations"]')).to_have_text("6")
    expect(page.locator('[data-field="stage"]')).to_contain_text("Finished")
    log = page.locator("#log .line")
    for folder in FOLDERS:
        expect(log.filter(has_text=f"Created folder {folder}.")).to_have_count(1)
    steps = page.locator("#timeline .step")
    expect(steps).to_have_count(5)
    for index in range(5):
        expect(steps.nth(index)).to_have_class("step step-done")
        expect(steps.nth(index).locator("time")).to_have_count(1)
    # Lines arrived through the live document, not in the first render.
    delivered = [r.json() for r in live if r.ok]
    assert any(body["messages"] for body in delivered), "no log line came live"
    assert all((world.storage / folder).is_dir() for folder in FOLDERS)
    # Finished: the script stops asking.
    asked = len(live)
    page.wait_for_timeout(3000)
    assert len(live) == asked, "polling went on after the run finished"
    audit(page)
    check_page(page, "run")

    # Signing out ends the session: pages send you back to the sign-in form.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(f"{world.url}/runs/{run_id}")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/runs/\d+$"))


def test_filter_sort_and_page_the_runs(page: Page, world: World) -> None:
    automation = folders_automation(world, world.alice, "Archive")
    now = SystemClock().now()
    outcomes = [(2, 0), (0, 1), (1, 1), (3, 0)]
    made = [
        world.seed.run(
            automation, created_at=now - (48 - i) * 15 * 3600 * SECOND, outcome=outcomes[i % 4]
        )
        for i in range(48)
    ]
    failures = [r.id for r in reversed(made) if r.status.value == "failure"]
    sign_in(page, world, world.alice)
    page.get_by_role("link", name="Archive").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Archive")
    audit(page)
    check_page(page, "automation")

    def shown_ids() -> list[int]:
        return [int(t) for t in page.locator("#runs tbody th a").all_inner_texts()]

    # Filter by status, 5 per page.
    page.get_by_label("Status").select_option("failure")
    page.get_by_label("Runs per page").select_option("10")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#runs tbody tr")).to_have_count(10)
    assert shown_ids() == failures[:10]
    expect(page.locator("#runs tbody .status")).to_have_text(["Failure"] * 10)
    # Forward, forward, back.
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    assert shown_ids() == failures[10:]
    expect(page.get_by_role("link", name="Next →")).to_have_count(0)
    page.get_by_role("link", name="← Previous").click()
    expect(page.locator("#runs tbody tr")).to_have_count(10)
    assert shown_ids() == failures[:10]
    # Sort by creation time, oldest first: the filter and page size stay.
    page.get_by_role("link", name=re.compile("^Created")).click()
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Created ▲")
    assert shown_ids() == sorted(failures)[:10]
    expect(page.get_by_label("Status")).to_have_value("failure")


def test_other_users_automations_and_runs_are_not_found(page: Page, world: World) -> None:
    theirs = folders_automation(world, world.bob, "Bob's secret")
    their_run = world.seed.run(theirs, outcome=(1, 0), messages=["bob/private"])
    sign_in(page, world, world.alice)
    expect(page.get_by_text("No automations yet")).to_be_visible()
    for path in (f"/automations/{theirs}", f"/runs/{their_run.id}"):
        response = page.goto(world.url + path)
        assert response is not None and response.status == 404
        security_headers(response.headers)
        expect(page.get_by_role("heading", level=1)).to_have_text("Not Found")
        expect(page.locator("body")).not_to_contain_text("Bob's secret")
        expect(page.locator("body")).not_to_contain_text("bob/private")
        audit(page, expect_status_marks=False)
    check_page(page, "not-found")
