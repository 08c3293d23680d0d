"""Checks run inside the browser on a rendered page: accessibility basics and colour contrast.

Contrast is computed from the colours Chromium actually rendered (computed
styles), with the WCAG 2 relative-luminance formula.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
