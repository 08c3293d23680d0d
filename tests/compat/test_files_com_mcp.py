"""Files.com's own MCP server (`files-com-mcp`, unchanged) against Conveyor.

The server is started as an AI client starts it: a `files-com-mcp` process on
stdio, pointed at Conveyor with FILES_COM_BASE_URL and FILES_COM_API_KEY, and
spoken to with the MCP client library. Its automation tools answer with
Conveyor's records: List_Automation, Find_Automation, List_Automation_Log.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from log_world import Logged, logged_runs
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conveyor.config import Settings
from conveyor.testing.seed import Seeder

MCP_SERVER = Path(sys.executable).with_name("files-com-mcp")


@pytest.fixture
def logged(seed: Seeder, settings: Settings, tmp_path: Path) -> Logged:
    return logged_runs(seed, settings, tmp_path)


async def call_tools(base_url: str, key: str, calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "FILES_COM_BASE_URL": base_url,
        "FILES_COM_API_KEY": key,
    }
    server = StdioServerParameters(command=str(MCP_SERVER), args=[], env=environment)
    answers = []
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"List_Automation", "Find_Automation", "List_Automation_Log"} <= names
        for name, arguments in calls:
            result = await asyncio.wait_for(session.call_tool(name, arguments), 60)
            assert not result.isError, result
            answers.append("".join(getattr(part, "text", "") for part in result.content))
    return answers


def test_the_automation_tools_answer_with_conveyors_records(server: Any, logged: Logged) -> None:
    listed, found, log, failures, missing = asyncio.run(
        call_tools(
            server.url,
            logged.alice.key,
            [
                ("List_Automation", {}),
                ("Find_Automation", {"id": logged.copy}),
                ("List_Automation_Log", {"per_page": 100}),
                (
                    "List_Automation_Log",
                    {
                        "filter": {"status": "failure"},
                        "filter_gt": {"created_at": "2024-02-16T23:30:01Z"},
                    },
                ),
                ("Find_Automation", {"id": logged.bobs}),
            ],
        )
    )
    assert listed.startswith("Automation Response:"), listed
    assert "| copy " in listed and "| folders " in listed and "cleanup" not in listed
    assert f"| {logged.copy} " in found and "copy_file" in found, found
    assert log.startswith("AutomationLog Response:"), log
    rows = [line for line in log.splitlines() if "| 2024-02-16T23:30:0" in line]
    assert len(rows) == 7, log
    assert "Copied in/a.txt to out/a.txt (3 bytes)." in log
    assert "bob/old.log" not in log
    failure_rows = [line for line in failures.splitlines() if "| 2024-02-16T23:30:0" in line]
    assert len(failure_rows) == 1 and "in/c.txt" in failure_rows[0], failures
    assert missing == f"Files.com Error: HTTP 404 Automation {logged.bobs} not found.", missing
