"""The seeded world the read-only API tests share: accounts, automations, runs.

Its runs' created_at order differs from their id order, with ties, sub-second
times and every status, so each sort and filter has something to prove.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.store import users
from conveyor.store.database import Database
from conveyor.testing.seed import Account, Seeder

SECOND = 1_000_000


@dataclass(repr=False)
class World:
    url: str
    db: Database
    clock: ManualClock
    settings: Settings
    alice: Account  # owns automations a, a2 and empty
    bob: Account  # owns automation b
    admin: Account
    revoked_key: str
    a: int
    a2: int
    b: int
    empty: int
    runs: dict[int, list[AutomationRun]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"World({self.url}, {self.db.url.split(':')[0]})"


def seed_world(url: str, db: Database, clock: ManualClock, settings: Settings) -> World:
    """Runs whose created_at order differs from their id order, with ties and every status."""
    seed = Seeder(db, clock)
    t0 = clock.now()
    alice, bob = seed.account("alice"), seed.account("bob")
    admin = seed.account("root", admin=True)
    carol = seed.account("carol")
    with db.write() as conn:
        users.revoke_api_key(conn, carol.key, t0)
    a, a2, b, empty = (seed.automation(owner) for owner in (alice, alice, bob, alice))
    # (seconds after t0, how the run ends); 20.5 s: sub-second precision is kept, not shown.
    plan: list[tuple[float, dict[str, Any]]] = [
        (0, {"outcome": (1, 0)}),
        (10, {"outcome": (0, 2)}),
        (10, {"stage": RunStage.EXECUTING, "messages": ["planned 3 operations"]}),
        (10, {"outcome": (2, 1)}),
        (20.5, {"outcome": (0, 0)}),
        (5, {}),
        (30, {"outcome": (0, 1)}),
        (10, {"outcome": (3, 0)}),
    ]
    runs = {
        a: [seed.run(a, created_at=t0 + int(s * SECOND), **how) for s, how in plan],
        a2: [seed.run(a2, created_at=t0 + i * SECOND) for i in range(3)],
        b: [seed.run(b, created_at=t0 + i * SECOND, outcome=(1, 0)) for i in range(3)],
        empty: [],
    }
    return World(url, db, clock, settings, alice, bob, admin, carol.key, a, a2, b, empty, runs)
