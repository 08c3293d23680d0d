"""The API reference at /api/rest/v1/docs: Swagger UI, served by this server.

Swagger UI's files come from the `fastapi-offline` package (which ships them
for exactly this), never from a CDN, so the page works on a machine without
internet. The page, its files and the script that starts Swagger UI
(static/api-docs.js) carry the web UI's security headers and policy: scripts
only from this origin, no inline script or style, images only from this
origin. Swagger UI's stylesheet inlines its few icons as `data:` URLs, which
that policy refuses; they are served as files of their own instead, and the
stylesheet is served with its `url(data:...)` references pointing at them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote

import fastapi_offline
from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse, Response

from conveyor.domain import errors
from conveyor.web.security import SECURITY_HEADERS
from conveyor.web.templating import render, static_url

DOCS_PATH = "/api/rest/v1/docs"
OPENAPI_PATH = "/api/rest/v1/openapi.json"
SWAGGER_UI_FILES = Path(fastapi_offline.__file__).with_name("static")
# In the files' URLs, so a browser never keeps an old copy after an upgrade.
ASSETS_VERSION = metadata.version("fastapi-offline")
CACHED = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
IMAGE_SUFFIXES = {"image/svg+xml": ".svg", "image/png": ".png", "image/jpeg": ".jpg"}
# url("...") with CSS escapes inside the quotes, or url(...) unquoted.
CSS_URL = re.compile(r"""url\((?:"((?:[^"\\]|\\.)*)"|([^)"']*))\)""")

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Image:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Stylesheet:
    css: bytes
    images: dict[str, Image]


def lift_data_urls(css: str, images_path: str) -> Stylesheet:
    """The stylesheet with each `data:` image it inlines replaced by a URL under
    `images_path` (named by a hash of its bytes), and those images."""
    images: dict[str, Image] = {}

    def lift(found: re.Match[str]) -> str:
        quoted, bare = found.groups()
        text = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        if not text.startswith("data:"):
            return found.group(0)
        header, _, payload = text.removeprefix("data:").partition(",")
        media_type, *params = header.split(";")
        suffix = IMAGE_SUFFIXES.get(media_type)
        if suffix is None:
            raise ValueError(f"Swagger UI's stylesheet inlines an unexpected {media_type!r}")
        body = base64.b64decode(payload) if "base64" in params else unquote(payload).encode()
        name = hashlib.sha256(body).hexdigest()[:16] + suffix
        images[name] = Image(body, media_type)
        return f'url("{images_path}/{name}")'

    return Stylesheet(CSS_URL.sub(lift, css).encode("utf-8"), images)


@functools.cache
def stylesheet() -> Stylesheet:
    css = (SWAGGER_UI_FILES / "swagger-ui.css").read_text("utf-8")
    return lift_data_urls(css, f"{DOCS_PATH}/images")


def asset_url(name: str) -> str:
    return f"{DOCS_PATH}/{name}?v={ASSETS_VERSION}"


@router.get(DOCS_PATH)
def docs_page() -> HTMLResponse:
    return render(
        "api_docs.html",
        openapi_url=OPENAPI_PATH,
        css_url=asset_url("swagger-ui.css"),
        bundle_url=asset_url("swagger-ui-bundle.js"),
        start_url=static_url("api-docs.js"),
    )


@router.get(DOCS_PATH + "/swagger-ui-bundle.js")
def docs_script() -> FileResponse:
    return FileResponse(
        SWAGGER_UI_FILES / "swagger-ui-bundle.js",
        media_type="text/javascript; charset=utf-8",
        headers=CACHED,
    )


@router.get(DOCS_PATH + "/swagger-ui.css")
def docs_stylesheet() -> Response:
    return Response(stylesheet().css, media_type="text/css; charset=utf-8", headers=CACHED)


@router.get(DOCS_PATH + "/images/{name}")
def docs_image(name: str) -> Response:
    image = stylesheet().images.get(name)
    if image is None:
        raise errors.NotFound(f"No API reference image named {name!r}.")
    return Response(image.body, media_type=image.media_type, headers=CACHED)
