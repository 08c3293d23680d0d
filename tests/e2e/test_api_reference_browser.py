"""The API reference in real Chromium with every request to anything but this server
refused: Swagger UI renders the operations list and runs a request, with no
Content-Security-Policy violation (the `page` fixture fails on any)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_browser import screenshot
from e2e_checks import security_headers
from playwright.sync_api import Page, Route, expect

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.server import ServerThread


@pytest.fixture
def server_url(tmp_path: Path, database_url: str) -> Iterator[str]:
    settings = Settings.from_env(
        {"CONVEYOR_HOME": str(tmp_path / "home"), "CONVEYOR_DATABASE_URL": database_url}
    )
    db = Database(database_url)
    with ServerThread(create_app(settings, db)) as running:
        yield running.url
    db.dispose()


def test_the_reference_renders_and_runs_a_request_offline(page: Page, server_url: str) -> None:
    refused: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(server_url + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_this_server)
    loaded: list[str] = []
    page.on("requestfinished", lambda request: loaded.append(request.url))

    answer = page.goto(server_url + "/api/rest/v1/docs")
    assert answer is not None and answer.status == 200
    security_headers(answer.headers)
    paths = page.locator(".opblock-summary-path")
    expect(paths.first).to_be_visible()
    shown = paths.all_inner_texts()
    for path in (
        "/api/rest/v1/automation_runs",
        "/api/rest/v1/automation_runs/{run_id}",
        "/api/rest/v1/automations",
        "/healthz",
    ):
        assert path in shown, shown

    # An operation opened, tried and executed: its answer shown on the page.
    health = page.locator(".opblock", has=page.locator('[data-path="/healthz"]'))
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    expect(health.locator(".live-responses-table tbody .response-col_status").first).to_have_text(
        "200"
    )
    screenshot(page, "api-reference")

    assert refused == []
    assert any("/api/rest/v1/docs/images/" in url for url in loaded), loaded
    assert all(url.startswith(server_url + "/") for url in loaded), loaded
