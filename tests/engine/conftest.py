"""Engine test fixtures: a storage root on disk and an engine world on the test database.

Workers are the real ones, stepped in-process (with a ManualClock where
leases matter) or run as `conveyor worker` subprocesses.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from engine_world import RUNTIME, World

from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.store.database import Database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=RUNTIME + 60_000_000)


@pytest.fixture
def world(db: Database, tmp_path: Path, clock: ManualClock, settings: Settings) -> World:
    root = tmp_path / "files"
    root.mkdir()
    return World(db, root, clock, replace(settings, storage_root=root))
