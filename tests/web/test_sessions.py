"""Signing in and out over real HTTP: the cookie, its flags, CSRF tokens, ends of sessions."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest
from web_client import form_token
from web_site import Site

from conveyor.app import create_app
from conveyor.domain.runs import RunStage
from conveyor.store import users
from conveyor.testing.server import ServerThread
from conveyor.web.security import CSP

PAGES = ["/automations", "/automations/1", "/runs/1", "/runs/1/live"]


def session_cookie(response: httpx.Response) -> str:
    headers = [
        h for h in response.headers.get_list("set-cookie") if h.startswith("conveyor_session=")
    ]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_session(site: Site, path: str) -> None:
    response = site.client().get(path + "?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == f"/sign-in?next={path}%3Fx%3D1"


def test_sign_in_sets_a_session_cookie_not_the_key(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    response = client.sign_in(alice.key, next_path="/automations?cursor=abc")
    assert response.status_code == 303
    assert response.headers["location"] == "/automations?cursor=abc"
    cookie = session_cookie(response)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain http on 127.0.0.1
    assert alice.key not in cookie
    assert alice.key not in response.headers["location"]
    page = client.get("/automations")
    assert page.status_code == 200
    assert "Signed in as <strong>alice</strong>" in page.text
    assert alice.key not in page.text


def test_cookie_is_secure_when_served_over_https(site: Site) -> None:
    settings = replace(site.settings, public_url="https://conveyor.example")
    alice = site.seed.account("alice")
    with ServerThread(create_app(settings, site.db, clock=site.clock)) as running:
        page = httpx.get(f"{running.url}/sign-in")
        form_cookie = page.headers["set-cookie"]
        assert "secure" in [p.strip().lower() for p in form_cookie.split(";")]
        token = form_token(page.text)
        # A client over plain HTTP keeps Secure cookies to itself; send it by hand,
        # as the browser would over HTTPS.
        response = httpx.post(
            f"{running.url}/sign-in",
            data={"api_key": alice.key, "csrf_token": token},
            headers={"Cookie": f"conveyor_sign_in={token}"},
        )
    assert response.status_code == 303
    assert "secure" in [p.strip().lower() for p in session_cookie(response).split(";")]


def test_unknown_key_is_refused_with_a_readable_message(site: Site) -> None:
    client = site.client()
    response = client.sign_in("0" * 64)
    assert response.status_code == 401
    assert "That API key is unknown or has been revoked." in response.text
    assert "conveyor_session=" not in response.headers.get("set-cookie", "")
    assert client.get("/automations").status_code == 303


def test_sign_in_form_without_its_token_is_refused(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    client.get("/sign-in")  # sets the form's cookie, but the post below does not echo it
    response = client.post("/sign-in", {"api_key": alice.key, "csrf_token": "forged"})
    assert response.status_code == 403
    assert "did not come from a Conveyor page" in response.text
    assert client.get("/automations").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/api/rest/v1/x"])
def test_sign_in_never_redirects_off_the_ui(site: Site, target: str) -> None:
    alice = site.seed.account("alice")
    response = site.client().sign_in(alice.key, next_path=target)
    assert response.headers["location"] == "/automations"


def test_sign_out_needs_the_token_and_ends_the_session_on_the_server(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    client.sign_in(alice.key)
    stolen = client.http.cookies["conveyor_session"]

    refused = client.post("/sign-out", {"csrf_token": "nope"})
    assert refused.status_code == 403
    assert client.get("/automations").status_code == 200

    done = client.post("/sign-out", {"csrf_token": client.token()})
    assert done.status_code == 303
    assert done.headers["location"] == "/sign-in?signed_out=1"
    assert "conveyor_session=" in done.headers["set-cookie"]  # told to forget it
    # A copy of the cookie taken before signing out no longer works anywhere.
    replay = httpx.get(f"{site.url}/automations", cookies={"conveyor_session": stolen})
    assert replay.status_code == 303
    assert "You have signed out." in client.get("/sign-in?signed_out=1").text


def test_revoking_the_key_ends_its_sessions(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    client.sign_in(alice.key)
    assert client.get("/automations").status_code == 200
    with site.db.write() as conn:
        assert users.revoke_api_key(conn, alice.key, site.clock.now())
    assert client.get("/automations").status_code == 303


def test_sessions_expire(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    client.sign_in(alice.key)
    site.clock.advance(11 * 3600)
    assert client.get("/automations").status_code == 200
    site.clock.advance(2 * 3600)
    assert client.get("/automations").status_code == 303


def test_signed_in_visit_to_sign_in_goes_on(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    client.sign_in(alice.key)
    response = client.get("/sign-in", params={"next": "/runs/5"})
    assert (response.status_code, response.headers["location"]) == (303, "/runs/5")


def test_security_headers_on_pages_static_files_and_errors(site: Site) -> None:
    alice = site.seed.account("alice")
    client = site.client()
    running = site.seed.run(site.seed.automation(alice), stage=RunStage.EXECUTING)
    client.sign_in(alice.key)
    page = client.get("/automations")
    run_page = client.get(f"/runs/{running.id}")  # an unfinished run's page loads a script
    css = client.get("/static/conveyor.css")
    missing = client.get("/no/such/page")
    sign_in = site.client().get("/sign-in")
    for response in (page, run_page, css, missing, sign_in):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert page.headers["cache-control"] == "no-store"
    # Pages load scripts only from files: every <script> has a src and no body.
    assert run_page.status_code == 200
    html = sign_in.text + page.text + run_page.text + missing.text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
    assert scripts, "the run page's live script is missing"
    for attributes, body in scripts:
        assert 'src="/static/' in attributes and body.strip() == "", (attributes, body)
    assert html.lower().count("<script") == len(scripts)
    assert re.search(r"\son[a-z]+\s*=", html, re.I) is None  # no inline event handlers
    # The API's own responses are left alone.
    api = client.get("/api/rest/v1/automation_runs")
    assert api.headers["content-type"] == "application/json"
    assert "content-security-policy" not in api.headers


def test_form_token_is_per_session(site: Site) -> None:
    alice = site.seed.account("alice")
    first, second = site.client(), site.client()
    first.sign_in(alice.key)
    second.sign_in(alice.key)
    assert first.token() != second.token()
    assert form_token(first.get("/automations").text) == first.token()
