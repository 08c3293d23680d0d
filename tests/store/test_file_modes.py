"""The data folder and every file holding the signing secret are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conveyor.cli.server import open_database
from conveyor.config import Settings
from conveyor.store import backup, migrate, secrets


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_data_folder_and_database_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual default, which would give 0755 and 0644
    try:
        home = tmp_path / "data"
        settings = Settings.from_env({"CONVEYOR_HOME": str(home)})
        db = open_database(settings, create=True)
        migrate.upgrade(db)
        with db.write() as conn:
            secrets.get_or_create_secret(conn)
        database = home / "conveyor.db"
        assert mode(home) == 0o700
        assert mode(database) == 0o600
        wal = Path(f"{database}-wal")
        if wal.exists():
            assert mode(wal) == 0o600
        copy = tmp_path / "backups" / "copy.db"
        backup.backup(database, copy)
        assert mode(copy) == 0o600
        db.dispose()
    finally:
        os.umask(old)
