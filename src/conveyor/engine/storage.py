"""The storage root on disk: safe path resolution, listing, and crash-safe file actions.

Every path an automation names is relative to the root. `resolve` follows
symbolic links and refuses anything that lands outside the root, so no
automation can read, write or delete a file elsewhere. Writes go to a temp
file in the destination folder (unnamed, O_TMPFILE, where the kernel can) and
then get their name: a reader sees the old file or the whole new one, never
half a file, and a killed worker leaves nothing half-written. With
`durable=True` (CONVEYOR_DURABLE_WRITES) each file and its folder are also
fsynced before the outcome is recorded, so a finished operation survives a
power loss too, at several times the cost per file.

Fencing (docs/engine.md, "Fencing"): a file action that removes or replaces a
file acts only on the file planning saw. The planned file's identity (device,
inode, size, modification time) is compared *after* it was renamed aside,
so the comparison is about the very file that would be destroyed; a file that
is not the planned one is put back and the action refused (`Changed`). A file
is put where nothing was planned with `link`, which never replaces anything.
A `fence` callable, run just before the first destructive step, lets the
caller refuse to act once its lease is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

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


# A file displaced to be removed or replaced waits under `.conveyor-<tag>-<random>.aside`
# until it is known to be the planned file; such a name is never removed unchecked.
ASIDE_SUFFIX = ".aside"
# Errors of link() that mean "no hard links here": the action falls back to rename.
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}

# (device, inode, size, modification time in ns) of a file as planning saw it; -1
# fields are not compared (plans made before identities were recorded: size only).
Identity = tuple[int, int, int, int]
# What must be at a path for an action to replace it: the planned file, nothing
# ("absent"), or anything ("any": callers outside the engine's plans).
Expect = Identity | Literal["absent", "any"]


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


class Changed(Exception):
    """The file at a path is not the one planned; nothing was done to it. The message
    names the path as the caller gave it (set by the caller)."""


def _no_fence() -> None:
    return None


def identity_of(info: os.stat_result) -> Identity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def matches(info: os.stat_result, expected: Identity) -> bool:
    return all(
        want < 0 or want == got for want, got in zip(expected, identity_of(info), strict=True)
    )


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and (
        name.endswith(TEMP_SUFFIX) or name.endswith(ASIDE_SUFFIX)
    )


def _discard(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def same_content(first: str, second: str) -> bool:
    """Whether two regular files hold the same bytes (read in chunks; no link followed,
    except `first` naming an unnamed temp file by its descriptor in /proc)."""
    follow = 0 if first.startswith(_PROC_FD) else os.O_NOFOLLOW
    try:
        one = os.open(first, _READ_FLAGS | follow)
    except OSError:
        return False
    try:
        try:
            two = os.open(second, _READ_FLAGS | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            a, b = os.fstat(one), os.fstat(two)
            if not (stat.S_ISREG(a.st_mode) and stat.S_ISREG(b.st_mode)):
                return False
            if a.st_size != b.st_size:
                return False
            while True:
                chunk = os.read(one, _CHUNK)
                if chunk != os.read(two, len(chunk) or 1):
                    return False
                if not chunk:
                    return True
        finally:
            os.close(two)
    finally:
        os.close(one)


def place(source: str, target: str) -> bool:
    """Give the file at `source` the name `target` too, unless something is there; False
    then. A hard link never replaces anything; where the file system has none, a
    rename after checking that `target` is free (the only check-then-act step)."""
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    if os.path.lexists(target):
        return False
    os.rename(source, target)
    return True


def _fsync_folder(folder: Path | str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_O_PATH = getattr(os, "O_PATH", 0)
_DELETED = " (deleted)"
# Unnamed temp files (Linux O_TMPFILE): created in the destination's folder without a
# name, given one by linkat() through /proc/self/fd/N; see `write_temp`.
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_PROC_FD = "/proc/self/fd/"
# O_TMPFILE errors that mean "not on this file system / kernel": named temp files then.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL, errno.ENOSYS}
_ANY_DIR_FD: int | None = None


def _any_dir_fd() -> int:
    """A directory descriptor to pass to os.link, only so that Python calls linkat()
    (which can follow /proc/self/fd/N to the unnamed file) instead of link(); the
    paths given are absolute, so the kernel ignores it. One per process."""
    global _ANY_DIR_FD
    if _ANY_DIR_FD is None:
        _ANY_DIR_FD = os.open("/", _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return _ANY_DIR_FD


def _umask() -> int | None:
    """The process's umask, read without changing it (Linux /proc); None if unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


_UMASK = _umask()


class _Temp:
    """A copy's data, written, waiting for its name: an unnamed file (its descriptor kept
    open until then) or a named temp file `.conveyor-<tag>-<random>.tmp`."""

    __slots__ = ("fd", "path", "unnamed", "written")

    def __init__(self, path: str, fd: int, unnamed: bool) -> None:
        self.path = path  # the temp file's name, or /proc/self/fd/N for an unnamed one
        self.fd: int | None = fd  # open while writing; an unnamed file's until discarded
        self.unnamed = unnamed
        self.written = 0

    def place(self, target: str) -> bool:
        """Give the data the name `target` unless something is there (False then)."""
        if not self.unnamed:
            return place(self.path, target)
        try:
            os.link(self.path, target, src_dir_fd=_any_dir_fd(), follow_symlinks=True)
        except FileExistsError:
            return False
        return True

    def replace(self, target: str) -> None:
        """Give the data the name `target`, replacing whatever is there (named temp only)."""
        assert not self.unnamed
        os.replace(self.path, target)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        """Remove the temp file (an unnamed one vanishes when closed)."""
        self.close()
        if not self.unnamed:
            _discard(self.path)


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


def _copy_data(reader: int, writer: int, size: int = 0) -> int:
    """Copy from the reader's position to its end; returns the bytes copied. `size`: the
    reader's size when opened (0: unknown); the kernel copy stops once it has copied
    that many bytes, without the call that would find the end (one call for most files)."""
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while count := os.copy_file_range(reader, writer, _KERNEL_CHUNK):
                copied += count
                if 0 < size <= copied:
                    break
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


class Folders:
    """Folders resolved once for a batch of file actions (`Storage.folders`): for each, an
    `O_PATH` descriptor and its real path, checked inside the root when opened.

    A file in such a folder is then reached by its name relative to the descriptor
    (one system call, no path walked again), and the descriptor keeps naming the
    folder that was checked whatever happens to its path meanwhile, so nothing done
    through it can land outside the root. `close` (at the end of each batch) closes
    them; the next batch resolves its folders again.
    """

    __slots__ = ("_open", "_storage")

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._open: dict[str, tuple[int, str]] = {}

    def get(self, relative: str) -> tuple[int, str] | None:
        """The folder's descriptor and real path; None if it does not exist, is not a
        folder or is not inside the root (the caller then takes the full path)."""
        found = self._open.get(relative)
        if found is None:
            found = self._storage._open_folder(relative)
            if found is not None:
                self._open[relative] = found
        return found

    def forget(self, relative: str) -> None:
        found = self._open.pop(relative, None)
        if found is not None:
            os.close(found[0])

    def close(self) -> None:
        for fd, _real in self._open.values():
            os.close(fd)
        self._open.clear()


class Storage:
    def __init__(self, root: Path, durable: bool = False) -> None:
        self.root = Path(os.path.realpath(root))
        self.durable = durable
        # Unnamed temp files where the kernel has them (see write_temp).
        self._tmpfile = bool(_O_TMPFILE) and os.path.isdir(_PROC_FD)
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

    def folders(self) -> Folders:
        """An empty cache of resolved folders, for one batch of file actions."""
        return Folders(self)

    def _open_folder(self, relative: str) -> tuple[int, str] | None:
        """An `O_PATH` descriptor of the folder `relative` (symbolic links followed by the
        kernel) and its real path, if it is a folder inside the root; else None."""
        if self._realpath is not _fast_realpath or not self._tmpfile:
            return None
        if relative.startswith("/") or ".." in relative.split("/"):
            return None
        path = f"{self._prefix}{relative}" if relative else self._root
        try:
            fd = os.open(path, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            real = os.readlink(f"{_PROC_FD}{fd}")
        except OSError:
            real = ""
        if real == self._root or (real.startswith(self._prefix) and not real.endswith(_DELETED)):
            return fd, real
        os.close(fd)
        return None

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

    def lookup(
        self, relative: str, folders: dict[str, str], *, follow: bool = True
    ) -> os.stat_result | None:
        """`relative`'s stat (symbolic links followed), None if nothing is there; PathEscape
        as `resolve`. For planning many paths at once: `folders` keeps the real path
        of each folder resolved so far, so a file costs one `lstat` when its name is
        not a link (a link is resolved in full). Execution checks every path again.
        `follow=False`: the entry itself (a link's own stat, after checking where it
        points), as a move or delete acts on it.
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
                target = os.stat(self.resolve(relative))
                return target if follow else info
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

    def entry_identity(self, relative: str) -> Identity | None:
        """The identity of the entry at `relative` itself (a link is not followed); None if
        there is none. PathEscape as `resolve`."""
        try:
            return identity_of(os.lstat(self.entry(relative)))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def displace(self, real: str, expected: Identity, tag: str) -> str | None:
        """Rename the entry at real path `real` aside (same folder) and return the aside
        name, if it is the `expected` file: the caller then removes the aside name (or
        puts it back). None if nothing is at `real`. If something else is there, it is
        put back and Changed is raised: nothing was lost or replaced.

        The identity is read from the renamed entry, so it is the file that would be
        destroyed, whatever happened at `real` meanwhile.
        """
        folder = os.path.dirname(real)
        aside = f"{folder}/{TEMP_PREFIX}{tag}-{secrets.token_hex(4)}{ASIDE_SUFFIX}"
        try:
            os.rename(real, aside)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if matches(os.lstat(aside), expected):
            return aside
        self.put_back(aside, real)
        raise Changed(real)

    def put_back(self, aside: str, real: str) -> None:
        """Return a displaced entry to its name; if something took the name meanwhile, keep
        it visible next to it as `<name>.conveyor-kept-<random>` rather than lose either."""
        try:
            if place(aside, real):
                _discard(aside)
                return
        except OSError as exc:  # a folder cannot be linked
            if exc.errno not in (errno.EPERM, errno.EISDIR):
                raise
            if not os.path.lexists(real):
                os.rename(aside, real)
                return
        os.rename(aside, f"{real}.conveyor-kept-{secrets.token_hex(4)}")

    def write_temp(self, src: str, dst: str, tag: str, *, named: bool = False) -> _Temp | None:
        """Copy the regular file at real path `src` into a new temp file in `dst`'s folder
        (in the kernel where it can, `copy_file_range`), with the source's permission
        bits, fsynced when durable. None if `src` is not a regular file (gone, a
        folder, ...).

        The temp file is unnamed where the kernel can (O_TMPFILE): it appears only
        when `_Temp.place` links it to its name and vanishes if the process dies
        first, and creating it touches no folder entry (a named temp file costs a
        create, a link and an unlink). `named` (or a file system without O_TMPFILE):
        `.conveyor-<tag>-<random>.tmp`, as needed for a rename over an existing file.
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
            mode = stat.S_IMODE(info.st_mode)
            temp = self._create_temp(folder, tag, mode, named)
            if temp is None:
                Path(folder).mkdir(parents=True, exist_ok=True)
                temp = self._create_temp(folder, tag, mode, named)
                assert temp is not None
            assert temp.fd is not None
            try:
                temp.written = _copy_data(reader, temp.fd, info.st_size)
                # The mode given to open() lost the umask's bits: set them exactly.
                if not temp.unnamed or _UMASK is None or mode & (_UMASK | 0o7000):
                    os.fchmod(temp.fd, mode)
                if self.durable:
                    os.fsync(temp.fd)
                if not temp.unnamed:
                    temp.close()
            except BaseException:
                temp.discard()
                raise
        finally:
            os.close(reader)
        return temp

    def _create_temp(self, folder: str, tag: str, mode: int, named: bool) -> _Temp | None:
        """A new empty temp file in `folder`; None if the folder does not exist."""
        try:
            if self._tmpfile and not named:
                try:
                    fd = os.open(folder, os.O_WRONLY | _O_TMPFILE | os.O_CLOEXEC, mode)
                    return _Temp(f"{_PROC_FD}{fd}", fd, unnamed=True)
                except OSError as exc:
                    if exc.errno not in _NO_TMPFILE:
                        raise
                    self._tmpfile = False  # not here: named temp files from now on
            temp = f"{folder}/{TEMP_PREFIX}{tag}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
            return _Temp(temp, os.open(temp, _CREATE_FLAGS, 0o600), unnamed=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def copy_new(
        self,
        places: Folders,
        source: str,
        destination: str,
        synced: set[str] | None = None,
        fence: Callable[[], None] = _no_fence,
    ) -> int | None:
        """Copy `source` to `destination` (relative paths), where nothing was planned, with
        the fewest system calls: both folders from `places`, the source opened by its
        name (not followed if it is a link), an unnamed temp file in the destination's
        folder linked to its name. Returns the bytes written, or None when this way does
        not apply and nothing was done: a source that is a link, gone or not a regular
        file, a folder that is missing or outside the root, anything at the
        destination's name, a file system without unnamed temp files. The caller then
        takes the full path (`copy_resolved`), which says what happened, with the same
        result as this. `synced`: as `folders` of `copy_resolved`.
        """
        src_folder, _, src_name = source.rpartition("/")
        dst_folder, _, dst_name = destination.rpartition("/")
        src_dir = places.get(src_folder)
        dst_dir = places.get(dst_folder)
        if src_dir is None or dst_dir is None or not self._tmpfile:
            return None
        try:
            reader = os.open(src_name, _READ_FLAGS | os.O_NOFOLLOW, dir_fd=src_dir[0])
        except OSError:
            return None  # a link (ELOOP), gone, unreadable: the full path says which
        try:
            info = os.fstat(reader)
            if not stat.S_ISREG(info.st_mode):
                return None
            mode = stat.S_IMODE(info.st_mode)
            try:
                writer = os.open(
                    ".", os.O_WRONLY | _O_TMPFILE | os.O_CLOEXEC, mode, dir_fd=dst_dir[0]
                )
            except OSError:
                places.forget(dst_folder)  # removed since it was resolved, say
                return None
            try:
                written = _copy_data(reader, writer, info.st_size)
                if _UMASK is None or mode & (_UMASK | 0o7000):
                    os.fchmod(writer, mode)
                if self.durable:
                    os.fsync(writer)
                fence()
                try:
                    os.link(
                        f"{_PROC_FD}{writer}", dst_name, dst_dir_fd=dst_dir[0], follow_symlinks=True
                    )
                except OSError:
                    places.forget(dst_folder)
                    return None  # something is there (an earlier attempt's file?), ...
            finally:
                os.close(writer)
        finally:
            os.close(reader)
        self._sync_folder(dst_dir[1], synced)
        return written

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
        self,
        src: str,
        dst: str,
        tag: str,
        folders: set[str] | None = None,
        *,
        old: Expect = "any",
        fence: Callable[[], None] = _no_fence,
    ) -> int | None:
        """Copy the regular file at real path `src` to real path `dst`; None if `src` is
        not a regular file (gone, a folder, ...).

        The data goes to a temp file in `dst`'s folder (`write_temp`), which then
        takes `dst`'s name, so a reader sees the old file or the whole new one.
        `old` says what may be replaced: "absent" (the temp file is linked into
        place, which fails if anything is there now), the planned file's identity
        (it is displaced, checked and only then removed), or "any" (a plain rename
        over whatever is there). If `dst` is not what `old` says but already holds
        the new bytes (an earlier attempt that was never recorded), that is the
        result; otherwise Changed. `fence` runs after the data is written, before
        anything at `dst` is touched. When durable, its folder is fsynced after the
        rename, or, if `folders` is given, added to it for the caller to fsync
        (once per folder) before it records the outcome.
        """
        temp = self.write_temp(src, dst, tag, named=old == "any")
        if temp is None:
            return None
        written = temp.written
        folder = os.path.dirname(dst)
        try:
            fence()
            if old == "any":
                temp.replace(dst)
            else:
                aside = None if old == "absent" else self.displace(dst, old, tag)
                try:
                    if not temp.place(dst) and not same_content(temp.path, dst):
                        raise Changed(dst)
                finally:
                    if aside is not None:
                        _discard(aside)  # the planned file: replaced, as planned
        except Changed:
            if old != "any" and same_content(temp.path, dst):
                written = os.path.getsize(dst)  # an earlier attempt put it there
            else:
                raise
        finally:
            temp.discard()
        self._sync_folder(folder, folders)
        return written

    def move(
        self,
        source: str,
        destination: str,
        tag: str,
        folders: set[str] | None = None,
        *,
        planned: Identity | None = None,
        old: Expect = "any",
        fence: Callable[[], None] = _no_fence,
    ) -> bool:
        """Move the entry `source` to `destination`; False if an earlier attempt already
        did (the source is gone, the destination is the planned file).

        With `planned` (the source's identity at planning), the source must still be
        that file (else Changed) and the destination must be what `old` says (see
        `copy_resolved`). The file is linked to its new name (never replacing
        anything), then its old name is displaced, checked and removed; across file
        systems its data is copied first. FileNotFoundError if the source is gone and
        the destination is not the planned file.
        """
        src = str(self.entry(source))
        dst = str(self.resolve(destination))
        self._check_moved_link(Path(src), Path(dst), source, destination)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if planned is None:
            fence()
            try:
                os.replace(src, dst)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self.copy(source, destination, tag, folders)
                os.unlink(src)
            self._sync_moved(src, dst, folders)
            return True
        try:
            now = os.lstat(src)
        except (FileNotFoundError, NotADirectoryError):
            now = None
        try:
            there: os.stat_result | None = os.lstat(dst)
        except (FileNotFoundError, NotADirectoryError):
            there = None
        if now is None:
            if there is not None and matches(there, planned):
                return False
            raise FileNotFoundError(errno.ENOENT, "No such file", source)
        if not matches(now, planned):
            raise Changed(src)
        fence()
        if there is None or not matches(there, planned):  # not yet linked by an earlier try
            aside = None
            if isinstance(old, tuple) and there is not None:
                aside = self.displace(dst, old, tag)
            try:
                # Checked again after the fence (the worker may have stalled there).
                if not matches(os.lstat(src), planned):
                    raise Changed(src)
                try:
                    linked = place(src, dst)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    linked = self._copy_across(src, dst, tag, folders) is not None
                else:
                    if linked and not matches(info := os.lstat(dst), planned):
                        # The source was replaced between the check and the link: drop
                        # the second name given to that file (it keeps its own).
                        if info.st_nlink > 1:
                            os.unlink(dst)
                        raise Changed(src)
                if not linked and not same_content(src, dst):
                    raise Changed(dst)
            finally:
                if aside is not None:
                    _discard(aside)
        gone = self.displace(src, planned, tag)
        if gone is not None:
            _discard(gone)
        self._sync_moved(src, dst, folders)
        return True

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

    def _copy_across(self, src: str, dst: str, tag: str, folders: set[str] | None) -> int | None:
        """A move's data to another file system: copied, linked into place if free."""
        return self.copy_resolved(src, dst, tag, folders, old="absent")

    def _sync_moved(self, src: str, dst: str, folders: set[str] | None) -> None:
        self._sync_folder(os.path.dirname(dst), folders)
        if os.path.dirname(src) != os.path.dirname(dst):
            self._sync_folder(os.path.dirname(src), folders)

    def delete(
        self,
        relative: str,
        folders: set[str] | None = None,
        *,
        planned: Identity | None = None,
        fence: Callable[[], None] = _no_fence,
        tag: str = "delete",
    ) -> bool:
        """Delete the file (a link, not its target); False if it was already gone.

        With `planned`, the entry is displaced, checked and only then removed: a file
        that is not the planned one is put back and Changed raised.
        """
        entry = str(self.entry(relative))
        fence()
        if planned is None:
            try:
                os.unlink(entry)
            except FileNotFoundError:
                return False
        else:
            aside = self.displace(entry, planned, tag)
            if aside is None:
                return False
            os.unlink(aside)
        self._sync_folder(os.path.dirname(entry), folders)
        return True
