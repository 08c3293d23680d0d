"""Fixtures for the operations tests: apps with chosen settings, served over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from ops_support import Serve

from conveyor.api.app import create_app
from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.server import ServerThread


@pytest.fixture
def serve(settings: Settings, db: Database) -> Iterator[Serve]:
    """Start Conveyor's app over real HTTP with settings changed by keyword, e.g.
    `serve(rate_limit_rate=1.0, clock=ManualClock())`; stopped after the test."""
    started: list[ServerThread] = []

    def start(
        clock: Clock | None = None, database: Database | None = None, **changes: Any
    ) -> ServerThread:
        app = create_app(dataclasses.replace(settings, **changes), database or db, clock=clock)
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
