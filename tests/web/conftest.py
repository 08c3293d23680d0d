"""The web UI served over real HTTP on each database, with a clock that only moves when told.

A fixed clock makes the pages' times, relative ages and 30-day charts exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web_site import NOW, Site

from conveyor.app import create_app
from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def site(settings: Settings, db: Database) -> Iterator[Site]:
    clock = ManualClock(NOW)
    app = create_app(settings, db, clock=clock)
    with ServerThread(app) as running:
        yield Site(running.url, db, clock, Seeder(db, clock), settings, app)
