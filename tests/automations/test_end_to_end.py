"""End to end through the official Files.com SDK: create an automation of each type on
real files, run it, let `conveyor serve`'s embedded engine execute it, and check the
files on disk, the run's fields and its status-messages log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import files_sdk
import httpx
import pytest

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.engine.service import embedded_services
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def engine_server(database_url: str, db: Database, tmp_path: Path) -> Iterator[ServerThread]:
    settings = Settings.from_env(
        {
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_STORAGE_ROOT": str(tmp_path / "files"),
            "CONVEYOR_EMBEDDED_WORKERS": "2",
            "CONVEYOR_RATE_LIMIT_RATE": "0",
        }
    )
    settings.storage_root.mkdir(parents=True)
    with ServerThread(create_app(settings, db, services=embedded_services())) as running:
        yield running


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "files"


@pytest.fixture
def sdk(files: ModuleType, engine_server: ServerThread, seed: Seeder) -> ModuleType:
    files.base_url = engine_server.url
    files.set_api_key(seed.account("alice").key)
    return files


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def run_to_completion(automation_id: int) -> Any:
    """manual_run through the official SDK, then poll the run until it has finished."""
    assert files_sdk.automation.manual_run(automation_id) is None
    (run,) = list(files_sdk.automation_run.list({"automation_id": automation_id}))
    deadline = time.monotonic() + 60
    while run.completed_at is None:
        assert time.monotonic() < deadline, f"run {run.id} did not finish: {run.status}"
        time.sleep(0.05)
        run = files_sdk.automation_run.find(run.id)
    return run


def log_of(run: Any) -> list[str]:
    """The run's log, read from its signed URL with no API key: `[level] message` lines."""
    response = httpx.get(run.status_messages_url)
    assert response.status_code == 200
    return [line.split(" ", 1)[1] for line in response.text.splitlines()]


def test_create_folder(sdk: ModuleType, root: Path) -> None:
    automation = sdk.automation.create(
        {"automation": "create_folder", "destinations": ["reports/%Y-%m-%d", "inbox"]}
    )
    write(root, {"inbox/keep.txt": b"already here"})
    run = run_to_completion(automation.id)
    day = datetime.strptime(run.runtime, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d")
    assert (root / "reports" / day).is_dir()
    assert (root / "inbox" / "keep.txt").read_bytes() == b"already here"
    assert (run.status, run.successful_operations, run.failed_operations) == ("success", 2, 0)
    lines = log_of(run)
    assert f"[info] Created folder reports/{day}." in lines
    assert lines[-1] == "[info] Run finished with status success: 2 operations succeeded, 0 failed."


def test_copy_file_keeps_sources_and_skips_same_size(sdk: ModuleType, root: Path) -> None:
    write(root, {"in/a.csv": b"a" * 10, "in/sub/b.csv": b"b" * 20, "in/notes.txt": b"n"})
    write(root, {"out/a.csv": b"x" * 10})  # same size: skipped, not overwritten
    automation = sdk.automation.create(
        {"automation": "copy_file", "path": "in", "source": "**/*.csv", "destinations": ["out/"]}
    )
    run = run_to_completion(automation.id)
    assert (run.status, run.successful_operations, run.failed_operations) == ("success", 2, 0)
    assert (root / "out/a.csv").read_bytes() == b"x" * 10
    assert (root / "out/sub/b.csv").read_bytes() == b"b" * 20
    assert not (root / "out/notes.txt").exists()
    assert sorted(p.name for p in (root / "in").rglob("*") if p.is_file()) == [
        "a.csv",
        "b.csv",
        "notes.txt",
    ]
    lines = log_of(run)
    assert any(line.startswith("[info] Skipped copying in/a.csv") for line in lines)
    assert any(line.startswith("[info] Copied in/sub/b.csv to out/sub/b.csv") for line in lines)


def test_move_file(sdk: ModuleType, root: Path) -> None:
    write(root, {"drop/1.dat": b"one", "drop/2.dat": b"two!", "drop/keep.tmp": b"t"})
    automation = sdk.automation.create(
        {"automation": "move_file", "path": "drop", "source": "*.dat", "destinations": ["archive/"]}
    )
    run = run_to_completion(automation.id)
    assert (run.status, run.successful_operations, run.failed_operations) == ("success", 2, 0)
    assert (root / "archive/1.dat").read_bytes() == b"one"
    assert (root / "archive/2.dat").read_bytes() == b"two!"
    assert sorted(p.name for p in (root / "drop").iterdir()) == ["keep.tmp"]
    assert sum(line.startswith("[info] Moved drop/") for line in log_of(run)) == 2


def test_delete_file(sdk: ModuleType, root: Path) -> None:
    write(root, {"tmp/x.log": b"x", "tmp/y.log": b"y", "tmp/z.txt": b"z"})
    automation = sdk.automation.create({"automation": "delete_file", "source": "tmp/*.log"})
    run = run_to_completion(automation.id)
    assert (run.status, run.successful_operations, run.failed_operations) == ("success", 2, 0)
    assert sorted(p.name for p in (root / "tmp").iterdir()) == ["z.txt"]
    assert sorted(line for line in log_of(run) if line.startswith("[info] Deleted")) == [
        "[info] Deleted tmp/x.log.",
        "[info] Deleted tmp/y.log.",
    ]


def test_partial_failure_is_reported_with_reasons(
    sdk: ModuleType, root: Path, engine_server: ServerThread
) -> None:
    """A destination that is a file, not a folder: those copies fail, the others succeed."""
    write(root, {"in/a.csv": b"a", "in/b.csv": b"bb", "blocked": b"I am a file"})
    automation = sdk.automation.create(
        {
            "automation": "copy_file",
            "path": "in",
            "source": "*.csv",
            "destinations": ["good/", "blocked/"],
        }
    )
    run = run_to_completion(automation.id)
    assert (run.status, run.successful_operations, run.failed_operations) == (
        "partial_failure",
        2,
        2,
    )
    assert (root / "good/a.csv").read_bytes() == b"a"
    assert (root / "blocked").read_bytes() == b"I am a file"
    errors = [line for line in log_of(run) if line.startswith("[error]")]
    assert len(errors) == 2
    assert all("blocked" in line for line in errors)
    # run_stage is in Conveyor's body even though the official SDK's model drops it.
    raw = httpx.get(
        f"{engine_server.url}/api/rest/v1/automation_runs/{run.id}",
        headers={"X-FilesAPI-Key": files_sdk.get_api_key()},
    ).json()
    assert raw["run_stage"] == "finished"
    assert raw["completed_at"] == run.completed_at


def test_nothing_matching_is_a_success_with_zero_operations(sdk: ModuleType, root: Path) -> None:
    automation = sdk.automation.create({"automation": "delete_file", "source": "nowhere/*.bak"})
    run = run_to_completion(automation.id)
    assert (run.status, run.successful_operations, run.failed_operations) == ("success", 0, 0)
    assert log_of(run)[-1].startswith("[info] Run finished with status success")
