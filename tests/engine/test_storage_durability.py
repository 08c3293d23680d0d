"""CONVEYOR_DURABLE_WRITES only adds fsyncs: the files on disk end up exactly the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.engine.storage import Storage


@pytest.mark.parametrize("durable", [False, True])
def test_file_actions_give_the_same_result_with_and_without_fsync(
    tmp_path: Path, durable: bool
) -> None:
    storage = Storage(tmp_path, durable=durable)
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.bin").write_bytes(b"\x00\x01" * 5000)
    (tmp_path / "in/b.bin").write_bytes(b"b")
    assert storage.copy("in/a.bin", "out/deep/a.bin", "t1") == 10_000
    storage.move("in/b.bin", "moved/b.bin", "t2")
    assert storage.make_folder("made/here") is True
    assert storage.delete("in/a.bin") is True
    assert (tmp_path / "out/deep/a.bin").read_bytes() == b"\x00\x01" * 5000
    assert (tmp_path / "moved/b.bin").read_bytes() == b"b"
    assert (tmp_path / "made/here").is_dir()
    assert list((tmp_path / "in").iterdir()) == []
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".conveyor-")]


def test_the_setting_is_read_from_the_environment(tmp_path: Path) -> None:
    assert Settings.from_env({"CONVEYOR_HOME": str(tmp_path)}).durable_writes is False
    on = Settings.from_env({"CONVEYOR_HOME": str(tmp_path), "CONVEYOR_DURABLE_WRITES": "true"})
    assert on.durable_writes is True
