"""The storage root on disk: safe path resolution, listing, and crash-safe file actions.

Every path an automation names is relative to the root. `resolve` follows
symbolic links and refuses anything that lands outside the root, so no
automation can read, write or delete a file elsewhere. Writes go to a temp
file in the destination folder and are renamed into place: a reader sees the
old file or the whole new one, never half a file, and a killed worker leaves
nothing half-written. With `durable=True` (CONVEYOR_DURABLE_WRITES) each file
and its folder are also fsynced before the outcome is recorded, so a finished
operation survives a power loss too, at several times the cost per file.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

# Temp files are named `.conveyor-<tag>-<random>.tmp`; listings never show them.
TEMP_PREFIX = ".conveyor-"
TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


class PathEscape(Exception):
    """A path resolves outside the storage root; the message says which and how."""


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Storage:
    def __init__(self, root: Path, durable: bool = False) -> None:
        self.root = Path(os.path.realpath(root))
        self.durable = durable

    def _sync_folder(self, folder: Path) -> None:
        if self.durable:
            _fsync_folder(folder)

    def _inside(self, real: Path) -> bool:
        return real == self.root or real.is_relative_to(self.root)

    def resolve(self, relative: str) -> Path:
        """The real absolute path of `relative`, symlinks followed; PathEscape if outside.

        Folders that do not exist yet resolve lexically, which is where they
        will be created.
        """
        if relative.startswith("/") or ".." in relative.split("/"):
            raise PathEscape(f"'{relative}' is not a path inside the storage root")
        real = Path(os.path.realpath(self.root / relative))
        if not self._inside(real):
            raise PathEscape(
                f"'{relative}' resolves outside the storage root (through a symbolic link)"
            )
        return real

    def entry(self, relative: str) -> Path:
        """The directory entry itself (a link stays a link), after checking where it points.

        Moving or deleting a symbolic link acts on the link, but one that
        points outside the root is refused all the same.
        """
        self.resolve(relative)
        parent, _, name = relative.rpartition("/")
        return self.resolve(parent) / name if parent else self.root / name

    def walk(self, folder: str, depth: int | None) -> Iterator[str]:
        """Paths (relative to the root) of the files under `folder`, at most `depth` levels down.

        Symbolic links to folders are not descended into; links to files are
        listed (and checked when acted on). Conveyor's temp files are hidden.
        """
        top = self.resolve(folder) if folder else self.root
        if not top.is_dir():
            return
        top_parts = len(top.parts)
        for current, dirs, files in os.walk(top):
            # Files directly in `current` are this many levels below `top`.
            level = len(Path(current).parts) - top_parts + 1
            if depth is not None and level >= depth:
                dirs[:] = []
            dirs.sort()
            for name in sorted(files):
                if not is_temp_name(name):
                    # Named under `folder` as given, even when `folder` is a link.
                    below = Path(current, name).relative_to(top).as_posix()
                    yield f"{folder}/{below}" if folder else below

    def size(self, relative: str) -> int | None:
        """Size of the regular file at `relative`; None if there is none (or a folder)."""
        real = self.resolve(relative)
        try:
            info = real.stat()
        except (FileNotFoundError, NotADirectoryError):
            # NotADirectoryError: a parent is a file, so nothing can be here; acting
            # on this path later fails that one operation with its reason.
            return None
        return info.st_size if real.is_file() else None

    def is_folder(self, relative: str) -> bool:
        return self.resolve(relative).is_dir()

    # ------------------------------------------------------------- actions

    def make_folder(self, relative: str) -> bool:
        """Create the folder and its parents; False if it already existed."""
        real = self.resolve(relative)
        if real.is_dir():
            return False
        try:
            real.mkdir(parents=True)
        except FileExistsError:
            if real.is_dir():
                return False  # made by someone else meanwhile: the goal holds
            raise
        self._sync_folder(real.parent)
        return True

    def _clear_temps(self, folder: Path, tag: str) -> None:
        """Remove temp files an earlier, interrupted attempt of the same operation left."""
        for stale in folder.glob(f"{TEMP_PREFIX}{tag}-*{TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)

    def copy(self, source: str, destination: str, tag: str) -> int:
        """Copy atomically (temp, [fsync,] rename); returns the bytes written.

        `tag` names the operation, so a retry removes what a crashed attempt left.
        """
        src = self.resolve(source)
        dst = self.resolve(destination)
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._clear_temps(dst.parent, tag)
        temp = dst.parent / f"{TEMP_PREFIX}{tag}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        written = 0
        try:
            with open(src, "rb") as reader, open(temp, "xb") as writer:
                while chunk := reader.read(_CHUNK):
                    writer.write(chunk)
                    written += len(chunk)
                if self.durable:
                    writer.flush()
                    os.fsync(writer.fileno())
            shutil.copymode(src, temp)
            os.replace(temp, dst)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._sync_folder(dst.parent)
        return written

    def move(self, source: str, destination: str, tag: str) -> None:
        """Rename into place; across file systems, copy atomically then remove the source."""
        src = self.entry(source)
        dst = self.resolve(destination)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self.copy(source, destination, tag)
            src.unlink()
        self._sync_folder(dst.parent)
        if src.parent != dst.parent:
            self._sync_folder(src.parent)

    def delete(self, relative: str) -> bool:
        """Delete the file (a link, not its target); False if it was already gone."""
        entry = self.entry(relative)
        try:
            entry.unlink()
        except FileNotFoundError:
            return False
        self._sync_folder(entry.parent)
        return True
