"""`Client`: the SDK with its own settings, for code that talks to several servers or keys."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType

import httpx

from conveyor.sdk.http import DEFAULT_BASE_URL, HttpSession, RetryPolicy
from conveyor.sdk.resources import AutomationResource, AutomationRunResource, PermissionResource

__all__ = ["Client"]


class Client:
    """A Conveyor server at `base_url`, called with `api_key`.

    One pooled HTTP connection set per client; close it (or use ``with``)
    when done. `timeout` is seconds per request (None: no limit).
    `max_retries` bounds the retries of a GET on connection errors, 429 and
    5xx. `transport` (any httpx transport) replaces the network, e.g. an
    in-process app or a mock; `http_client` is a ready httpx.Client (with its
    own timeout, proxies or certificates) that `close()` leaves open.
    `sleep` and `jitter` replace the waits between retries.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout: float | None = 30.0,
        max_retries: int = 3,
        *,
        initial_retry_delay: float = 0.1,
        max_retry_delay: float = 2.0,
        max_retry_after: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self._session = HttpSession(
            base_url,
            api_key,
            timeout=timeout,
            retry=RetryPolicy(max_retries, initial_retry_delay, max_retry_delay, max_retry_after),
            transport=transport,
            http_client=http_client,
            sleep=sleep,
            jitter=jitter,
        )
        self.automation_run = AutomationRunResource(self._session)
        self.automation = AutomationResource(self._session)
        self.permission = PermissionResource(self._session)

    @property
    def base_url(self) -> str:
        return self._session.base_url

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
