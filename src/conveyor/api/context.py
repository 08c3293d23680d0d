"""What the API needs at request time, built once per process by `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from conveyor.api.ratelimit import RateLimiter
from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.domain.listing import CursorCodec
from conveyor.domain.signing import UrlSigner
from conveyor.store.asyncpool import AsyncReadPool
from conveyor.store.database import Database


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
    # PostgreSQL: connections for the run reads on the event loop (api.steps).
    read_pool: AsyncReadPool | None = None
    # Per-key and per-webhook token buckets (api.ratelimit); None: limits are off.
    rate_limiter: RateLimiter | None = None

    def base_url(self, request: Request) -> str:
        """The absolute origin clients reach us at: configured, else from the request."""
        if self.settings.public_url:
            return self.settings.public_url
        return str(request.base_url).rstrip("/")


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context
