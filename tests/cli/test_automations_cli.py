"""`conveyor automations create|list|get|update|delete|run` against the live server, on SQLite
and PostgreSQL.

The server's clock stands still, so output is checked exactly: tables as
printed, JSON equal to the API's own answer byte for byte, CSV line by line,
and one-line errors with their exit codes.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from cli_world import invoke
from typer.testing import CliRunner

from conveyor import sdk
from conveyor.cli.main import app
from conveyor.cli.output import EXIT_AUTH, EXIT_BAD_REQUEST, EXIT_NOT_FOUND, EXIT_USAGE
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

RULE = "─"
ERROR_LINE = re.compile(r"conveyor: ([a-z-]+(?:/[a-z-]+)?): (.+) \(request id [0-9a-f]{16}\)\n")
REPORTS = [
    "--automation",
    "copy_file",
    "--name",
    "Reports",
    "--source",
    "in/*.csv",
    "--destination",
    "out/%Y/",
    "--destination",
    "backup/",
    "--trigger",
    "custom_schedule",
    "--day-of-week",
    "mon",
    "--day-of-week",
    "3",
    "--time-of-day",
    "06:30",
    "--time-zone",
    "Europe/Paris",
    "--overwrite-files",
]
FOLDERS_JSON = '{"automation": "create_folder", "destinations": ["a", "b"], "name": "Folders"}'
REPORTS_TABLE = """\
id                                     1
automation                             copy_file
name                                   Reports
description
disabled                               false
deleted                                false
path
source                                 in/*.csv
destinations                           out/%Y/, backup/
destination_replace_from
destination_replace_to
exclude_pattern
flatten_destination_structure          false
overwrite_files                        true
always_overwrite_size_matching_files   false
path_time_zone
trigger                                custom_schedule
interval
recurring_day
schedule_days_of_week                  1, 3
schedule_times_of_day                  06:30
schedule_time_zone                     Europe/Paris
human_readable_schedule                Every Monday and Wednesday at 06:30 (Europe/Paris)
trigger_actions
recurring_days
holiday_region
always_serialize_jobs                  false
retry_on_failure_number_of_attempts
retry_on_failure_interval_in_minutes
value
webhook_url
user_id                                1
last_modified_at                       2023-11-14T22:13:20Z
"""
LIST_TABLE = "\n".join(
    [
        "id   name      automation      trigger           disabled   source     destinations"
        "       human_readable_schedule                              last_modified_at",
        RULE * 163,
        " 1   Reports   copy_file       custom_schedule   false      in/*.csv   out/%Y/, backup/"
        "   Every Monday and Wednesday at 06:30 (Europe/Paris)   2023-11-14T22:13:20Z",
        " 2   Folders   create_folder   manual            true                  a, b"
        "                                                                    2023-11-14T22:13:20Z",
        "",
    ]
)
CSV_HEADER = ",".join(sdk.AUTOMATION_FIELDS)


class Cli:
    """The `conveyor` command pointed at the live server with alice's key."""

    def __init__(self, api: ServerThread, account: Account) -> None:
        self.url = api.url
        self.account = account

    def env(self, **overrides: str | None) -> dict[str, str | None]:
        return {"CONVEYOR_URL": self.url, "CONVEYOR_API_KEY": self.account.key, **overrides}

    def __call__(self, *args: str, **env: str | None) -> tuple[int, str, str]:
        result = invoke(["automations", *args], self.env(**env))
        return result.exit_code, result.stdout, result.stderr

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert (code, err) == (0, ""), err
        return out

    def api(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        """The API's own answer, asked without the SDK or the CLI."""
        response = httpx.get(
            f"{self.url}/api/rest/v1{path}",
            params=params,
            headers={"X-FilesAPI-Key": self.account.key},
        )
        response.raise_for_status()
        return response


@pytest.fixture
def cli(api: ServerThread, seed: Seeder) -> Cli:
    return Cli(api, seed.account("alice"))


def made(cli: Cli) -> None:
    """Automation 1 from options, automation 2 from --json, disabled by an option."""
    cli.ok("create", *REPORTS)
    cli.ok("create", "--json", FOLDERS_JSON, "--disabled")


def test_create_from_options_prints_the_automation(cli: Cli) -> None:
    assert cli.ok("create", *REPORTS) == REPORTS_TABLE
    assert cli.ok("get", "1") == REPORTS_TABLE
    as_json = cli.ok("get", "1", "--format", "json")
    assert as_json == cli.api("/automations/1").text + "\n"
    wire = orjson.loads(as_json)
    assert wire["schedule_days_of_week"] == [1, 3]  # "mon" and "3"
    assert wire["destinations"] == ["out/%Y/", "backup/"]


def test_create_from_json_text_file_or_stdin_with_options_winning(cli: Cli, tmp_path: Path) -> None:
    created = orjson.loads(
        cli.ok("create", "--json", FOLDERS_JSON, "--name", "Named", "--format", "json")
    )
    assert (created["name"], created["destinations"]) == ("Named", ["a", "b"])

    body = tmp_path / "body.json"
    body.write_text(
        '{"automation": "delete_file", "source": "tmp/*", "disabled": true, "name": "Clean"}'
    )
    from_file = orjson.loads(
        cli.ok("create", "--json", f"@{body}", "--enabled", "--format", "json")
    )
    assert (from_file["automation"], from_file["source"], from_file["disabled"]) == (
        "delete_file",
        "tmp/*",
        False,
    )

    result = CliRunner().invoke(
        app,
        ["automations", "create", "--json", "@-", "--format", "csv"],
        env=cli.env(),
        input='{"automation": "create_folder", "destinations": "x, y"}',
        catch_exceptions=False,
    )
    assert (result.exit_code, result.stderr) == (0, "")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["id"], row["destinations"]) for row in rows] == [("3", '["x","y"]')]
    assert list(rows[0]) == list(sdk.AUTOMATION_FIELDS)


def test_list_prints_a_table_and_pages(cli: Cli) -> None:
    made(cli)
    assert cli.ok("list") == LIST_TABLE

    code, first, err = cli("list", "--per-page", "1", "--format", "csv")
    cursor = cli.api("/automations", {"per_page": "1"}).headers["X-Files-Cursor-Next"]
    assert (code, err) == (0, f"More automations follow: add --cursor {cursor}\n")
    assert [row[0] for row in csv.reader(io.StringIO(first))] == ["id", "1"]
    second = cli.ok("list", "--per-page", "1", "--cursor", cursor, "--format", "csv")
    assert second.splitlines()[0] == CSV_HEADER
    assert [row[0] for row in csv.reader(io.StringIO(second))] == ["id", "2"]

    walked = cli.ok("list", "--per-page", "1", "--all", "--format", "json")
    assert walked == cli.api("/automations").text + "\n"
    assert cli.ok("list", "--per-page", "1", "--all") == LIST_TABLE


def test_list_filters_and_sorts(cli: Cli) -> None:
    made(cli)
    cli.ok("create", "--automation", "create_folder", "--destination", "c", "--name", "Alpha")

    def names(*args: str) -> list[str]:
        rows = csv.DictReader(io.StringIO(cli.ok("list", "--format", "csv", *args)))
        return [row["name"] for row in rows]

    assert names() == ["Reports", "Folders", "Alpha"]
    assert names("--sort-by", "name") == ["Alpha", "Folders", "Reports"]
    assert names("--sort-by", "name:desc") == ["Reports", "Folders", "Alpha"]
    assert names("--automation", "create_folder") == ["Folders", "Alpha"]
    assert names("--disabled") == ["Folders"]
    assert names("--enabled", "--automation", "create_folder") == ["Alpha"]


def test_update_changes_only_the_given_fields(cli: Cli) -> None:
    made(cli)
    before = orjson.loads(cli.api("/automations/1").content)
    after = orjson.loads(
        cli.ok("update", "1", "--name", "Renamed", "--day-of-week", "fri", "--format", "json")
    )
    assert after == {
        **before,
        "name": "Renamed",
        "schedule_days_of_week": [5],
        "human_readable_schedule": "Every Friday at 06:30 (Europe/Paris)",
    }
    replaced = cli.ok("update", "2", "--json", '{"destinations": ["only"]}', "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(replaced)))
    assert [(row["id"], row["destinations"]) for row in rows] == [("2", '["only"]')]

    assert cli("update", "1") == (
        EXIT_USAGE,
        "",
        "conveyor: nothing to change: give at least one field option or --json\n",
    )

    code, out, err = cli("update", "1", "--json", '{"destinations": []}')
    assert (code, out) == (EXIT_BAD_REQUEST, "")
    matched = ERROR_LINE.fullmatch(err)
    assert matched is not None and matched.groups() == (
        "bad-request/request-params-required",
        "Parameter missing: destinations (where copy_file puts files)",
    )
    assert orjson.loads(cli.api("/automations/1").content) == after  # nothing changed


def test_retry_options_set_and_clear_the_automatic_retries(cli: Cli) -> None:
    made(cli)
    retries = (
        "--retry-on-failure-number-of-attempts",
        "3",
        "--retry-on-failure-interval-in-minutes",
        "30",
    )
    after = orjson.loads(cli.ok("update", "1", *retries, "--format", "json"))
    assert (
        after["retry_on_failure_number_of_attempts"],
        after["retry_on_failure_interval_in_minutes"],
    ) == (3, 30)
    cleared = orjson.loads(cli.ok("update", "1", "--no-retry-on-failure", "--format", "json"))
    assert (
        cleared["retry_on_failure_number_of_attempts"],
        cleared["retry_on_failure_interval_in_minutes"],
    ) == (None, None)
    code, out, err = cli("update", "1", "--retry-on-failure-number-of-attempts", "11")
    assert (code, out) == (EXIT_BAD_REQUEST, "")
    matched = ERROR_LINE.fullmatch(err)
    assert matched is not None
    assert matched.group(2).startswith("retry_on_failure_number_of_attempts must be between 1")
    code, out, err = cli("update", "1", "--no-retry-on-failure", *retries)
    assert (code, out) == (EXIT_USAGE, "")
    assert "cannot be combined" in " ".join(line.strip(" │") for line in err.splitlines())


def test_delete_prints_nothing_and_the_automation_is_gone(cli: Cli) -> None:
    made(cli)
    assert cli("delete", "2") == (0, "", "")
    for args in (("get", "2"), ("delete", "2"), ("run", "2"), ("update", "2", "--name", "x")):
        code, out, err = cli(*args)
        assert (code, out) == (EXIT_NOT_FOUND, "")
        matched = ERROR_LINE.fullmatch(err)
        assert matched is not None
        assert matched.groups() == ("not-found", "Automation 2 not found.")
    assert [
        row["id"] for row in csv.DictReader(io.StringIO(cli.ok("list", "--format", "csv")))
    ] == ["1"]


def test_run_prints_the_created_run(cli: Cli) -> None:
    made(cli)
    as_json = cli.ok("run", "1", "--format", "json")
    assert as_json == cli.api("/automation_runs/1").text + "\n"
    table = cli.ok("run", "1")
    url = cli.api("/automation_runs/2").json()["status_messages_url"]
    assert table == (
        "id                      2\n"
        "automation_id           1\n"
        "completed_at\n"
        "created_at              2023-11-14T22:13:20Z\n"
        "runtime                 2023-11-14T22:13:20Z\n"
        "status                  running\n"
        "run_stage               queued_for_planning\n"
        "successful_operations   0\n"
        "failed_operations       0\n"
        f"status_messages_url     {url}\n"
        "retry_at\n"
        "retried_at\n"
        "retried_in_run_id\n"
        "retry_of_run_id\n"
        "cancel_requested_at\n"
        "rerun_of_run_id\n"
        "rerun_from_node_id\n"
    )
    listed = invoke(
        ["automation-runs", "list", "--automation-id", "1", "--format", "csv"], cli.env()
    )
    assert [row["id"] for row in csv.DictReader(io.StringIO(listed.stdout))] == ["2", "1"]

    code, out, err = cli("run", "2")  # automation 2 is disabled
    assert (code, out) == (EXIT_BAD_REQUEST, "")
    matched = ERROR_LINE.fullmatch(err)
    assert matched is not None and matched.groups() == (
        "processing-failure/automation-cannot-be-run-manually",
        "Automation 2 is disabled; enable it before running it.",
    )


@pytest.mark.parametrize(
    ("args", "code", "error_type", "message"),
    [
        (
            ["create", "--automation", "as2_send"],
            EXIT_BAD_REQUEST,
            "bad-request/request-params-invalid",
            "automation 'as2_send' is not supported; supported types are "
            "create_folder, copy_file, move_file, delete_file.",
        ),
        (
            ["create", "--automation", "copy_file", "--source", "../up/*", "--destination", "d"],
            EXIT_BAD_REQUEST,
            "bad-request/invalid-path",
            "source '../up/*' must not contain empty, '.' or '..' segments.",
        ),
        (
            ["create", "--automation", "create_folder", "--destination", "d", "--trigger", "daily",
             "--interval", "fortnight"],
            EXIT_BAD_REQUEST,
            "bad-request/request-params-invalid",
            "interval 'fortnight' is not valid; use one of day, week, week_end, month, "
            "month_end, quarter, quarter_end, year, year_end.",
        ),
        (
            ["create", "--automation", "create_folder", "--destination", "d", "--day-of-week",
             "9"],
            EXIT_BAD_REQUEST,
            "bad-request/request-params-invalid",
            "schedule_days_of_week must list integers 0 (Sunday) to 6 (Saturday).",
        ),
        (
            ["list", "--per-page", "0"],
            EXIT_BAD_REQUEST,
            "bad-request/request-params-invalid",
            "Parameter per_page must be between 1 and 10000, got 0.",
        ),
        (
            ["list", "--sort-by", "color"],
            EXIT_BAD_REQUEST,
            "bad-request/invalid-sort-field",
            None,
        ),
        (
            ["create", "--automation", "create_folder", "--destination", "d", "--api-key",
             "0" * 64],
            EXIT_AUTH,
            "not-authenticated/invalid-credentials",
            "The API key is unknown or has been revoked.",
        ),
    ],
)  # fmt: skip
def test_refused_requests_print_one_line_and_exit_with_their_code(
    cli: Cli, args: list[str], code: int, error_type: str, message: str | None
) -> None:
    result = cli(*args)
    assert result[:2] == (code, "")
    matched = ERROR_LINE.fullmatch(result[2])
    assert matched is not None, result[2]
    assert matched.group(1) == error_type
    if message is not None:
        assert matched.group(2) == message
    assert cli.api("/automations").json() == []  # nothing was created


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["create", "--json", "[1, 2]"], "--json must hold a JSON object"),
        (["create", "--json", "{nope"], "--json is not valid JSON"),
        (["create", "--json", "@/nonexistent/body.json"], "cannot read /nonexistent/body.json"),
        (["create", "--day-of-week", "funday"], "'funday' is not a day"),
        (["get", "abc"], "Invalid value for 'ID'"),
        (["run"], "Missing argument 'ID'"),
        (["list", "--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_usage_errors_exit_2_before_any_request(cli: Cli, args: list[str], complaint: str) -> None:
    code, out, err = cli(*args)
    assert (code, out) == (EXIT_USAGE, "")
    assert complaint in " ".join(line.strip(" │") for line in err.splitlines())
    assert "Traceback" not in err


def test_the_installed_command_creates_and_runs(cli: Cli) -> None:
    env = {**os.environ, "CONVEYOR_URL": cli.url, "CONVEYOR_API_KEY": cli.account.key}
    command = str(Path(sys.executable).parent / "conveyor")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, "automations", *args], env=env, capture_output=True, text=True, check=False
        )

    created = run("create", "--automation", "create_folder", "--destination", "x", "--format",
                  "json")  # fmt: skip
    assert (created.returncode, created.stderr) == (0, "")
    automation = orjson.loads(created.stdout)["id"]
    started = run("run", str(automation), "--format", "json")
    assert (started.returncode, started.stderr) == (0, "")
    run_id = orjson.loads(started.stdout)["id"]
    assert started.stdout == cli.api(f"/automation_runs/{run_id}").text + "\n"
    assert run("delete", str(automation)).returncode == 0
    gone = run("get", str(automation))
    assert (gone.returncode, gone.stdout) == (EXIT_NOT_FOUND, "")


def test_the_command_tree_loads_no_server_module() -> None:
    """Every `conveyor` command loads the whole command tree; the server side (API app,
    SQLAlchemy, Alembic, engine) must wait for a server command, so client commands start fast."""
    server_side = ("fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn", "jinja2")
    code = (
        "import sys, conveyor.cli.main\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{server_side!r} or m.startswith(('conveyor.api', 'conveyor.store', 'conveyor.engine'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout == "[]\n"
