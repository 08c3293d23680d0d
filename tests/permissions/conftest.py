"""Folder-permission fixtures: a `Site` (permissions_site.py) per test, on each database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from permissions_site import Site, make_settings

from conveyor.app import create_app
from conveyor.engine.service import embedded_services
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def site(database_url: str, db: Database, tmp_path: Path, seed: Seeder) -> Iterator[Site]:
    settings = make_settings(database_url, tmp_path)
    with ServerThread(create_app(settings, db, services=embedded_services())) as running:
        yield Site(running.url, settings.storage_root, seed, seed.account("root", admin=True))
