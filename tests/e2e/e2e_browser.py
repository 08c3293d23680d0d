"""What the browser tests share: how Chromium is started, where screenshots go, the world."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

from conveyor.store.database import Database
from conveyor.testing.seed import Account, Seeder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
FOLDERS = [f"e2e/folder-{n}" for n in range(1, 7)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def screenshot(page: Page, name: str) -> Path:
    """A screenshot of what the page shows, kept under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@dataclass
class World:
    url: str
    db: Database
    seed: Seeder
    storage: Path
    alice: Account
    bob: Account
