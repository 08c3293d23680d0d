"""What the web UI's HTTP tests share: a served app on a fixed clock, and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass

from web_client import WebClient

from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

# 2023-11-14 22:13:20 UTC, a Tuesday: day 19675 since the epoch.
NOW = 1_700_000_000_000_000


@dataclass
class Site:
    url: str
    db: Database
    clock: ManualClock
    seed: Seeder
    settings: Settings
    app: object

    def client(self) -> WebClient:
        return WebClient(self.url)
