"""The API reference at /api/rest/v1/docs is served whole by Conveyor itself: the page,
Swagger UI's script and stylesheet, the images the stylesheet uses and the script that
starts it, each from this server, under the web UI's Content-Security-Policy. Nothing
it references lives on another host (the browser test renders it with the network
to anything but 127.0.0.1 blocked: tests/e2e/test_api_reference_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from conveyor.testing.server import ServerThread
from conveyor.web.api_docs import lift_data_urls
from conveyor.web.security import CSP, SECURITY_HEADERS

DOCS = "/api/rest/v1/docs"


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the reference touches no database


class References(HTMLParser):
    """Every URL a page makes the browser load: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "img") and found.get("src"):
            self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))
        assert not (tag == "script" and not found.get("src")), "an inline script"
        assert "style" not in found, f"an inline style on <{tag}>"


def css_urls(css: str) -> list[str]:
    return [quoted or bare for quoted, bare in re.findall(r'url\((?:"([^"]*)"|([^)]*))\)', css)]


def assert_ui_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (response.url, name)


def test_the_page_and_everything_it_loads_come_from_this_server(
    serve: Callable[..., ServerThread],
) -> None:
    server = serve()
    page = httpx.get(f"{server.url}{DOCS}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert_ui_headers(page)
    parser = References()
    parser.feed(page.text)
    urls = [urljoin(str(page.url), url) for url in parser.urls]
    assert {urlsplit(url).path for url in urls} >= {
        f"{DOCS}/swagger-ui-bundle.js",
        f"{DOCS}/swagger-ui.css",
        "/static/api-docs.js",
    }
    assert 'data-openapi-url="/api/rest/v1/openapi.json"' in page.text
    images: list[str] = []
    for url in urls:
        assert url.startswith(server.url + "/"), f"{url} is not on this server"
        asset = httpx.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert_ui_headers(asset)
        if url.split("?")[0].endswith(".css"):
            assert asset.headers["content-type"] == "text/css; charset=utf-8"
            references = css_urls(asset.text)
            assert references, "Swagger UI's stylesheet uses images"
            assert not [ref for ref in references if ref.startswith("data:")]
            images += [urljoin(url, ref) for ref in references]
        elif url.split("?")[0].endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript")
    assert images
    for url in images:
        assert url.startswith(f"{server.url}{DOCS}/images/"), url
        image = httpx.get(url)
        assert image.status_code == 200, url
        assert image.headers["content-type"].startswith("image/")
        assert_ui_headers(image)
    assert "img-src 'self'" in CSP and "data:" not in CSP


def test_unknown_reference_files_are_404s(serve: Callable[..., ServerThread]) -> None:
    server = serve()
    for path in ("/images/nope.svg", "/redoc.standalone.js", "/../../pyproject.toml"):
        answer = httpx.get(f"{server.url}{DOCS}{path}")
        assert answer.status_code == 404, path
    assert httpx.get(f"{server.url}{DOCS}/images/nope.svg").json()["type"] == (
        "not-found/not-found"
    )


def test_data_urls_become_files_with_the_same_bytes() -> None:
    css = (
        'a{background:url("data:image/svg+xml;charset=utf-8,<svg xmlns=\\"x\\">'
        '<path fill=\\"%23fff\\"/></svg>")}'
        "b{background:url(data:image/png;base64,iVBORw0KGgo=)}"
        'c{background:url("other.png")}'
    )
    lifted = lift_data_urls(css, "/img")
    bodies = sorted(image.body for image in lifted.images.values())
    assert bodies == [b'<svg xmlns="x"><path fill="#fff"/></svg>', b"\x89PNG\r\n\x1a\n"]
    names = re.findall(r'url\("/img/([0-9a-f]{16}\.(?:svg|png))"\)', lifted.css.decode())
    assert sorted(names) == sorted(lifted.images)
    assert b'url("other.png")' in lifted.css
    with pytest.raises(ValueError, match="image/webp"):
        lift_data_urls("a{background:url(data:image/webp;base64,AA==)}", "/img")
