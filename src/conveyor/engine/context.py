"""What every part of the engine works with: database, settings, clock, storage, hooks."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.engine.hooks import Hooks
from conveyor.engine.storage import Storage
from conveyor.store.database import Database


@dataclass
class EngineContext:
    db: Database
    settings: Settings
    clock: Clock
    storage: Storage
    hooks: Hooks = field(default_factory=Hooks)
    # Set when the process is shutting down: workers finish their step and stop.
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def lease_us(self) -> int:
        return int(self.settings.lease_seconds * 1_000_000)

    def lease_until(self) -> int:
        return self.clock.now() + self.lease_us
