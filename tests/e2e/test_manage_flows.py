"""Managing automations in a real browser: create (by keyboard alone) -> run (by keyboard)
-> watch live -> edit -> disable -> delete, each step checked on the page and in the
database; the run log's following, filters and local times; every page checked by
axe-core at desktop and phone width, light and dark, with screenshots of both sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from e2e_browser import FOLDERS, VIEWPORT, World
from e2e_checks import audit, axe, check_page
from playwright.sync_api import Browser, Page, expect

from conveyor.clock import SystemClock
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.store import automations as automations_store
from conveyor.store import runs as runs_store
from conveyor.store.schema import automations as automations_t


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the focused element matches `selector`: it is reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def sign_in(page: Page, world: World) -> None:
    page.goto(world.url + "/automations")
    page.get_by_label("API key").fill(world.alice.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(world.url + "/automations")


def automation_row(world: World, automation_id: int) -> automations_store.Automation | None:
    with world.db.read() as conn:
        return automations_store.get_automation(conn, automation_id)


def test_create_run_watch_edit_disable_delete(page: Page, world: World) -> None:
    sign_in(page, world)
    check_page(page, "automations-empty")

    # Create, by keyboard alone. A first try without destinations is refused inline.
    tab_to(page, 'a[href="/automations/new"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("New automation")
    check_page(page, "new-automation")
    tab_to(page, "#f-name")
    page.keyboard.type("Keyboard folders")
    page.keyboard.press("Enter")
    error = page.locator("#destinations-error")
    expect(error).to_have_text(
        "Error: Parameter missing: destinations (the folders create_folder creates)"
    )
    expect(page.locator("#f-destinations")).to_be_focused()  # the refused field has focus
    with world.db.read() as conn:
        assert conn.execute(automations_t.select()).all() == []
    check_page(page, "new-automation-error")
    for n, folder in enumerate(FOLDERS):
        if n:
            page.keyboard.press("Enter")
        page.keyboard.type(folder)
    tab_to(page, 'button[value="save"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_have_text("The automation was created.")
    automation_id = int(re.search(r"/automations/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    created = automation_row(world, automation_id)
    assert created is not None and created.name == "Keyboard folders"
    assert list(created.destinations) == FOLDERS and created.trigger.value == "manual"

    # Run, by keyboard; the run page follows it live to success.
    tab_to(page, 'form[action$="/run"] button')
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator('[data-field="status-badge"] .status')).to_have_text(
        "Success", timeout=30_000
    )
    for folder in FOLDERS:
        expect(
            page.locator("#log .line").filter(has_text=f"Created folder {folder}.")
        ).to_have_count(1)
    with world.db.read() as conn:
        run = runs_store.get_run(conn, run_id)
    assert run is not None and run.status.value == "success"
    assert all((world.storage / folder).is_dir() for folder in FOLDERS)
    audit(page)
    check_page(page, "run-keyboard")

    # Edit: a custom schedule, previewed, then saved.
    page.goto(f"{world.url}/automations/{automation_id}")
    audit(page)
    check_page(page, "automation-after-run")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Days of the week (custom_schedule trigger)")).to_be_hidden()
    page.get_by_label("Name").fill("Weekday folders")
    page.get_by_label("Trigger", exact=True).select_option("custom_schedule")
    expect(page.get_by_role("group", name=re.compile("Days of the week"))).to_be_visible()
    for day in ("Monday", "Wednesday", "Friday"):
        page.get_by_label(day).check()
    page.get_by_label(re.compile("^Times of day")).fill("07:30")
    page.get_by_label(re.compile("^Schedule time zone")).fill("Europe/Paris")
    page.get_by_role("button", name="Preview schedule").click()
    expect(page.locator("#preview li")).to_have_count(5)
    assert automation_row(world, automation_id).trigger.value == "manual"  # type: ignore[union-attr]
    check_page(page, "edit-preview")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Weekday folders")
    expect(page.locator("#next-times li")).to_have_count(5)
    edited = automation_row(world, automation_id)
    assert edited is not None and edited.trigger.value == "custom_schedule"
    assert edited.schedule_days_of_week == (1, 3, 5) and edited.schedule_times_of_day == ("07:30",)

    # Disable, then delete with confirmation.
    page.get_by_role("link", name="Disable…").click()
    expect(page.get_by_text("A run still queued finishes as a failure")).to_be_visible()
    check_page(page, "disable")
    page.get_by_role("button", name="Disable automation").click()
    expect(page.get_by_role("button", name="Run now")).to_be_disabled()
    assert automation_row(world, automation_id).disabled is True  # type: ignore[union-attr]
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_text("Its runs are kept")).to_be_visible()
    check_page(page, "delete")
    page.get_by_role("button", name="Delete automation").click()
    expect(page.get_by_role("status").first).to_contain_text(
        f"Automation {automation_id} was deleted."
    )
    assert automation_row(world, automation_id).deleted is True  # type: ignore[union-attr]
    page.goto(f"{world.url}/runs/{run_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Run {run_id}")


def test_webhook_url_is_shown_and_copied(browser: Browser, world: World) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        sign_in(page, world)
        page.goto(world.url + "/automations/new")
        page.get_by_label("Name").fill("Hook")
        page.get_by_label("Type").select_option("copy_file")
        page.get_by_label(re.compile("^Source")).fill("inbox/*")
        page.get_by_label(re.compile("^Destinations")).fill("outbox/")
        page.get_by_label("Trigger", exact=True).select_option("webhook")
        page.get_by_role("button", name="Create automation").click()
        url_field = page.get_by_role("textbox", name="Webhook URL")
        expect(url_field).to_have_value(re.compile(r"/api/rest/v1/webhooks/[0-9a-f]{48}$"))
        page.get_by_role("button", name="Copy").click()
        expect(page.get_by_text("Copied.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == url_field.input_value()
        check_page(page, "automation-webhook")
    finally:
        context.close()


@pytest.fixture
def paris(browser: Browser) -> Iterator[Page]:
    """A browser in Paris time, to see times in the reader's zone."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id="Europe/Paris")  # type: ignore[arg-type]
    yield context.new_page()
    context.close()


def test_run_log_follows_filters_pages_and_shows_local_times(
    paris: Page, still_world: World
) -> None:
    world = still_world
    page = paris
    now = SystemClock().now()
    with world.db.write() as conn:
        automation = automations_store.create_automation(
            conn, world.alice.user.id, now, name="Noisy", destinations=["x"]
        )
    run = world.seed.run(automation, stage=RunStage.EXECUTING)
    with world.db.write() as conn:
        for n in range(700):
            level = MessageLevel.ERROR if n % 50 == 0 else MessageLevel.INFO
            runs_store.append_message(conn, run.id, now, f"line {n}", level)
    sign_in(page, world)
    page.goto(f"{world.url}/runs/{run.id}")
    log = page.locator("#log")
    expect(log.locator(".line")).to_have_count(500)
    expect(log.locator(".line").last).to_contain_text("line 699")

    def at_bottom() -> bool:
        return bool(
            page.evaluate(
                "() => { const l = document.getElementById('log');"
                " return l.scrollHeight - l.scrollTop - l.clientHeight < 8; }"
            )
        )

    assert at_bottom()
    # Times: the reader's zone, UTC on hover; the setting shows UTC.
    first_time = log.locator("time").first
    expect(first_time).to_have_text(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST|GMT\+\d)$")
    )
    expect(first_time).to_have_attribute("title", re.compile(r" UTC$"))
    page.get_by_role("button", name="Show times in UTC").click()
    expect(first_time).to_have_text(re.compile(r" UTC$"))
    page.get_by_role("button", name="Show times in my time zone").click()
    expect(first_time).not_to_have_text(re.compile(r" UTC$"))

    # New lines are followed while the reader is at the bottom.
    with world.db.write() as conn:
        runs_store.append_message(conn, run.id, now, "fresh 1")
    expect(log.locator(".line").last).to_contain_text("fresh 1")
    page.wait_for_function(
        "() => { const l = document.getElementById('log');"
        " return l.scrollHeight - l.scrollTop - l.clientHeight < 8; }"
    )
    # Scrolled up, the view stays put and "Jump to latest" appears.
    page.evaluate("document.getElementById('log').scrollTop = 0")
    top_line = page.evaluate(
        "() => { const l = document.getElementById('log'); const r = l.getBoundingClientRect();"
        " return document.elementFromPoint(r.left + 20, r.top + 12).closest('li').dataset.id; }"
    )
    with world.db.write() as conn:
        runs_store.append_message(conn, run.id, now, "fresh 2")
    expect(log.locator(".line").last).to_contain_text("fresh 2")
    jump = page.get_by_role("button", name="Jump to latest ↓")
    expect(jump).to_be_visible()
    assert not at_bottom()
    still_top = page.evaluate(
        "() => { const l = document.getElementById('log'); const r = l.getBoundingClientRect();"
        " return document.elementFromPoint(r.left + 20, r.top + 12).closest('li').dataset.id; }"
    )
    assert abs(int(still_top) - int(top_line)) <= 2, (top_line, still_top)
    jump.click()
    expect(jump).to_be_hidden()
    assert at_bottom()
    axe(page)

    # Level filter and search, over the whole log; paging back.
    page.get_by_label("Level").select_option("error")
    page.get_by_role("button", name="Filter").click()
    expect(log.locator(".line")).to_have_count(14)
    expect(log.locator(".level")).to_have_text(["error"] * 14)
    page.get_by_label("Level").select_option("")
    page.get_by_label("Search").fill("LINE 12")
    page.get_by_role("button", name="Filter").click()
    expect(log.locator(".line .text")).to_have_text(
        ["line 12", *[f"line {n}" for n in range(120, 130)]]
    )
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name="← Earlier 500 lines").click()
    expect(log.locator(".line").first).to_contain_text("line 0")
    expect(log.locator(".line")).to_have_count(202)
    check_page(page, "run-log-earlier")
