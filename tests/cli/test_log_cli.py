"""`conveyor automation-runs log ID [--follow]` against the live server, on SQLite and PostgreSQL.

Following is tested twice: on a run that a background thread moves through
its lifecycle with the store's own functions (the ones the engine calls),
waiting after each logged line until the command has printed it; and on a
run the real embedded engine executes after `conveyor automations run`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from cli_world import invoke

from conveyor.app import create_app
from conveyor.cli.output import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE
from conveyor.config import Settings
from conveyor.engine.hooks import ENV_VAR as ENGINE_DELAYS
from conveyor.engine.service import embedded_services
from conveyor.sdk.run_log import log_lines
from conveyor.store.database import Database
from conveyor.testing.live_run import LIVE_RUN_LOG, LiveRunDriver, ObservedLines, log_entries
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

ERROR_LINE = re.compile(r"conveyor: ([a-z-]+(?:/[a-z-]+)?): (.+) \(request id [0-9a-f]{16}\)\n")


def env_for(url: str, account: Account) -> dict[str, str | None]:
    return {"CONVEYOR_URL": url, "CONVEYOR_API_KEY": account.key}


def server_log(url: str, account: Account, run_id: int) -> str:
    """The run's log as the server serves it at its signed link, fetched without the CLI."""
    run = httpx.get(
        f"{url}/api/rest/v1/automation_runs/{run_id}", headers={"X-FilesAPI-Key": account.key}
    ).json()
    return httpx.get(run["status_messages_url"]).text


def test_log_prints_the_status_messages(api: ServerThread, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    messages = ["Planned 2 operations", "Copied in/a.csv to out/a.csv", "in/b.csv: disk full"]
    run = seed.run(automation, outcome=(1, 1), messages=messages)

    result = invoke(["automation-runs", "log", str(run.id)], env_for(api.url, alice))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == server_log(api.url, alice, run.id)
    assert log_entries(log_lines(result.stdout)) == [("info", text) for text in messages]

    # Following a finished run prints the same lines and returns at once.
    followed = invoke(["automation-runs", "log", str(run.id), "-f"], env_for(api.url, alice))
    assert (followed.exit_code, followed.stdout, followed.stderr) == (0, result.stdout, "")

    quiet = seed.run(automation)
    empty = invoke(["automation-runs", "log", str(quiet.id)], env_for(api.url, alice))
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "")


def test_log_errors_exit_with_their_code(api: ServerThread, seed: Seeder) -> None:
    alice, bob = seed.account("alice"), seed.account("bob")
    hidden = seed.run(seed.automation(bob), outcome=(1, 0), messages=["bob's"])
    for args in (
        ["automation-runs", "log", "999999"],
        ["automation-runs", "log", str(hidden.id), "--follow"],
    ):
        result = invoke(args, env_for(api.url, alice))
        assert (result.exit_code, result.stdout) == (EXIT_NOT_FOUND, "")
        matched = ERROR_LINE.fullmatch(result.stderr)
        assert matched is not None and matched.group(1) == "not-found"

    anonymous = invoke(
        ["automation-runs", "log", str(hidden.id)],
        {"CONVEYOR_URL": api.url, "CONVEYOR_API_KEY": None},
    )
    assert (anonymous.exit_code, anonymous.stdout) == (EXIT_AUTH, "")

    for interval in ("0", "61"):
        refused = invoke(
            ["automation-runs", "log", str(hidden.id), "-f", "--interval", interval],
            env_for(api.url, bob),
        )
        assert (refused.exit_code, refused.stdout) == (EXIT_USAGE, "")
        assert "--interval" in refused.stderr


def test_follow_prints_each_line_once_as_the_run_progresses(
    api: ServerThread, seed: Seeder, db: Database
) -> None:
    """The installed command in its own process, its output read from a pipe: each line must
    arrive while the run is still going (a buffered or end-of-run print would stall the driver)."""
    alice = seed.account("alice")
    run = seed.run(seed.automation(alice))  # queued_for_planning, nothing logged yet
    command = [
        str(Path(sys.executable).parent / "conveyor"),
        "automation-runs",
        "log",
        str(run.id),
        "--follow",
        "--interval",
        "0.05",
    ]
    env = {**os.environ, "CONVEYOR_URL": api.url, "CONVEYOR_API_KEY": alice.key}
    observed = ObservedLines()
    follower = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            observed.add(line.removesuffix("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    driver = LiveRunDriver(db, run.id, observed)
    driver.start()
    driver.join()
    try:
        follower.wait(timeout=60)  # it ends by itself once the run is finished
    finally:
        follower.kill()
    reader.join(timeout=60)
    assert follower.stderr is not None
    stderr = follower.stderr.read()
    follower.stderr.close()

    assert driver.error is None, (driver.error, stderr)
    assert (follower.returncode, stderr) == (0, "")
    assert observed.lines == log_lines(server_log(api.url, alice, run.id))
    assert log_entries(observed.lines) == list(LIVE_RUN_LOG)


FOLDERS = ["reports/%Y", "reports/inbox", "reports/outbox"]


@pytest.fixture
def engine_api(
    database_url: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerThread, Settings]]:
    """The app with the embedded engine: one worker thread, storage in this test's folder."""
    # A pause before each operation's commit keeps the run going while the CLI follows it.
    monkeypatch.setenv(ENGINE_DELAYS, "plan=0.3,operation=0.2")
    settings = Settings.from_env(
        {
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_STORAGE_ROOT": str(tmp_path / "files"),
            "CONVEYOR_EMBEDDED_WORKERS": "1",
            "CONVEYOR_POLL_INTERVAL": "0.2",
            "CONVEYOR_RATE_LIMIT_RATE": "0",
        }
    )
    with ServerThread(create_app(settings, db, services=embedded_services())) as running:
        yield running, settings


def test_run_then_follow_with_the_real_engine(
    engine_api: tuple[ServerThread, Settings], seed: Seeder
) -> None:
    api, settings = engine_api
    alice = seed.account("alice")
    env = env_for(api.url, alice)
    create = ["automations", "create", "--automation", "create_folder", "--format", "json"]
    for folder in FOLDERS:
        create += ["--destination", folder]
    created = invoke(create, env)
    assert (created.exit_code, created.stderr) == (0, "")
    automation_id = orjson.loads(created.stdout)["id"]

    started = invoke(["automations", "run", str(automation_id), "--format", "json"], env)
    assert (started.exit_code, started.stderr) == (0, "")
    run = orjson.loads(started.stdout)
    assert (run["automation_id"], run["status"]) == (automation_id, "running")

    followed = invoke(
        ["automation-runs", "log", str(run["id"]), "--follow", "--interval", "0.1"], env
    )
    assert (followed.exit_code, followed.stderr) == (0, "")
    lines = log_lines(followed.stdout)
    assert lines == log_lines(server_log(api.url, alice, run["id"]))
    assert len(set(lines)) == len(lines)  # no line printed twice
    assert log_entries(lines)[-1] == (
        "info",
        "Run finished with status success: 3 operations succeeded, 0 failed.",
    )

    finished = invoke(["automation-runs", "get", str(run["id"]), "--format", "json"], env)
    record = orjson.loads(finished.stdout)
    assert (record["run_stage"], record["status"]) == ("finished", "success")
    assert (record["successful_operations"], record["failed_operations"]) == (3, 0)
    year = record["runtime"][:4]
    root = settings.storage_root
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "reports",
        f"reports/{year}",
        "reports/inbox",
        "reports/outbox",
    ]
