"""What every part of the engine works with: database, settings, clock, storage, hooks."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.engine.heartbeat import Heartbeat, LeaseKeeper
from conveyor.engine.hooks import Hooks
from conveyor.engine.storage import Storage
from conveyor.store.database import Database

if TYPE_CHECKING:
    from conveyor.engine.leases import Claim


@dataclass
class EngineContext:
    db: Database
    settings: Settings
    clock: Clock
    storage: Storage
    hooks: Hooks = field(default_factory=Hooks)
    # Set when the process is shutting down: workers finish their step and stop.
    stop: threading.Event = field(default_factory=threading.Event)
    keeper: LeaseKeeper = field(init=False)

    def __post_init__(self) -> None:
        # The bound method reads `self.clock` at each beat, so a swapped clock is honoured.
        self.keeper = LeaseKeeper(
            self.db,
            self.lease_until,
            self.settings.lease_seconds / 3,
            lambda: self.clock.now(),
            self.lease_us // 3,
        )

    def heartbeat(self, claim: Claim) -> Heartbeat:
        """Keep the lease of a run this worker holds alive until the block ends."""
        return self.keeper.hold(claim.run_id, claim.worker_id, claim.token, claim.expires_at)

    @property
    def lease_us(self) -> int:
        return int(self.settings.lease_seconds * 1_000_000)

    def lease_until(self) -> int:
        return self.clock.now() + self.lease_us
