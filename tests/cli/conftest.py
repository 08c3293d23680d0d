"""Fixtures for the CLI tests: a live server whose clock stands still, seeded with known runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_world import CliWorld, seed_cli_world

from conveyor.clock import ManualClock
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def api(serve: Callable[..., ServerThread]) -> ServerThread:
    """The API over real HTTP; its clock never moves, so every answer signs URLs the same way
    and the CLI's output can be compared with the API's own answer byte for byte."""
    return serve(clock=ManualClock())


@pytest.fixture
def world(api: ServerThread, seed: Seeder) -> CliWorld:
    return seed_cli_world(api.url, seed)
