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

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

# Temp files are named `.conveyor-<tag>-<random>.tmp`; listings never show them.
TEMP_PREFIX = ".conveyor-"
TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20
_KERNEL_CHUNK = 1 << 30
# O_NONBLOCK: opening a FIFO must not hang (it is refused as not a regular file).
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
# copy_file_range errors that mean "not here" (another file system, an old
# kernel, a file system without it): the copy goes on with read and write.
_NO_KERNEL_COPY = {
    errno.EXDEV,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EBADF,
    errno.EPERM,
}


class PathEscape(Exception):
    """A path resolves outside the storage root; the message says which and how."""


def is_utf8(name: str) -> bool:
    """Whether a name read from the disk is valid UTF-8 (Python decodes the bytes of one
    that is not with surrogate escapes). Conveyor never acts on such a name: it cannot
    be stored, sent in JSON or named in an automation; it is skipped with a logged reason."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str) -> str:
    """A name for logs and messages: the bytes that are not UTF-8 as `\\xNN`."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _fsync_folder(folder: Path | str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_O_PATH = getattr(os, "O_PATH", 0)
_DELETED = " (deleted)"


def _kernel_realpath(path: str) -> str | None:
    """`os.path.realpath(path)` for an existing path, from the kernel (Linux): open it with
    O_PATH (symbolic links followed, nothing read) and read back its name in /proc.
    None when that cannot answer (no such path, no /proc, a name the kernel marks
    as deleted): the caller then falls back to `os.path.realpath`."""
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)
    if not real.startswith("/") or real.endswith(_DELETED):
        return None
    return real


def _fast_realpath(path: str) -> str:
    """`os.path.realpath(path)`, with the kernel resolving what exists.

    realpath (not strict) resolves the existing part of a path and appends the
    rest: so does this. A path that does not exist is its parent's real path
    plus its name, unless the name is a (dangling) symbolic link, which
    realpath follows.
    """
    if ".." in path.split("/"):
        return os.path.realpath(path)
    path = os.path.normpath(path)  # "." and empty parts are nothing to realpath either
    missing: list[str] = []  # names below the deepest existing folder, innermost first
    while True:  # a loop, not recursion: a path may have thousands of missing levels
        real = _kernel_realpath(path)
        if real is None:
            parent, name = os.path.split(path)
            if name and parent and parent != path and not os.path.islink(path):
                missing.append(name)
                path = parent
                continue
            real = os.path.realpath(path)
        return os.path.join(real, *reversed(missing)) if missing else real


def _copy_data(reader: int, writer: int) -> int:
    """Copy from the reader's position to its end; returns the bytes copied."""
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while count := os.copy_file_range(reader, writer, _KERNEL_CHUNK):
                copied += count
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
        else:
            if copied:
                return copied  # it copied up to the end
    # What the kernel did not copy: all of it without copy_file_range, the rest
    # if it stopped with an error, or everything if it copied nothing (an empty
    # file, or a file system that answers 0 instead of an error).
    while chunk := os.read(reader, _CHUNK):
        view = memoryview(chunk)
        while view:
            count = os.write(writer, view)
            copied += count
            view = view[count:]
    return copied


class Storage:
    def __init__(self, root: Path, durable: bool = False) -> None:
        self.root = Path(os.path.realpath(root))
        self.durable = durable
        self._root = str(self.root)
        self._prefix = self._root.rstrip("/") + "/"
        # The kernel's answer is used only where it agrees with realpath's on the root.
        self._realpath = (
            _fast_realpath
            if _O_PATH and _kernel_realpath(self._root) == self._root
            else os.path.realpath
        )

    def _sync_folder(self, folder: Path | str, later: set[str] | None = None) -> None:
        """When durable: fsync `folder` now, or add it to `later` for `sync_folders`."""
        if self.durable:
            if later is None:
                _fsync_folder(folder)
            else:
                later.add(str(folder))

    def sync_folders(self, folders: set[str]) -> None:
        """fsync each folder that file actions collected (durable writes), once."""
        for folder in sorted(folders):
            try:
                _fsync_folder(folder)
            except FileNotFoundError:
                continue  # removed since: nothing in it left to keep
        folders.clear()

    def resolve(self, relative: str) -> Path:
        """The real absolute path of `relative`, symlinks followed; PathEscape if outside.

        Folders that do not exist yet resolve lexically, which is where they
        will be created.
        """
        return Path(self.real(relative))

    def real(self, relative: str) -> str:
        """`resolve`, as a string (no Path built: for the per-file work of a run)."""
        if relative.startswith("/") or ".." in relative.split("/"):
            raise PathEscape(f"'{relative}' is not a path inside the storage root")
        real = self._realpath(f"{self._prefix}{relative}" if relative else self._root)
        if real != self._root and not real.startswith(self._prefix):
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
        top = str(self.resolve(folder)) if folder else self._root
        if not os.path.isdir(top):
            return
        skip = len(top.rstrip("/")) + 1
        for current, dirs, files in os.walk(top):
            # `current` is `top` or `top/<below>`; files in it are this many levels below `top`.
            below = current[skip:]
            level = below.count("/") + 2 if below else 1
            if depth is not None and level >= depth:
                dirs[:] = []
            dirs.sort()
            # Named under `folder` as given, even when `folder` is a link.
            prefix = "/".join(part for part in (folder, below) if part)
            prefix = prefix + "/" if prefix else ""
            for name in sorted(files):
                if not is_temp_name(name):
                    yield prefix + name

    def walk_folders(self, folder: str, depth: int | None) -> Iterator[str]:
        """Paths (relative to the root) of the folders under `folder`, at most `depth` levels
        down, in order; symbolic links to folders are not listed nor descended into."""
        top = str(self.resolve(folder)) if folder else self._root
        if not os.path.isdir(top):
            return
        skip = len(top.rstrip("/")) + 1
        for current, dirs, _files in os.walk(top):
            below = current[skip:]
            level = below.count("/") + 2 if below else 1
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(current, d)))
            kept = list(dirs)
            if depth is not None and level >= depth:
                dirs[:] = []
            prefix = "/".join(part for part in (folder, below) if part)
            for name in sorted(kept):
                yield f"{prefix}/{name}" if prefix else name

    def lookup(self, relative: str, folders: dict[str, str]) -> os.stat_result | None:
        """`relative`'s stat (symbolic links followed), None if nothing is there; PathEscape
        as `resolve`. For planning many paths at once: `folders` keeps the real path
        of each folder resolved so far, so a file costs one `lstat` when its name is
        not a link (a link is resolved in full). Execution checks every path again.
        """
        if relative.startswith("/") or ".." in relative.split("/"):
            raise PathEscape(f"'{relative}' is not a path inside the storage root")
        parent, _, name = relative.rpartition("/")
        real_parent = folders.get(parent)
        if real_parent is None and name not in ("", "."):
            try:
                real_parent = folders[parent] = str(self.resolve(parent))
            except PathEscape:
                real_parent = None  # the full path may still lead back inside
        try:
            if real_parent is None or name in ("", "."):
                return os.stat(self.resolve(relative))
            info = os.lstat(f"{real_parent}/{name}")
            if stat.S_ISLNK(info.st_mode):
                return os.stat(self.resolve(relative))
            return info
        except (FileNotFoundError, NotADirectoryError):
            return None

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

    def make_folder(self, relative: str, folders: set[str] | None = None) -> bool:
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
        self._sync_folder(real.parent, folders)
        return True

    def clear_temps(self, folder: str, prefix: str) -> int:
        """Remove temp files named `.conveyor-<prefix>...` in `folder` (relative to the root):
        what interrupted attempts left there. Returns how many were removed."""
        try:
            real = self.resolve(folder) if folder else self.root
            entries = list(os.scandir(real))
        except (OSError, PathEscape):
            return 0
        start = TEMP_PREFIX + prefix
        removed = 0
        for entry in entries:
            if entry.name.startswith(start) and entry.name.endswith(TEMP_SUFFIX):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def copy(self, source: str, destination: str, tag: str, folders: set[str] | None = None) -> int:
        """Copy atomically (temp, [fsync,] rename); returns the bytes written.

        `tag` names the operation (a retry's temp file never collides with an
        earlier attempt's). `folders`: see `copy_resolved`.
        """
        written = self.copy_resolved(self.real(source), self.real(destination), tag, folders)
        if written is None:
            raise FileNotFoundError(errno.ENOENT, "No such file", source)
        return written

    def copy_resolved(
        self, src: str, dst: str, tag: str, folders: set[str] | None = None
    ) -> int | None:
        """Copy the regular file at real path `src` to real path `dst`; None if `src` is
        not a regular file (gone, a folder, ...).

        The data goes to a temp file in `dst`'s folder, in the kernel where it
        can (`copy_file_range`), and the temp file is renamed over `dst`, so a
        reader sees the old file or the whole new one. The permission bits are
        the source's. When durable, the temp file is fsynced before the rename;
        its folder is fsynced right after it, or, if `folders` is given, added
        to it for the caller to fsync (once per folder) before it records the
        outcome.
        """
        try:
            reader = os.open(src, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            info = os.fstat(reader)
            if not stat.S_ISREG(info.st_mode):
                return None
            folder = os.path.dirname(dst)
            temp = f"{folder}/{TEMP_PREFIX}{tag}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
            try:
                writer = os.open(temp, _CREATE_FLAGS, 0o600)
            except (FileNotFoundError, NotADirectoryError):
                Path(folder).mkdir(parents=True, exist_ok=True)
                writer = os.open(temp, _CREATE_FLAGS, 0o600)
            try:
                try:
                    written = _copy_data(reader, writer)
                    os.fchmod(writer, stat.S_IMODE(info.st_mode))
                    if self.durable:
                        os.fsync(writer)
                finally:
                    os.close(writer)
                os.replace(temp, dst)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
        finally:
            os.close(reader)
        self._sync_folder(folder, folders)
        return written

    def move(
        self, source: str, destination: str, tag: str, folders: set[str] | None = None
    ) -> None:
        """Rename into place; across file systems, copy atomically then remove the source."""
        src = self.entry(source)
        dst = self.resolve(destination)
        self._check_moved_link(src, dst, source, destination)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self.copy(source, destination, tag, folders)
            src.unlink()
        self._sync_folder(dst.parent, folders)
        if src.parent != dst.parent:
            self._sync_folder(src.parent, folders)

    def _check_moved_link(self, src: Path, dst: Path, source: str, destination: str) -> None:
        """A symbolic link is moved as a link: a relative target then points from the new
        folder. PathEscape if it would point outside the root from there."""
        try:
            target = os.readlink(src)
        except OSError:
            return  # not a link (or gone: the move says so)
        lands = os.path.realpath(os.path.join(dst.parent, target))
        if lands != self._root and not lands.startswith(self._prefix):
            raise PathEscape(
                f"'{source}' is a symbolic link that would point outside the storage root "
                f"from '{destination}'"
            )

    def delete(self, relative: str, folders: set[str] | None = None) -> bool:
        """Delete the file (a link, not its target); False if it was already gone."""
        entry = self.entry(relative)
        try:
            entry.unlink()
        except FileNotFoundError:
            return False
        self._sync_folder(entry.parent, folders)
        return True
