"""Fixtures for the SDK tests: a seeded automation on the live server and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sdk_helpers import Seeded, seed_runs

from conveyor import sdk
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def seeded(seed: Seeder) -> Seeded:
    return seed_runs(seed, seed.account("alice"), 7)


@pytest.fixture
def make_client(server: ServerThread) -> Iterator[Callable[..., sdk.Client]]:
    """Clients for the live server; closed after the test."""
    made: list[sdk.Client] = []

    def make(api_key: str | None, **options: object) -> sdk.Client:
        client = sdk.Client(server.url, api_key, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(seeded: Seeded, make_client: Callable[..., sdk.Client]) -> sdk.Client:
    return make_client(seeded.account.key)
