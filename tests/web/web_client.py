"""A browser-less client of the web UI: real HTTP, cookies, and the forms' tokens, no JavaScript.

What it sees is what a browser with scripts turned off sees.
"""

from __future__ import annotations

import re
from html import unescape

import httpx

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no form token"
    return unescape(found.group(1))


class WebClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.http.get(path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.http.post(path, data=data)

    def sign_in(self, key: str, next_path: str = "/automations") -> httpx.Response:
        page = self.get("/sign-in", params={"next": next_path})
        assert page.status_code == 200, page.text
        return self.post(
            "/sign-in", {"api_key": key, "csrf_token": form_token(page.text), "next": next_path}
        )

    def token(self) -> str:
        """The signed-in session's form token, as the automations page carries it."""
        page = self.get("/automations")
        assert page.status_code == 200, page.status_code
        return form_token(page.text)

    def close(self) -> None:
        self.http.close()
