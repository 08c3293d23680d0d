"""The application context: what one `conveyor serve` process's API, web UI and
background services share, built once by `create_app` (conveyor.app, conveyor.api.app).

It sits below both `api` and `engine` (docs/architecture.md, "Layers"): the app
builds it, and the services it starts (the engine's embedded workers, the
scheduler, the file watcher, retention) take it without importing the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import HTTPConnection

from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.domain.listing import CursorCodec
from conveyor.domain.signing import UrlSigner
from conveyor.store.database import AsyncReadPool, Database
from conveyor.store.prepared import Steps


class RateLimiter(Protocol):
    """What the API asks of its rate limiter (conveyor.api.ratelimit.RateLimiter)."""

    def take_token(self, bucket: str, whose: str) -> Steps[None]: ...


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    codec: CursorCodec
    signer: UrlSigner
    # Called with a new run's id after its transaction commits; the engine
    # replaces it to wake its workers.
    on_run_created: Callable[[int], None] = field(default=lambda _run_id: None)
    # PostgreSQL, while the app is served: the pool of the run reads on the event
    # loop (conveyor.api.steps; store.database.async_read_pool).
    read_pool: AsyncReadPool | None = None
    # Per-key and per-webhook token buckets (api.ratelimit); None: limits are off.
    rate_limiter: RateLimiter | None = None

    def base_url(self, request: HTTPConnection) -> str:
        """The absolute origin clients reach us at: configured, else from the request."""
        if self.settings.public_url:
            return self.settings.public_url
        return str(request.base_url).rstrip("/")


def ctx(request: HTTPConnection) -> AppContext:
    """The context of the app serving `request`."""
    context: AppContext = request.app.state.ctx
    return context


# A background service: started with the app, returns the function that stops it.
Service = Callable[[AppContext], Callable[[], None]]
