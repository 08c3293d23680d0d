"""The storage's copy (kernel copy with a read/write fallback) and its path resolution,
on real files: the bytes, the permission bits, sources that are not regular files,
and resolution giving exactly what `os.path.realpath` gives."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest

from conveyor.engine import storage as storage_module
from conveyor.engine.storage import Storage


@pytest.mark.parametrize("size", [0, 1, 65_536, 3 * (1 << 20) + 17])
def test_copy_gives_the_same_bytes_and_permission_bits(tmp_path: Path, size: int) -> None:
    storage = Storage(tmp_path)
    data = os.urandom(size)
    source = tmp_path / "in/a.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    source.chmod(0o640)
    assert storage.copy("in/a.bin", "out/deep/a.bin", "t1") == size
    copy = tmp_path / "out/deep/a.bin"
    assert copy.read_bytes() == data
    assert stat.S_IMODE(copy.stat().st_mode) == 0o640
    assert sorted(p.name for p in copy.parent.iterdir()) == ["a.bin"]  # no temp file left


def test_the_read_write_fallback_copies_what_the_kernel_cannot(tmp_path: Path) -> None:
    """copy_file_range refuses a pipe (EINVAL): the copy goes on with read and write."""
    data = os.urandom(60_000)  # fits in the pipe's buffer: no second writer needed
    reader, feeder = os.pipe()
    try:
        os.write(feeder, data)
        os.close(feeder)
        with open(tmp_path / "target", "wb") as target:
            assert storage_module._copy_data(reader, target.fileno()) == len(data)
    finally:
        os.close(reader)
    assert (tmp_path / "target").read_bytes() == data


def test_a_source_that_is_not_a_regular_file_is_not_copied(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    os.mkfifo(tmp_path / "pipe")  # opening it for reading must not wait for a writer
    (tmp_path / "folder").mkdir()
    for name in ("pipe", "folder", "missing"):
        with pytest.raises(FileNotFoundError):
            storage.copy(name, f"out/{name}", "t1")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_clear_temps_removes_only_the_named_operation_s_temp_files(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    for name in (".conveyor-r1-o2-aa.tmp", ".conveyor-r1-o10-bb.tmp", ".conveyor-r12-o1-cc.tmp"):
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out" / name).write_text("stale")
    (tmp_path / "out/kept.txt").write_text("a file")
    assert storage.clear_temps("out", "r1-o") == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".conveyor-r12-o1-cc.tmp",
        "kept.txt",
    ]
    assert storage.clear_temps("missing", "r1-o") == 0


def test_resolution_matches_realpath_through_links_loops_and_missing_parts(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    (root / "a/b").mkdir(parents=True)
    (root / "a/f").write_text("f")
    os.symlink("b", root / "a/lb")
    os.symlink("../a", root / "a/b/up")
    os.symlink(str(tmp_path), root / "a/out")
    os.symlink("nowhere", root / "a/dangling")
    os.symlink("loop", root / "a/loop")
    os.symlink(str(root / "a/f"), root / "a/lf")
    os.mkfifo(root / "a/fifo")
    parts = ["a", "b", "lb", "up", "out", "dangling", "loop", "lf", "f", "x", "fifo"]
    fast = storage_module._fast_realpath
    checked = 0
    for length in range(1, 5):
        for combo in itertools.product(parts, repeat=length):
            path = str(root) + "/" + "/".join(combo)
            assert fast(path) == os.path.realpath(path), path
            checked += 1
    assert checked > 10_000


def test_lookup_agrees_with_size_and_is_folder(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    (tmp_path / "in/sub").mkdir(parents=True)
    (tmp_path / "in/a.txt").write_text("abc")
    os.symlink("a.txt", tmp_path / "in/link.txt")
    os.symlink("sub", tmp_path / "in/sublink")
    folders: dict[str, str] = {}
    for relative in ("in/a.txt", "in/link.txt", "in/sub", "in/sublink", "in/nothing", "no/x"):
        info = storage.lookup(relative, folders)
        size = info.st_size if info is not None and stat.S_ISREG(info.st_mode) else None
        is_folder = info is not None and stat.S_ISDIR(info.st_mode)
        assert (size, is_folder) == (storage.size(relative), storage.is_folder(relative))


@pytest.mark.parametrize("unnamed", [True, False])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o4755])
def test_a_planned_copy_is_invisible_until_placed_and_leaves_nothing_if_refused(
    tmp_path: Path, unnamed: bool, mode: int
) -> None:
    """An engine copy (`old="absent"`) writes an unnamed temp file where the kernel has
    O_TMPFILE (and a named `.conveyor-*.tmp` otherwise): before the fence nothing new is
    in the folder; a fence that refuses leaves nothing behind; a placed copy has the
    source's bytes and exact permission bits, whatever the umask."""
    storage = Storage(tmp_path)
    if not unnamed:
        storage._tmpfile = False
    elif not storage._tmpfile:
        pytest.skip("no O_TMPFILE here")
    data = os.urandom(5000)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in/a.bin").write_bytes(data)
    (tmp_path / "in/a.bin").chmod(mode)
    seen: list[list[str]] = []

    def fence() -> None:
        seen.append(sorted(os.listdir(tmp_path / "out")))

    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused

    src, dst = str(tmp_path / "in/a.bin"), str(tmp_path / "out/a.bin")
    with pytest.raises(Refused):
        storage.copy_resolved(src, dst, "r1-o1", old="absent", fence=refuse)
    assert os.listdir(tmp_path / "out") == []
    assert storage.copy_resolved(src, dst, "r1-o1", old="absent", fence=fence) == 5000
    if unnamed:
        assert seen == [[]]  # the data has no name until it gets its own
    else:
        assert len(seen[0]) == 1 and storage_module.is_temp_name(seen[0][0])
    assert os.listdir(tmp_path / "out") == ["a.bin"]
    assert (tmp_path / "out/a.bin").read_bytes() == data
    assert stat.S_IMODE((tmp_path / "out/a.bin").stat().st_mode) == mode
    # Performed again (a crash before the outcome was recorded): the same bytes are the result.
    assert storage.copy_resolved(src, dst, "r1-o1", old="absent") == 5000
    assert os.listdir(tmp_path / "out") == ["a.bin"]


def test_a_copy_through_resolved_folders_falls_back_whenever_it_is_not_the_plain_case(
    tmp_path: Path,
) -> None:
    """`copy_new` copies a regular file to a free name through the batch's folder
    descriptors; for anything else (a link, a missing folder or source, a taken name, a
    folder leading out of the root) it does nothing and returns None, for the full path."""
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "in/a.bin").write_bytes(b"a" * 100)
    (root / "in/a.bin").chmod(0o640)
    (root / "in/link").symlink_to("a.bin")
    (root / "out/taken").write_bytes(b"old")
    (tmp_path / "outside").mkdir()
    (root / "away").symlink_to(tmp_path / "outside")
    (root / "alias").symlink_to("in")  # a folder link inside the root: followed
    storage = Storage(root)
    places = storage.folders()
    try:
        assert storage.copy_new(places, "in/a.bin", "out/a.bin") == 100
        assert (root / "out/a.bin").read_bytes() == b"a" * 100
        assert stat.S_IMODE((root / "out/a.bin").stat().st_mode) == 0o640
        assert storage.copy_new(places, "alias/a.bin", "out/b.bin") == 100
        for source, destination in [
            ("in/link", "out/c.bin"),  # the source is a link
            ("in/gone", "out/c.bin"),
            ("in", "out/c.bin"),  # a folder
            ("in/a.bin", "new/c.bin"),  # no such folder yet
            ("in/a.bin", "out/taken"),
            ("in/a.bin", "away/c.bin"),
            ("../x/a.bin", "out/c.bin"),
        ]:
            assert storage.copy_new(places, source, destination) is None, (source, destination)
        assert (root / "out/taken").read_bytes() == b"old"
        assert list((tmp_path / "outside").iterdir()) == []
        assert sorted(p.name for p in (root / "out").iterdir()) == ["a.bin", "b.bin", "taken"]
        # The folder's descriptor keeps naming the folder it checked: after `out` is
        # replaced by a link leading out of the root, the copy still lands in it.
        (root / "out").rename(root / "moved")
        (root / "out").symlink_to(tmp_path / "outside")
        assert storage.copy_new(places, "in/a.bin", "out/d.bin") == 100
        assert (root / "moved/d.bin").exists()
        assert list((tmp_path / "outside").iterdir()) == []
    finally:
        places.close()
    fresh = storage.folders()
    try:  # resolved again (the next batch): the link leads out, so not this way
        assert storage.copy_new(fresh, "in/a.bin", "out/e.bin") is None
    finally:
        fresh.close()


def test_a_fenced_copy_through_resolved_folders_leaves_nothing(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def refuse() -> None:
        raise Stop

    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.bin").write_bytes(b"x" * 10)
    storage = Storage(tmp_path)
    places = storage.folders()
    try:
        with pytest.raises(Stop):
            storage.copy_new(places, "in/a.bin", "in/b.bin", fence=refuse)
    finally:
        places.close()
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.bin"]
