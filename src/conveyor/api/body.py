"""Reading a request body no further than a limit, so a large upload cannot fill memory."""

from __future__ import annotations

from fastapi import Request

from conveyor.domain import errors


async def read_limited(request: Request, limit: int, what: str) -> bytes:
    """The body's bytes; RequestParamsInvalid ("{what} exceeds N bytes") past `limit`."""
    too_large = errors.RequestParamsInvalid(f"{what} exceeds {limit} bytes.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
