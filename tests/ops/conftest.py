"""Fixtures for the operations tests: apps with chosen settings, served over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.api.app import create_app
from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.testing.server import ServerThread

Serve = Callable[..., ServerThread]


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


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and return {(sample name, sorted labels): value}."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)
