"""The cursor headers of a list answer, as Files.com sends them.

`X-Files-Cursor-Next` and `X-Files-Cursor-Prev` lead to the next and previous
page; `X-Files-Cursor` repeats the next one, the header the official
JavaScript SDK's auto-pagination follows (the Python SDK reads `-Next`
first). Each cursor carries the number of the page it leads to
(`conveyor.domain.listing.check_page`).
"""

from __future__ import annotations

from typing import Any

from conveyor.domain.listing import Cursor, CursorCodec, Sort


def cursor_headers(
    codec: CursorCodec,
    scope: list[Any],
    sort: Sort,
    current: Cursor | None,
    next_cursor: Cursor | None,
    prev_cursor: Cursor | None,
) -> dict[str, str]:
    """The headers for a page reached with `current` (None: the first page)."""
    page = current.page if current is not None else 1
    headers = {}
    if next_cursor is not None:
        token = codec.encode(scope, sort, next_cursor, page + 1)
        headers["X-Files-Cursor-Next"] = token
        headers["X-Files-Cursor"] = token
    if prev_cursor is not None:
        headers["X-Files-Cursor-Prev"] = codec.encode(scope, sort, prev_cursor, max(1, page - 1))
    return headers
