"""`conveyor automation-runs list|get` against the live server, on SQLite and PostgreSQL.

Output is checked exactly: the table as printed, JSON equal to the API's own
answer, CSV line by line, and one-line errors with their exit codes.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from cli_world import BASE_US, CliWorld, invoke

from conveyor import sdk
from conveyor.cli.output import (
    EXIT_AUTH,
    EXIT_BAD_REQUEST,
    EXIT_CONNECTION,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from conveyor.testing.postgres import free_port
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

RULE = "─"
TABLE = "\n".join(
    [
        "id   automation_id   status            run_stage             successful_operations"
        "   failed_operations   created_at             runtime                completed_at",
        RULE * 171,
        " 5               1   running           queued_for_planning                       0"
        "                   0   2023-11-14T22:13:24Z   2023-11-14T22:13:24Z",
        " 4               1   running           executing                                 0"
        "                   0   2023-11-14T22:13:23Z   2023-11-14T22:13:23Z",
        " 3               1   partial_failure   finished                                  1"
        "                   1   2023-11-14T22:13:22Z   2023-11-14T22:13:22Z   2023-11-14T22:13:22Z",
        " 2               1   failure           finished                                  0"
        "                   3   2023-11-14T22:13:21Z   2023-11-14T22:13:21Z   2023-11-14T22:13:21Z",
        " 1               1   success           finished                                  2"
        "                   0   2023-11-14T22:13:20Z   2023-11-14T22:13:20Z   2023-11-14T22:13:20Z",
        "",
    ]
)
CSV_HEADER = (
    "id,automation_id,completed_at,created_at,runtime,status,run_stage,"
    "successful_operations,failed_operations,status_messages_url,"
    "retry_at,retried_at,retried_in_run_id,retry_of_run_id,cancel_requested_at,rerun_of_run_id,"
    "rerun_from_node_id"
)
ERROR_LINE = re.compile(r"conveyor: ([a-z-]+(?:/[a-z-]+)?): (.+) \(request id [0-9a-f]{16}\)\n")


def runs_list(world: CliWorld, *args: str) -> list[str]:
    return ["automation-runs", "list", "--automation-id", str(world.automation_id), *args]


def test_list_prints_a_table_newest_first(world: CliWorld) -> None:
    assert [run.id for run in world.runs] == [1, 2, 3, 4, 5]  # the table below spells them out
    result = invoke(runs_list(world), world.env())
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == TABLE


def test_list_json_is_exactly_the_api_records(world: CliWorld) -> None:
    result = invoke(
        runs_list(world, "--format", "json", "--sort-by", "created_at:asc"), world.env()
    )
    assert (result.exit_code, result.stderr) == (0, "")
    api = world.api(
        "/automation_runs",
        {"automation_id": world.automation_id, "sort_by[created_at]": "asc"},
    )
    assert result.stdout == api.content.decode() + "\n"
    assert [record["id"] for record in orjson.loads(result.stdout)] == [1, 2, 3, 4, 5]


def test_list_csv_has_the_seed_fields_as_header(world: CliWorld) -> None:
    result = invoke(runs_list(world, "--format", "csv", "--status", "failure"), world.env())
    assert (result.exit_code, result.stderr) == (0, "")
    url = world.api(f"/automation_runs/{world.runs[1].id}").json()["status_messages_url"]
    assert result.stdout == (
        f"{CSV_HEADER}\n"
        f"2,1,2023-11-14T22:13:21Z,2023-11-14T22:13:21Z,2023-11-14T22:13:21Z,failure,finished,0,3,{url},,,,,,,\n"
    )


def test_one_page_prints_the_next_cursor_to_stderr_and_continues(world: CliWorld) -> None:
    first = invoke(runs_list(world, "--per-page", "2", "--format", "csv"), world.env())
    api = world.api("/automation_runs", {"automation_id": world.automation_id, "per_page": 2})
    cursor = api.headers["X-Files-Cursor-Next"]
    assert first.exit_code == 0
    assert first.stderr == f"More runs follow: add --cursor {cursor}\n"
    assert [row[0] for row in csv.reader(io.StringIO(first.stdout))] == ["id", "5", "4"]

    second = invoke(
        runs_list(world, "--per-page", "2", "--format", "csv", "--cursor", cursor), world.env()
    )
    assert [row[0] for row in csv.reader(io.StringIO(second.stdout))] == ["id", "3", "2"]
    last = world.api(
        "/automation_runs",
        {"automation_id": world.automation_id, "per_page": 2, "cursor": cursor},
    ).headers["X-Files-Cursor-Next"]
    third = invoke(runs_list(world, "--per-page", "2", "--cursor", last), world.env())
    assert (third.exit_code, third.stderr) == (0, "")  # the last page: no cursor to print
    assert [line.split()[0] for line in third.stdout.splitlines()[2:] if line] == ["1"]


def test_all_walks_every_page(world: CliWorld) -> None:
    walked = invoke(runs_list(world, "--per-page", "2", "--all", "--format", "json"), world.env())
    assert (walked.exit_code, walked.stderr) == (0, "")
    whole = world.api("/automation_runs", {"automation_id": world.automation_id})
    assert walked.stdout == whole.content.decode() + "\n"

    table = invoke(runs_list(world, "--per-page", "1", "--all"), world.env())
    assert (table.exit_code, table.stdout) == (0, TABLE)


def test_sort_by_status(world: CliWorld) -> None:
    result = invoke(runs_list(world, "--sort-by", "status:desc", "--format", "csv"), world.env())
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # Status descending, ties broken by id descending.
    assert [(row["status"], row["id"]) for row in rows] == [
        ("success", "1"),
        ("running", "5"),
        ("running", "4"),
        ("partial_failure", "3"),
        ("failure", "2"),
    ]


def test_get_in_each_format(world: CliWorld) -> None:
    run_id = str(world.runs[2].id)
    api = world.api(f"/automation_runs/{run_id}")
    url = api.json()["status_messages_url"]

    table = invoke(["automation-runs", "get", run_id], world.env())
    assert (table.exit_code, table.stderr) == (0, "")
    assert table.stdout == (
        "id                      3\n"
        "automation_id           1\n"
        "completed_at            2023-11-14T22:13:22Z\n"
        "created_at              2023-11-14T22:13:22Z\n"
        "runtime                 2023-11-14T22:13:22Z\n"
        "status                  partial_failure\n"
        "run_stage               finished\n"
        "successful_operations   1\n"
        "failed_operations       1\n"
        f"status_messages_url     {url}\n"
        "retry_at\n"
        "retried_at\n"
        "retried_in_run_id\n"
        "retry_of_run_id\n"
        "cancel_requested_at\n"
        "rerun_of_run_id\n"
        "rerun_from_node_id\n"
    )

    as_json = invoke(["automation-runs", "get", run_id, "--format", "json"], world.env())
    assert as_json.stdout == api.content.decode() + "\n"

    as_csv = invoke(["automation-runs", "get", run_id, "--format", "csv"], world.env())
    assert as_csv.stdout == (
        f"{CSV_HEADER}\n"
        "3,1,2023-11-14T22:13:22Z,2023-11-14T22:13:22Z,2023-11-14T22:13:22Z,"
        f"partial_failure,finished,1,1,{url},,,,,,,\n"
    )


@pytest.mark.parametrize(
    ("args", "env", "code", "error_type", "message"),
    [
        (
            ["--status", "nope"],
            {},
            EXIT_BAD_REQUEST,
            "bad-request/invalid-filter-param-value",
            "filter[status] must be one of running, success, partial_failure, failure, queued, "
            "skipped, canceled, got 'nope'.",
        ),
        (
            ["--cursor", "bogus"],
            {},
            EXIT_BAD_REQUEST,
            "bad-request/invalid-cursor",
            "The cursor is not valid for this list; start again without a cursor.",
        ),
        (
            ["--sort-by", "color:asc"],
            {},
            EXIT_BAD_REQUEST,
            "bad-request/invalid-sort-field",
            "Cannot sort by 'color'; valid fields are automation_id, created_at, status.",
        ),
        (
            ["--per-page", "0"],
            {},
            EXIT_BAD_REQUEST,
            "bad-request/request-params-invalid",
            None,
        ),
        (
            ["--api-key", "0" * 64],
            {},
            EXIT_AUTH,
            "not-authenticated/invalid-credentials",
            "The API key is unknown or has been revoked.",
        ),
    ],
)
def test_list_errors_print_one_line_and_exit_with_their_code(
    world: CliWorld,
    args: list[str],
    env: dict[str, str | None],
    code: int,
    error_type: str,
    message: str | None,
) -> None:
    result = invoke(runs_list(world, *args), world.env(**env))
    assert (result.exit_code, result.stdout) == (code, "")
    matched = ERROR_LINE.fullmatch(result.stderr)
    assert matched is not None, result.stderr
    assert matched.group(1) == error_type
    if message is not None:
        assert matched.group(2) == message


@pytest.mark.parametrize(
    "args",
    [
        ["automation-runs", "list", "--automation-id", "1"],
        ["automation-runs", "get", "1"],
        ["automation-runs", "log", "1"],
        ["automations", "list"],
        ["automations", "run", "1"],
    ],
)
@pytest.mark.parametrize("key", [None, ""])
def test_a_missing_key_says_how_to_give_one(
    world: CliWorld, args: list[str], key: str | None
) -> None:
    result = invoke(args, world.env(CONVEYOR_API_KEY=key))
    assert (result.exit_code, result.stdout) == (EXIT_AUTH, "")
    assert result.stderr == (
        "conveyor: no API key: set CONVEYOR_API_KEY or pass --api-key "
        "(an admin creates one on the server with `conveyor api-keys create --user NAME`)\n"
    )


def test_not_found_exits_5(world: CliWorld) -> None:
    for args in (
        ["automation-runs", "get", "999999"],
        ["automation-runs", "list", "--automation-id", "999999"],
    ):
        result = invoke(args, world.env())
        assert (result.exit_code, result.stdout) == (EXIT_NOT_FOUND, "")
        matched = ERROR_LINE.fullmatch(result.stderr)
        assert matched is not None and matched.group(1) == "not-found"


def test_an_unreachable_server_exits_6_after_retries(world: CliWorld) -> None:
    port = free_port()  # nothing listens there
    result = invoke(
        ["automation-runs", "get", "1"], world.env(CONVEYOR_URL=f"http://127.0.0.1:{port}")
    )
    assert (result.exit_code, result.stdout) == (EXIT_CONNECTION, "")
    assert result.stderr == (
        f"conveyor: connection error: Could not get an answer from http://127.0.0.1:{port} "
        "after 4 attempts: ConnectError: [Errno 111] Connection refused\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        # The all-runs filters only without --automation-id.
        ["automation-runs", "list", "--automation-id", "1", "--trigger", "webhook"],
        ["automation-runs", "get", "abc"],
        ["automation-runs", "get", "1", "--format", "xml"],
        ["automation-runs", "get", "1", "--url", "ftp://example.com"],
    ],
)
def test_usage_errors_exit_2_before_any_request(world: CliWorld, args: list[str]) -> None:
    result = invoke(args, world.env())
    assert (result.exit_code, result.stdout) == (EXIT_USAGE, "")
    assert "Traceback" not in result.stderr and "Error" in result.stderr


def test_list_without_an_automation_is_the_all_runs_view(world: CliWorld, seed: Seeder) -> None:
    other = seed.automation(world.alice)
    extra = seed.run(other, created_at=BASE_US + 10_000_000, outcome=(0, 1))
    result = invoke(
        ["automation-runs", "list", "--status", "failure,partial_failure", "--format", "json"],
        world.env(),
    )
    assert result.exit_code == 0, result.stderr
    ids = [record["id"] for record in orjson.loads(result.stdout)]
    assert ids == [extra.id, world.runs[2].id, world.runs[1].id]
    result = invoke(
        [
            "automation-runs",
            "list",
            "--created-from",
            "2023-11-14T22:13:21Z",
            "--created-before",
            "2023-11-14T22:13:23Z",
            "--sort-by",
            "created_at:asc",
            "--format",
            "csv",
        ],
        world.env(),
    )
    assert result.exit_code == 0, result.stderr
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:]] == [
        str(world.runs[1].id),
        str(world.runs[2].id),
    ]
    wrong = invoke(["automation-runs", "list", "--trigger", "cron"], world.env())
    assert wrong.exit_code == EXIT_BAD_REQUEST and "filter[trigger]" in wrong.stderr


def conveyor_command() -> str:
    return str(Path(sys.executable).parent / "conveyor")


def test_the_installed_command_reads_url_and_key_from_the_environment(world: CliWorld) -> None:
    env = {**os.environ, "CONVEYOR_URL": world.url, "CONVEYOR_API_KEY": world.alice.key}
    listed = subprocess.run(
        [conveyor_command(), *runs_list(world, "--format", "json", "--status", "success")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    api = world.api(
        "/automation_runs", {"automation_id": world.automation_id, "filter[status]": "success"}
    )
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, api.text + "\n", "")

    missing = subprocess.run(
        [conveyor_command(), "automation-runs", "get", "424242"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (missing.returncode, missing.stdout) == (EXIT_NOT_FOUND, "")
    matched = ERROR_LINE.fullmatch(missing.stderr)
    assert matched is not None
    assert matched.groups() == ("not-found", "Automation Run 424242 not found.")


def test_api_keys_create_prints_only_a_key_that_works(
    database_url: str, tmp_path: Path, api: ServerThread, seed: Seeder
) -> None:
    env = {"CONVEYOR_DATABASE_URL": database_url, "CONVEYOR_HOME": str(tmp_path / "home")}
    created = invoke(["api-keys", "create", "--user", "bob"], env)
    assert created.exit_code == 0
    assert created.stderr.startswith("conveyor: database: ")  # which one it used
    assert re.fullmatch(r"[0-9a-f]{64}\n", created.stdout)
    key = created.stdout.strip()

    bob = seed.account("bob")  # the same user, so the new key sees bob's automation
    automation = seed.automation(bob)
    run = seed.run(automation, outcome=(1, 0))
    with sdk.Client(api.url, key) as client:
        assert client.automation_run.find(run.id).status == "success"
    listed = invoke(
        ["automation-runs", "list", "--automation-id", str(automation), "--format", "csv"],
        {"CONVEYOR_URL": api.url, "CONVEYOR_API_KEY": key},
    )
    assert listed.exit_code == 0
    assert [row["id"] for row in csv.DictReader(io.StringIO(listed.stdout))] == [str(run.id)]
