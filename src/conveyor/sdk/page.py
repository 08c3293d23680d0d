"""One page of a cursor-paginated list, with the official SDK's paging methods.

Iterating a page yields its records; `auto_paging_iter()` yields every record
from this page on. A walk is pipelined: the next page's cursor is in the
response headers, so its request is sent before the current page's body is
decoded, and the server's work overlaps the client's.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import httpx

from conveyor.sdk.error import APIConnectionError

__all__ = ["ListObj"]

T = TypeVar("T")


def _cursors(response: httpx.Response) -> tuple[str | None, str | None]:
    headers = response.headers
    return (
        headers.get("x-files-cursor-next") or None,
        headers.get("x-files-cursor-prev") or None,
    )


class ListObj(Generic[T]):
    """A page of records; `load_next_page()` and `load_prev_page()` move it in place.

    `fetch` sends the request for a cursor (None: the first page) and
    `decode` turns its response into records.
    """

    def __init__(
        self,
        fetch: Callable[[str | None], httpx.Response],
        decode: Callable[[httpx.Response], list[T]],
        cursor: str | None = None,
    ) -> None:
        self._fetch = fetch
        self._decode = decode
        self.data: list[T] = []
        self.next_cursor: str | None = None
        self.prev_cursor: str | None = None
        self._publish(fetch(cursor))

    def _publish(self, response: httpx.Response) -> None:
        # Decode first, publish after: a failure leaves this page as it was.
        records = self._decode(response)
        self.data = records
        self.next_cursor, self.prev_cursor = _cursors(response)

    @property
    def cursor(self) -> str | None:
        """The next page's cursor, under the official SDK's name."""
        return self.next_cursor

    @property
    def has_next_page(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_prev_page(self) -> bool:
        return self.prev_cursor is not None

    def load_next_page(self) -> ListObj[T]:
        """Replace this page's records with the next page's; no-op on the last page."""
        if self.next_cursor is not None:
            self._publish(self._fetch(self.next_cursor))
        return self

    def load_prev_page(self) -> ListObj[T]:
        """Replace this page's records with the previous page's; no-op on the first page."""
        if self.prev_cursor is not None:
            self._publish(self._fetch(self.prev_cursor))
        return self

    def auto_paging_iter(self, prefetch: bool = True) -> Generator[T, None, None]:
        """Every record from this page to the end of the list.

        With `prefetch` (the default) the request for the next page is in
        flight while the current one is decoded and consumed, so a walk that
        stops early may have asked for one page it does not use. Either way
        the page object ends on the last page walked.
        """
        yield from self.data
        if self.next_cursor is None:
            return
        if not prefetch:
            followed: set[str] = set()
            while self.next_cursor is not None:
                if self.next_cursor in followed:
                    raise _cursor_loop()
                followed.add(self.next_cursor)
                self.load_next_page()
                yield from self.data
            return
        yield from self._pipelined()

    def _pipelined(self) -> Generator[T, None, None]:
        followed: set[str] = set()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-sdk-page")
        pending: Future[httpx.Response] | None = None
        try:
            cursor = self.next_cursor
            assert cursor is not None
            followed.add(cursor)
            pending = pool.submit(self._fetch, cursor)
            while pending is not None:
                response = pending.result()
                pending = None
                after, _ = _cursors(response)
                repeated = after is not None and after in followed
                if after is not None and not repeated:
                    followed.add(after)
                    pending = pool.submit(self._fetch, after)
                self._publish(response)
                yield from self.data
                if repeated:
                    raise _cursor_loop()
        finally:
            if pending is not None:
                pending.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<ListObj records={len(self.data)} has_next_page={self.has_next_page}>"


def _cursor_loop() -> APIConnectionError:
    # Following a cursor twice would walk the same records forever.
    return APIConnectionError("The server returned a cursor this walk already followed; stopping.")
