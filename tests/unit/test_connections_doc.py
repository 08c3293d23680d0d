"""docs/configuration.md's table of connections per role says what POOLS does."""

from __future__ import annotations

import re
from pathlib import Path

from conveyor.store.database import POOLS

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_documented_connections_are_those_of_pools() -> None:
    section = DOC.read_text().split("## Connections", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d+) \|", section, re.MULTILINE)
    assert {role: int(most) for role, most in rows} == POOLS
    serve = sum(POOLS.values())
    api_only = serve - POOLS["engine"] - POOLS["listen"]
    worker = POOLS["api"] + POOLS["engine"] + POOLS["listen"]
    assert f"at most {serve}\nconnections ({api_only} with" in section
    assert f"at most {worker};" in section
