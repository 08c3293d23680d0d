"""Jinja2 templates shipped in the package, autoescaped, rendered to HTML responses."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from conveyor.domain.runs import RunStatus
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
    # The templates ship in the package and change only with it: no file check per render.
    auto_reload=False,
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
    run_statuses=[status.value for status in RunStatus],
)


def _cached_markup() -> tuple[dict[str, Markup], dict[str, Markup], Markup]:
    """Each status's badge and icon, and the charts' legend, rendered once: a macro
    call costs tens of µs per render, and a runs table shows a badge on every row."""
    macros: Any = ENV.get_template("_macros.html").module
    statuses = [status.value for status in RunStatus]
    badges = {status: Markup(macros.status(status)) for status in statuses}
    icons = {status: Markup(macros.icon(status)) for status in statuses}
    return badges, icons, Markup(macros.legend(presentation.CHART_STATUSES))


def badge(status: str) -> Markup:
    """The status as colour, icon and text."""
    return _BADGES.get(status) or Markup(f"<span>{escape(status)}</span>")


def status_icon(status: str) -> Markup:
    return _ICONS.get(status, _ICONS[RunStatus.RUNNING.value])


def time_tag(us: int | None) -> Markup:
    """A <time> element with the machine-readable instant, or a dash when unknown."""
    if us is None:
        return Markup('<span class="muted">—</span>')
    return Markup(f'<time datetime="{presentation.iso(us)}">{presentation.when(us)}</time>')


ENV.globals.update(badge=badge, status_icon=status_icon, time_tag=time_tag)
# After the globals: a template keeps the globals it was loaded with.
_BADGES, _ICONS, _LEGEND = _cached_markup()
ENV.globals.update(chart_legend=_LEGEND)


def render(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a page. Pages show account data, so no shared cache may keep them."""
    html = ENV.get_template(name).render(**values)
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return HTMLResponse(html, status_code=status_code, headers=headers)
