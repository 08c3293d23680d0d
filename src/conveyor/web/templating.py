"""Jinja2 templates shipped in the package, autoescaped, rendered to HTML responses."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from conveyor.web import presentation
from conveyor.web.security import SECURITY_HEADERS

STATIC = resources.files("conveyor.web") / "static"


def _static_versions() -> dict[str, str]:
    """A content hash per static file, appended to its URL, so a browser never runs
    a stale script against a newer page and may cache the files for long."""
    versions = {}
    for item in STATIC.iterdir():
        if item.is_file():
            versions[item.name] = hashlib.sha256(item.read_bytes()).hexdigest()[:12]
    return versions


_VERSIONS = _static_versions()


def static_url(name: str) -> str:
    return f"/static/{name}?v={_VERSIONS.get(name, '0')}"


ENV = Environment(
    loader=PackageLoader("conveyor.web", "templates"),
    autoescape=select_autoescape(("html", "svg")),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(
    static_url=static_url,
    status_label=presentation.status_label,
    stage_label=presentation.stage_label,
    iso=presentation.iso,
    when=presentation.when,
    ago=presentation.ago,
    duration=presentation.duration,
)


def render(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a page. Pages show account data, so no shared cache may keep them."""
    html = ENV.get_template(name).render(**values)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return HTMLResponse(html, status_code=status_code, headers=headers)
