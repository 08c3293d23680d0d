"""Every route refuses an oversized body before reading it (conveyor.api.body).

Raw sockets: the client declares (or streams) far more than it sends, and
the server must answer at once, without waiting for, or holding, the rest.
A server that reads the whole body first would wait here until the timeout.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

TIMEOUT = 10.0
# (method, path, with an API key): routes that read a body, and some that refuse
# the request for another reason first; none may wait for the body.
ROUTES = [
    ("POST", "/sign-in", False),
    ("POST", "/sign-out", False),
    ("POST", "/automations/1/run", False),
    ("POST", "/api/rest/v1/automations", True),
    ("PATCH", "/api/rest/v1/automations/1", True),
    ("POST", "/api/rest/v1/automations", False),
    ("POST", "/api/rest/v1/webhooks/nothing-here", False),
    ("PUT", "/api/rest/v1/data_retention", True),
    ("POST", "/no-such-page", False),
]


def _exchange(url: str, head: bytes, body: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _read_all(url: str, head: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize(("method", "route", "keyed"), ROUTES)
def test_a_declared_200_mb_body_is_refused_before_it_is_sent(
    server: ServerThread, seed: Seeder, method: str, route: str, keyed: bool
) -> None:
    key = f"X-FilesAPI-Key: {seed.account('alice').key}\r\n" if keyed else ""
    head = (
        f"{method} {route} HTTP/1.1\r\nHost: x\r\n{key}"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = _exchange(server.url, head, b"a" * 1024)
    assert answer[9:10] == b"4", answer[:300]  # an answer at once, a 4xx


def test_the_sign_in_form_and_the_api_say_the_body_is_too_large(
    server: ServerThread, seed: Seeder
) -> None:
    key = seed.account("alice").key
    for route, extra, limit in (
        ("/sign-in", "", 16384),
        ("/api/rest/v1/automations", f"X-FilesAPI-Key: {key}\r\n", 1_000_000),
    ):
        head = (
            f"POST {route} HTTP/1.1\r\nHost: x\r\n{extra}"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = _read_all(server.url, head)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
        assert f"exceeds {limit} bytes".encode() in answer


@pytest.mark.parametrize("route", ["/sign-in", "/api/rest/v1/automations"])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    server: ServerThread, seed: Seeder, route: str
) -> None:
    head = (
        f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-FilesAPI-Key: {seed.account('alice').key}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"a" * 65536
    # 1.5 MB in chunks and no final chunk: only a server that stops counting waits.
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(24))
    answer = _exchange(server.url, head, body)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]


def test_a_small_form_still_works(server: ServerThread) -> None:
    head = (
        b"POST /sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 11\r\nConnection: close\r\n\r\n"
    )
    answer = _exchange(server.url, head, b"api_key=abc")
    # Refused for its missing form token, not for its size.
    assert b"exceeds" not in answer
