"""`conveyor db backup` while runs are being written, `conveyor db restore` only when stopped."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from conveyor.config import Settings
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs
from conveyor.testing.seed import Seeder


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(settings.home),
        "CONVEYOR_DATABASE_URL": settings.database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def finished_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id FROM automation_runs WHERE run_stage = 'finished'")
        return {row[0] for row in rows}
    finally:
        conn.close()


# The online backup copies the embedded SQLite database; PostgreSQL has pg_dump.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@sqlite_only
def test_backup_while_runs_are_written_holds_every_run_finished_before_it(
    settings: Settings, db: Database, seed: Seeder, tmp_path: Path
) -> None:
    automation = seed.automation(seed.account("alice"))
    for _ in range(50):
        seed.run(automation, outcome=(1, 0), messages=["copied a.txt"])
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            written.append(seed.run(automation, outcome=(2, 1), messages=["x" * 200]).id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.01)
        with db.read() as conn:
            before = set(
                conn.execute(
                    select(automation_runs.c.id).where(automation_runs.c.run_stage == "finished")
                ).scalars()
            )
        result = cli(settings, "db", "backup", str(tmp_path / "copy.db"))
        during = len(written)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert "integrity check ok" in result.stdout
    assert len(written) > 20 and during > 20
    copy = tmp_path / "copy.db"
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()
    assert before <= finished_ids(copy)
    assert not Path(str(copy) + "-wal").exists()
    # A second backup to the same name is refused, the first is left alone.
    again = cli(settings, "db", "backup", str(copy))
    assert again.returncode == 1 and "exists" in again.stderr


@sqlite_only
def test_restore_refuses_while_the_database_is_open_then_restores(
    settings: Settings, db: Database, seed: Seeder, tmp_path: Path
) -> None:
    automation = seed.automation(seed.account("alice"))
    kept = {seed.run(automation, outcome=(1, 0)).id for _ in range(5)}
    backup = tmp_path / "before.db"
    assert cli(settings, "db", "backup", str(backup)).returncode == 0
    later = seed.run(automation, outcome=(0, 1)).id
    db.dispose()
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('SELECT 1 FROM automation_runs'); print('open', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        refused = cli(settings, "db", "restore", str(backup))
        assert refused.returncode == 1
        assert f"open in process(es) {holder.pid}" in refused.stderr
        assert later in finished_ids(path), "a refused restore changes nothing"
    finally:
        holder.kill()
        holder.wait()
    restored = cli(settings, "db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert finished_ids(path) == kept
    replaced = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".replaced-")]
    assert len(replaced) == 1 and later in finished_ids(replaced[0])


@sqlite_only
def test_restore_refuses_files_that_are_not_good_backups(
    settings: Settings, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    result = cli(settings, "db", "restore", str(garbage))
    assert result.returncode == 1 and "cannot be read" in result.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = cli(settings, "db", "restore", str(other))
    assert result.returncode == 1 and "not a Conveyor database" in result.stderr
    assert cli(settings, "db", "restore", str(tmp_path / "missing.db")).returncode == 1


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_backups_point_to_pg_dump(settings: Settings, backend: str) -> None:
    for action in ("backup", "restore"):
        result = cli(settings, "db", action, "/tmp/never-written.dump")
        assert result.returncode == 2
        assert "pg_dump --format=custom" in result.stderr
        assert "pg_restore --clean" in result.stderr
    assert not Path("/tmp/never-written.dump").exists()
