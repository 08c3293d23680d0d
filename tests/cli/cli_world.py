"""Known runs for the CLI tests, and ways to run the CLI and ask the API directly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from conveyor.cli.main import app
from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.testing.seed import Account, Seeder

# 2023-11-14T22:13:20Z, then one run a second.
BASE_US = 1_700_000_000_000_000


@dataclass
class CliWorld:
    url: str
    alice: Account
    automation_id: int
    runs: list[
        AutomationRun
    ]  # creation order: success, failure, partial_failure, executing, queued

    def env(self, **overrides: str | None) -> dict[str, str | None]:
        return {"CONVEYOR_URL": self.url, "CONVEYOR_API_KEY": self.alice.key, **overrides}

    def api(self, path: str, params: Any = None) -> httpx.Response:
        """The API's own answer, asked without the SDK."""
        response = httpx.get(
            f"{self.url}/api/rest/v1{path}",
            params=params,
            headers={"X-FilesAPI-Key": self.alice.key},
        )
        response.raise_for_status()
        return response


def seed_cli_world(url: str, seed: Seeder) -> CliWorld:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    shapes: list[dict[str, Any]] = [
        {"outcome": (2, 0)},
        {"outcome": (0, 3)},
        {"outcome": (1, 1)},
        {"stage": RunStage.EXECUTING},
        {},
    ]
    runs = [
        seed.run(automation, created_at=BASE_US + i * 1_000_000, **shape)
        for i, shape in enumerate(shapes)
    ]
    return CliWorld(url, alice, automation, runs)


def invoke(args: list[str], env: Mapping[str, str | None]) -> Result:
    """Run the real `conveyor` command tree in-process, stdout and stderr apart."""
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)
