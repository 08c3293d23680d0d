"""Checks run inside the browser on a rendered page: accessibility basics and colour contrast.

Contrast is computed from the colours Chromium actually rendered (computed
styles), with the WCAG 2 relative-luminance formula.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e_browser import SCREENSHOTS, VIEWPORT
from playwright.sync_api import Page

_AUDIT = (Path(__file__).with_name("audit.js")).read_text()


def audit(page: Page, expect_status_marks: bool = True) -> int:
    """Fail with every problem found; return how many status colours were measured."""
    result: dict[str, Any] = page.evaluate(_AUDIT)
    assert result["problems"] == [], result["problems"]
    if expect_status_marks:
        assert result["checked"] > 0, "no status colours on the page to measure"
    return int(result["checked"])


def security_headers(headers: dict[str, str]) -> None:
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"


AXE_SOURCE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe(page: Page) -> None:
    """Run axe-core on the page as rendered: no violation of WCAG 2.0/2.1 levels A and AA.

    axe is evaluated through the DevTools protocol (as a test harness injects it),
    so the pages' Content-Security-Policy stays as served. It comes from
    node_modules (package.json; `scripts/bootstrap test` runs `npm ci`)."""
    if not AXE_SOURCE.is_file():
        raise AssertionError(f"{AXE_SOURCE} is missing: run `npm ci` (scripts/bootstrap test)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE.read_text())
    result: dict[str, Any] = page.evaluate(
        "async (tags) => { const r = await axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']}); "
        "return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
        "nodes: v.nodes.slice(0, 3).map(n => n.html.slice(0, 160))})); }",
        AXE_TAGS,
    )
    assert result == [], f"axe-core violations on {page.url}: {result}"


def no_horizontal_scroll(page: Page) -> None:
    """The page is no wider than the viewport (elements may scroll inside themselves)."""
    widths = page.evaluate(
        "({page: document.documentElement.scrollWidth, view: window.innerWidth})"
    )
    assert widths["page"] <= widths["view"], f"{page.url} lays out at {widths}"


PHONE = {"width": 390, "height": 844}


def check_page(page: Page, name: str) -> None:
    """axe-core at 1280x800 (light) and 390x844 (light and dark), no page-wide horizontal
    scroll on the phone, and a screenshot at each size under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
    axe(page)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    no_horizontal_scroll(page)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"))
    page.emulate_media(color_scheme="dark")
    axe(page)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
