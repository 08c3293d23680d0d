"""The SDK's HTTP layer: one pooled httpx.Client, Files.com query encoding, retries, error mapping.

Only GET (and HEAD) requests are retried automatically, on connection errors,
429 and 5xx other than 501, with exponential backoff and jitter; a 429's
Retry-After is honoured up to a cap. Every wait goes through an injectable
`sleep`, so retries are testable without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from conveyor.sdk.error import APIConnectionError, RateLimitedError, error_for_response

__all__ = ["API_PATH", "DEFAULT_BASE_URL", "HttpSession", "RetryPolicy", "encode_params", "path_id"]

API_PATH = "/api/rest/v1"
CONVEYOR_API_PATH = "/api/conveyor/v1"  # Conveyor's own routes (all runs, bulk actions)
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
USER_AGENT = "conveyor-sdk/0.1.0"
_RETRIED_METHODS = frozenset({"GET", "HEAD"})
# Failures that will not go away by asking again.
_NOT_RETRIED = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Delays are seconds."""

    max_retries: int = 3
    initial_delay: float = 0.1
    max_delay: float = 2.0
    max_retry_after: float = 30.0

    def backoff(self, retry: int, jitter: float) -> float:
        """Wait before retry `retry + 1`: exponential, capped, scaled by jitter into [50%, 100%]."""
        return min(self.max_delay, self.initial_delay * 2.0**retry) * (0.5 + jitter / 2)

    def retry_after(self, response: httpx.Response) -> float | None:
        """The wait a 429/503 asks for in Retry-After (seconds or HTTP date), capped."""
        raw = response.headers.get("retry-after")
        if raw is None:
            return None
        raw = raw.strip()
        try:
            seconds = float(raw)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError, IndexError):
                return None
        if seconds != seconds:  # NaN
            return None
        return min(max(seconds, 0.0), self.max_retry_after)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Query pairs the way the Files.com SDKs send them: a dict becomes
    ``key[sub]=value``, a list ``key[]=value`` repeated; None is left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend((f"{key}[{sub}]", _value(v)) for sub, v in value.items() if v is not None)
        elif isinstance(value, list | tuple):
            name = key if key.endswith("[]") else f"{key}[]"
            pairs.extend((name, _value(v)) for v in value)
        else:
            pairs.append((key, _value(value)))
    return pairs


def path_id(value: Any) -> str:
    """A path segment from an id: quoted whole, so no value can reach another path."""
    return quote(_value(value), safe="")


class HttpSession:
    """Sends requests to one Conveyor server with one API key over one connection pool."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float | None,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        base = base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base
        self.retry = retry
        self._sleep = sleep
        self._jitter = jitter
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if api_key:
            self._headers["X-FilesAPI-Key"] = api_key
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        json: Mapping[str, Any] | None = None,
        api: str = API_PATH,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send `method` to `path` (below `api`: /api/rest/v1, or Conveyor's own
        /api/conveyor/v1) and return a 2xx response, or raise.

        `params` go in the query string; `json` is the body (as the Files.com
        SDKs send create and update parameters); `headers` are sent as well.
        """
        url = f"{self.base_url}{api}{path}"
        query = tuple(encode_params(params))
        sent = {**self._headers, **(headers or {})}
        if json is None:
            return self._send(method, url, query, sent, None, self.base_url)
        headers = {**sent, "Content-Type": "application/json"}
        return self._send(method, url, query, headers, orjson.dumps(json), self.base_url)

    def get_url(self, url: str) -> httpx.Response:
        """GET an absolute link the server handed out (a signed status-messages URL).

        The link carries its own signature, so the API key is not sent: it may
        name another host (the server's public URL) and needs no key there.
        """
        headers = {name: value for name, value in self._headers.items() if name != "X-FilesAPI-Key"}
        try:
            link = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise APIConnectionError(f"The server handed out an unusable link {url!r}") from exc
        if link.scheme not in ("http", "https"):
            raise APIConnectionError(f"The server handed out a link that is not http(s): {url!r}")
        origin = f"{link.scheme}://{link.netloc.decode('ascii')}"
        return self._send("GET", url, None, headers, None, origin)

    def _send(
        self,
        method: str,
        url: str,
        query: tuple[tuple[str, str], ...] | None,
        headers: Mapping[str, str],
        content: bytes | None,
        where: str,
    ) -> httpx.Response:
        retried = method in _RETRIED_METHODS
        retry = 0
        while True:
            try:
                response = self._client.request(
                    method, url, params=query, headers=headers, content=content
                )
            except httpx.TransportError as exc:
                if retried and retry < self.retry.max_retries and not isinstance(exc, _NOT_RETRIED):
                    self._sleep(self.retry.backoff(retry, self._jitter()))
                    retry += 1
                    continue
                attempts = f" after {retry + 1} attempts" if retry else ""
                raise APIConnectionError(
                    f"Could not get an answer from {where}{attempts}: "
                    f"{type(exc).__name__}: {exc or 'no detail'}"
                ) from exc
            status = response.status_code
            if status < 400:
                return response
            if retried and retry < self.retry.max_retries and _retryable(status):
                delay = self.retry.retry_after(response) if status in (429, 503) else None
                if delay is None:
                    delay = self.retry.backoff(retry, self._jitter())
                self._sleep(delay)
                retry += 1
                continue
            raise self._error(response)

    def _error(self, response: httpx.Response) -> Exception:
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        error = error_for_response(response.status_code, body, response.reason_phrase)
        if isinstance(error, RateLimitedError):
            error.retry_after = self.retry.retry_after(response)
        return error

    def decode(self, response: httpx.Response) -> Any:
        """The JSON body of a successful response; a body that is not JSON is no usable answer."""
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise APIConnectionError(
                f"The answer from {response.url} is not JSON (HTTP {response.status_code}, "
                f"{kind}); is base_url a Conveyor server?"
            ) from exc


def _retryable(status: int) -> bool:
    return status == 429 or (status >= 500 and status != 501)
