"""Request bodies are never read past a limit, so a large upload cannot fill memory.

`BodyLimitMiddleware` applies to every request: a body whose Content-Length is
over its path's limit is refused before a byte of it is read, and a body sent
without one (chunked) is counted as it arrives and refused once it passes the
limit. The refusal is raised from the body's reading, so each route answers
it the way it answers any error (Files.com JSON on the API, an HTML page on
the web UI): 400 "The request body exceeds N bytes.". A route that allows less
than the app-wide limit reads its body with `read_limited`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.domain import errors

# The largest body any API route reads (an automation, a webhook's payload).
MAX_BODY_BYTES = 1_000_000


def _too_large(limit: int, what: str = "The request body") -> errors.ConveyorError:
    return errors.RequestParamsInvalid(f"{what} exceeds {limit} bytes.")


async def read_limited(request: Request, limit: int, what: str) -> bytes:
    """The body's bytes; RequestParamsInvalid ("{what} exceeds N bytes") past `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, what)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, what)
        chunks.append(chunk)
    return b"".join(chunks)


class BodyLimitMiddleware:
    """Refuses an HTTP request body over `limit_for(path)` bytes without reading it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = next(
            (value for name, value in scope["headers"] if name == b"content-length"), None
        )
        # h11/httptools accept only digits here; a number too long for the limit is over it.
        over = declared is not None and (len(declared) > 18 or int(declared or b"0") > limit)
        received = 0

        async def counted() -> Message:
            nonlocal received
            if over:
                raise _too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, counted, send)
