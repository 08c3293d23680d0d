"""The official Files.com SDK (`files_sdk`, PyPI `Files.com`) pointed at the live server.

The SDK keeps its settings in module globals; the `files` fixture sets them for
one test and puts every one back afterwards, closing the SDK's shared
connections to a server that is about to stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import files_sdk
import pytest

from conveyor.testing.server import ServerThread

# Module settings a test may change.
SETTINGS = ("base_url", "the_api_key", "session_id", "max_network_retries")


@pytest.fixture
def files(server: ServerThread) -> Iterator[ModuleType]:
    saved = {name: getattr(files_sdk, name) for name in SETTINGS}
    files_sdk.base_url = server.url
    files_sdk.set_api_key("")
    files_sdk.session_id = None
    # A 5xx would be retried with waits; no test here expects one.
    files_sdk.max_network_retries = 0
    try:
        yield files_sdk
    finally:
        files_sdk.close()
        for name, value in saved.items():
            setattr(files_sdk, name, value)
