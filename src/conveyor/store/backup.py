"""Consistent copies of the SQLite database, and putting one back.

`backup` uses SQLite's online backup API in one step: it reads one snapshot
(a read transaction, which in WAL mode never blocks the server's writers),
so the copy is the database as it was at one instant, while Conveyor runs.
`restore` replaces the database file with a checked copy, only when no
process holds the database open.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory

from conveyor.store import migrate
from conveyor.store.database import create_private


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


def sqlite_path(database_url: str) -> Path:
    if not database_url.startswith("sqlite:///"):
        raise BackupError("not a SQLite database URL")
    return Path(database_url.removeprefix("sqlite:///"))


@dataclass(frozen=True, slots=True)
class Checked:
    revision: str | None
    runs: int
    size: int


def check(path: Path) -> Checked:
    """PRAGMA integrity_check on a database file; BackupError unless it says ok."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupError(f"{path} fails PRAGMA integrity_check: {'; '.join(result[:5])}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "alembic_version" not in tables or "automation_runs" not in tables:
            raise BackupError(f"{path} is not a Conveyor database")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        runs = conn.execute("SELECT count(*) FROM automation_runs").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read as a SQLite database: {exc}") from None
    finally:
        conn.close()
    return Checked(revision[0] if revision else None, int(runs), path.stat().st_size)


def backup(source: Path, destination: Path) -> Checked:
    """Copy the live database at `source` to `destination` (a new file), then check the copy."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if destination.exists():
        raise BackupError(f"{destination} exists; give a new file name")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)  # a copy of the database holds its secrets too
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)  # pages=-1: the whole database from one snapshot
        # The copy is one self-contained file, not a WAL database with side files.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    with open(partial, "rb") as copied:
        os.fsync(copied.fileno())
    checked = check(partial)
    partial.rename(destination)
    return checked


def holders(path: Path) -> list[int]:
    """Pids of other processes with the database (or its WAL) open, read from /proc."""
    targets = {str(path.resolve()), str(path.resolve()) + "-wal"}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    found.append(int(proc.name))
                    break
        except OSError:  # gone, or not ours to look at
            continue
    return sorted(found)


def restore(backup_file: Path, target: Path) -> tuple[Checked, Path | None]:
    """Put a checked backup in place of the database at `target`.

    Refuses while another process holds the database open. The database it
    replaces is kept beside it (returned), not deleted.
    """
    checked = check(backup_file)
    scripts = ScriptDirectory(str(migrate.MIGRATIONS))
    known = {script.revision for script in scripts.walk_revisions()}
    if checked.revision not in known:
        raise BackupError(
            f"{backup_file} is at schema revision {checked.revision}, which this version of "
            "Conveyor does not know; restore it with the version that made it"
        )
    busy = holders(target)
    if busy:
        raise BackupError(
            f"the database {target} is open in process(es) {', '.join(map(str, busy))}; "
            "stop Conveyor (serve and workers) first"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    partial.unlink(missing_ok=True)
    create_private(partial)
    shutil.copyfile(backup_file, partial)
    with open(partial, "rb") as copied:
        os.fsync(copied.fileno())
    kept = None
    if target.exists():
        # Fold the WAL into the old file first, so the kept copy is whole on its own.
        old = sqlite3.connect(target)
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
        kept = target.with_name(f"{target.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        target.rename(kept)
    for side in ("-wal", "-shm"):
        Path(str(target) + side).unlink(missing_ok=True)
    partial.rename(target)
    return checked, kept
