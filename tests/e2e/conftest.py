"""Real Chromium (Debian's /usr/bin/chromium) driven through Playwright, against a real server.

Playwright never downloads a browser here: it launches the system's. Without
it the tests fail and say what to install; they never skip. The browser tests
run on SQLite only: the pages' queries are tested on both databases in tests/web.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, World
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.engine.hooks import ENV_VAR as ENGINE_DELAYS
from conveyor.engine.service import embedded_services
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def backend() -> str:
    return "sqlite"


# Module scope, not session: Playwright's sync API keeps an asyncio loop running
# in the main thread while it is open, which would break later tests that run
# their own loop (asyncio.run) in the same process.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's Chromium. "
            "Install it with `apt-get install -y chromium` (.ci/run does this)."
        )
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile at 1280x800. Any Content-Security-Policy violation the
    pages cause (an inline script or style, say) fails the test."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    opened = context.new_page()
    violations: list[str] = []
    opened.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield opened
    context.close()
    assert violations == [], violations


@pytest.fixture
def world(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    url = database_url
    # 1 s between planning and its commit, 0.4 s per operation: a run of six
    # operations takes seconds, long enough to be watched, short for a test.
    monkeypatch.setenv(ENGINE_DELAYS, "plan=1.0,operation=0.4")
    settings = Settings.from_env(
        {
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "CONVEYOR_DATABASE_URL": url,
            "CONVEYOR_EMBEDDED_WORKERS": "1",
            "CONVEYOR_POLL_INTERVAL": "0.2",
        }
    )
    db = Database(url)
    seed = Seeder(db)
    alice, bob = seed.account("alice"), seed.account("bob")
    app = create_app(settings, db, services=embedded_services())
    with ServerThread(app) as running:
        yield World(running.url, db, seed, settings.storage_root, alice, bob)
    db.dispose()


@pytest.fixture
def still_world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """The app without engine workers: runs stay as the test puts them."""
    settings = Settings.from_env(
        {"CONVEYOR_HOME": str(tmp_path / "home"), "CONVEYOR_DATABASE_URL": database_url}
    )
    db = Database(database_url)
    seed = Seeder(db)
    alice, bob = seed.account("alice"), seed.account("bob")
    with ServerThread(create_app(settings, db)) as running:
        yield World(running.url, db, seed, settings.storage_root, alice, bob)
    db.dispose()
