"""The Runs page across automations in a real browser: filters, paging, accessibility
(axe-core at desktop and phone width, dark mode), no horizontal scroll at 390 px."""

from __future__ import annotations

import re

from e2e_browser import World
from e2e_checks import audit, check_page
from playwright.sync_api import Page, expect
from test_ui_flows import folders_automation, sign_in

from conveyor.clock import SystemClock

SECOND = 1_000_000


def test_runs_page_filters_and_pages_runs_of_every_automation(page: Page, world: World) -> None:
    now = SystemClock().now()
    first = folders_automation(world, world.alice, "Nightly archive with a long name")
    second = folders_automation(world, world.alice, "Imports")
    outcomes = [(2, 0), (0, 1), (1, 1)]
    made = [
        world.seed.run(
            (first, second)[i % 2],
            created_at=now - (30 - i) * 3600 * SECOND,
            outcome=outcomes[i % 3],
        )
        for i in range(30)
    ]
    sign_in(page, world, world.alice)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Runs")
    audit(page)
    check_page(page, "runs")

    def shown_ids() -> list[int]:
        return [int(t) for t in page.locator("#runs tbody th a").all_inner_texts()]

    assert shown_ids()[:3] == [r.id for r in reversed(made)][:3]
    # Failures and partial failures of one automation, 5 a page.
    page.get_by_label("Failure", exact=True).check()
    page.get_by_label("Partial failure").check()
    page.get_by_label("Automation ID").fill(str(first))
    page.get_by_label("Runs per page").select_option("10")
    page.get_by_role("button", name="Apply").click()
    wanted = [
        r.id
        for r in reversed(made)
        if r.automation_id == first and r.status.value in ("failure", "partial_failure")
    ]
    expect(page.locator("#runs tbody tr")).to_have_count(min(10, len(wanted)))
    assert shown_ids() == wanted[:10]
    expect(page.get_by_label("Failure", exact=True)).to_be_checked()
    check_page(page, "runs-filtered")
    # Oldest first keeps the filter.
    page.get_by_label("Order").select_option("oldest")
    page.get_by_role("button", name="Apply").click()
    assert shown_ids() == sorted(wanted)[:10]
    expect(page).to_have_url(re.compile(r"status=failure"))


def test_run_now_then_cancel_then_rerun_from_the_run_page(page: Page, world: World) -> None:
    automation = folders_automation(world, world.alice, "Cancel me")
    sign_in(page, world, world.alice)
    page.goto(f"{world.url}/automations/{automation}")
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    # The engine's test hooks slow each operation down: the run is still in progress.
    page.get_by_role("link", name="Cancel…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel run {run_id}?")
    check_page(page, "run-cancel")
    page.get_by_role("button", name="Cancel run").click()
    expect(page).to_have_url(f"{world.url}/runs/{run_id}")
    # The engine stops the run at its next operation boundary (within a second here);
    # the page's live update shows it, and the Rerun button, without a reload.
    expect(page.locator('[data-field="status-badge"] .status')).to_have_text(
        "Canceled", timeout=15_000
    )
    expect(page.locator("#live-status")).to_have_text("This run has finished.")
    expect(page.locator('[data-field="status-text"]')).to_contain_text("canceled")
    expect(page.locator("dt", has_text="Cancel requested")).to_have_count(1)
    page.get_by_role("link", name="Rerun…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Rerun run {run_id}?")
    check_page(page, "run-rerun")
    page.get_by_role("button", name="Rerun").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    assert int(page.url.rsplit("/", 1)[1]) != run_id
    expect(page.get_by_role("link", name=f"Run {run_id}")).to_be_visible()
