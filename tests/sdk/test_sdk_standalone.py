"""The SDK stands alone (no server modules), and its records and query encoding are exact."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import conveyor.sdk
from conveyor import sdk
from conveyor.sdk.http import encode_params
from conveyor.sdk.records import format_datetime, parse_datetime

SDK_DIR = Path(conveyor.sdk.__file__).parent
SERVER_SIDE = ("fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn", "typer")


def test_sdk_modules_import_only_the_sdk_from_conveyor() -> None:
    paths = sorted(SDK_DIR.glob("*.py"))
    assert SDK_DIR / "__init__.py" in paths and len(paths) > 1, paths
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("conveyor"):
                    assert name == "conveyor" or name.startswith("conveyor.sdk"), (path, name)
                assert not name.startswith(SERVER_SIDE), (path, name)


def test_importing_the_sdk_loads_no_server_module() -> None:
    code = (
        "import sys, conveyor.sdk\n"
        "print(sorted(m for m in sys.modules if (m.startswith('conveyor.') "
        "and not m.startswith('conveyor.sdk')) or m.split('.')[0] in "
        f"{SERVER_SIDE!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_exported_name_exists() -> None:
    assert sorted(sdk.__all__) == sorted(set(sdk.__all__))
    for name in sdk.__all__:
        assert hasattr(sdk, name), name


def test_datetimes_parse_to_aware_utc_and_format_back() -> None:
    moment = datetime(2024, 2, 16, 12, 46, 41, tzinfo=UTC)
    assert parse_datetime("2024-02-16T12:46:41Z") == moment
    assert parse_datetime("2024-02-16T14:46:41+02:00") == moment
    assert parse_datetime("2024-02-16T12:46:41") == moment  # no offset: UTC
    assert parse_datetime(None) is None
    assert format_datetime(moment) == "2024-02-16T12:46:41Z"
    local = moment.astimezone(timezone(timedelta(hours=-5)))
    assert format_datetime(local) == "2024-02-16T12:46:41Z"
    assert format_datetime(moment.replace(microsecond=250_000)) == "2024-02-16T12:46:41.250000Z"
    assert format_datetime(None) is None


def test_a_run_decodes_from_and_encodes_to_the_api_form() -> None:
    wire = {
        "id": 1,
        "automation_id": 1,
        "completed_at": "2000-01-01T01:00:00Z",
        "created_at": "2000-01-01T01:00:00Z",
        "runtime": "2000-01-01T01:00:00Z",
        "status": "success",
        "run_stage": "planning",
        "successful_operations": 1,
        "failed_operations": 1,
        "status_messages_url": "https://www.example.com/log_file.txt",
        "retry_at": "2000-01-01T01:00:00Z",
        "retried_at": "2000-01-01T01:00:00Z",
        "retried_in_run_id": 1,
        "retry_of_run_id": 1,
        "cancel_requested_at": "2000-01-01T01:00:00Z",
        "rerun_of_run_id": 1,
        "rerun_from_node_id": "failed_operations",
    }
    run = sdk.AutomationRun.from_json(wire)
    at = datetime(2000, 1, 1, 1, tzinfo=UTC)
    assert run == sdk.AutomationRun(
        1,
        1,
        at,
        at,
        at,
        "success",
        "planning",
        1,
        1,
        "https://www.example.com/log_file.txt",
        at,
        at,
        1,
        1,
        at,
        1,
        "failed_operations",
    )
    assert list(run.to_json().items()) == list(wire.items())
    assert tuple(wire) == sdk.AUTOMATION_RUN_FIELDS


def test_query_encoding_follows_the_files_com_sdks() -> None:
    assert encode_params(
        {
            "automation_id": 1,
            "sort_by": {"created_at": "desc"},
            "filter": {"status": "success", "automation_id": None},
            "ids": [3, 4],
            "flag": True,
            "cursor": None,
        }
    ) == [
        ("automation_id", "1"),
        ("sort_by[created_at]", "desc"),
        ("filter[status]", "success"),
        ("ids[]", "3"),
        ("ids[]", "4"),
        ("flag", "true"),
    ]
    assert encode_params(None) == []
