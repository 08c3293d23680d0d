"""Trigger test fixtures: a manual clock and a world on the test database (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from triggers_world import World

from conveyor.clock import ManualClock, from_datetime
from conveyor.store.database import Database

# Saturday 2024-03-09 12:00 UTC: the night after, New York moves its clocks forward.
START = from_datetime(datetime(2024, 3, 9, 12, 0, tzinfo=UTC))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


@pytest.fixture
def world(db: Database, clock: ManualClock, tmp_path: Path) -> World:
    root = tmp_path / "files"
    root.mkdir()
    return World(db, clock, root)
