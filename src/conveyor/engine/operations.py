"""Planned operations: the record persisted by planning, and how each one is performed.

Every decision that depends on what was on disk (skip, overwrite, write) is
taken at planning time and stored with the operation, so performing it again
after a crash repeats the same decision. Performing is idempotent: a copy
rewrites the same bytes, a move whose source is gone but whose destination
holds the planned size is "already moved", a delete of a missing file is
"already deleted", an existing folder is "already exists".

Fencing: the identity of every file an operation may remove or replace is
recorded at planning, and the storage refuses to act on any other file
("changed since planning"); `fence`, run right before the first destructive
step, raises Fenced when the worker no longer holds the run's lease.
"""

from __future__ import annotations

import enum
import logging
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from conveyor.engine.storage import (
    Changed,
    Expect,
    Folders,
    Identity,
    PathEscape,
    Storage,
    identity_of,
)

# The identity planned for a file that was gone at planning: matches no file.
NO_FILE: Identity = (0, 0, -1, 0)


class Fenced(Exception):
    """The worker no longer holds the run's lease (with its safety margin): do not act."""


def _no_fence() -> None:
    return None


log = logging.getLogger("conveyor.engine")


class Kind(enum.StrEnum):
    CREATE_FOLDER = "create_folder"
    COPY = "copy"
    MOVE = "move"
    DELETE = "delete"
    # Planned only to fail with its reason: a destination two files of the run
    # share, a path outside the root, a destination that is a folder.
    REFUSE = "refuse"


class Action(enum.StrEnum):
    """What planning decided for a copy or move, from the destination it saw."""

    WRITE = "write"  # no destination file: create it
    OVERWRITE = "overwrite"  # overwrite_files: a destination of another size (or forced)
    SKIP = "skip"  # a destination of the same size, or overwrite_files false: leave both alone


class State(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    # Not performed: the run was finished early (automation gone, leases lost).
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Operation:
    """One file or folder handled for one destination; `seq` orders a run's operations."""

    seq: int
    kind: Kind
    source: str | None = None
    destination: str | None = None
    action: Action | None = None
    size: int | None = None  # the source's size when planned
    old_size: int | None = None  # the destination's size when planned, if it existed
    reason: str | None = None  # why a REFUSE operation fails
    id: int = 0
    # Identities at planning (storage.Identity) of the file a move or delete
    # removes (the entry itself) and of the destination an overwrite replaces.
    source_id: Identity | None = None
    old_id: Identity | None = None

    def detail(self, message: str | None = None) -> str:
        """The record kept with the operation: what planning decided and, once it
        is performed, the outcome's log line (the AutomationLog's `message`)."""
        data: dict[str, Any] = {
            "action": self.action.value if self.action else None,
            "size": self.size,
            "old_size": self.old_size,
            "reason": self.reason,
            "message": message,
            "source_id": self.source_id,
            "old_id": self.old_id,
        }
        return orjson.dumps({k: v for k, v in data.items() if v is not None}).decode()

    @classmethod
    def from_row(cls, row: Any) -> Operation:
        detail = orjson.loads(row.detail) if row.detail else {}
        action = detail.get("action")
        source_id, old_id = detail.get("source_id"), detail.get("old_id")
        return cls(
            id=row.id,
            seq=row.seq,
            kind=Kind(row.kind),
            source=row.source,
            destination=row.destination,
            action=Action(action) if action else None,
            size=detail.get("size"),
            old_size=detail.get("old_size"),
            reason=detail.get("reason"),
            source_id=tuple(source_id) if source_id else None,
            old_id=tuple(old_id) if old_id else None,
        )

    def planned_source(self) -> Identity | None:
        """What a move or delete may remove: the planned entry (by size only for plans
        made before identities were recorded; a delete of those: unchecked)."""
        if self.source_id is not None:
            return self.source_id
        return None if self.size is None else (-1, -1, self.size, -1)

    def planned_destination(self) -> Expect:
        """What a copy or move may replace at its destination."""
        if self.action is not Action.OVERWRITE:
            return "absent"
        if self.old_id is not None:
            return self.old_id
        return (-1, -1, -1 if self.old_size is None else self.old_size, -1)

    def describe(self) -> str:
        """How the planning log names this operation."""
        if self.kind is Kind.CREATE_FOLDER:
            return f"create folder {self.destination}"
        if self.kind is Kind.DELETE:
            return f"delete {self.source}"
        if self.kind is Kind.REFUSE:
            if self.source is None:
                return f"refuse folder {self.destination}: {self.reason}"
            if self.destination is None:  # a delete refused
                return f"refuse {self.source}: {self.reason}"
            return f"refuse {self.source} -> {self.destination}: {self.reason}"
        verb = self.kind.value
        if self.action is Action.SKIP:
            return f"skip {verb} {self.source} -> {self.destination} (same size exists)"
        if self.action is Action.OVERWRITE:
            return f"{verb} {self.source} -> {self.destination} (overwrite)"
        return f"{verb} {self.source} -> {self.destination}"


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    message: str

    @property
    def succeeded(self) -> bool:
        return self.state in (State.DONE, State.SKIPPED)


def _bytes(size: int | None) -> str:
    return "1 byte" if size == 1 else f"{size} bytes"


def perform(
    op: Operation,
    storage: Storage,
    tag: str,
    folders: set[str] | None = None,
    fence: Callable[[], None] = _no_fence,
    places: Folders | None = None,
) -> Outcome:
    """Do the operation on the storage and say what happened; never raises for file errors
    (Fenced passes through: the worker must stop, nothing was done).

    `tag` is unique to the operation (run and seq), for naming its temp files.
    `folders`: with durable writes, the folders to fsync are added to it for the
    caller to fsync before it records the outcome (None: fsynced right away).
    `places`: folders already resolved for the caller's batch (`Storage.folders`),
    which a copy to a new file uses to reach its source and destination.
    """
    try:
        return _perform(op, storage, tag, folders, fence, places)
    except PathEscape as exc:
        return Outcome(State.FAILED, f"Refused to {op.describe()}: {exc}.")
    except Changed as exc:
        name = op.source
        if op.destination is not None and str(exc) == storage.real(op.destination):
            name = op.destination
        return Outcome(State.FAILED, f"Refused to {op.describe()}: {name} changed since planning.")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return Outcome(State.FAILED, f"Could not {op.describe()}: {reason}.")
    except Fenced:
        raise
    except Exception as exc:  # not a file error: still this operation's failure, with why
        log.exception("operation %s failed unexpectedly", tag)
        text = str(exc).replace("\n", " ")[:300]
        return Outcome(State.FAILED, f"Could not {op.describe()}: {type(exc).__name__}: {text}.")


def _perform(
    op: Operation,
    storage: Storage,
    tag: str,
    folders: set[str] | None,
    fence: Callable[[], None],
    places: Folders | None,
) -> Outcome:
    if op.kind is Kind.REFUSE:
        what = " -> ".join(path for path in (op.source, op.destination) if path is not None)
        return Outcome(State.FAILED, f"Refused {what}: {op.reason}.")
    if op.kind is Kind.CREATE_FOLDER:
        assert op.destination is not None
        real = storage.resolve(op.destination)
        if real.exists() and not real.is_dir():
            return Outcome(
                State.FAILED,
                f"Could not create folder {op.destination}: a file exists at that path.",
            )
        if storage.make_folder(op.destination, folders):
            return Outcome(State.DONE, f"Created folder {op.destination}.")
        return Outcome(State.DONE, f"Folder {op.destination} already exists.")
    if op.kind is Kind.DELETE:
        assert op.source is not None
        if storage.is_folder(op.source):
            return Outcome(State.FAILED, f"Could not delete {op.source}: it is a folder.")
        planned = op.planned_source()
        if storage.delete(op.source, folders, planned=planned, fence=fence, tag=tag):
            return Outcome(State.DONE, f"Deleted {op.source}.")
        return Outcome(State.DONE, f"Already deleted: {op.source} was gone.")
    assert op.source is not None and op.destination is not None
    if op.kind is Kind.COPY:
        return _copy(op, storage, tag, folders, fence, places)
    return _move(op, storage, tag, folders, fence)


def _why_skipped(op: Operation) -> str:
    if op.size == op.old_size:
        return f"{op.destination} already exists with the same size ({_bytes(op.old_size)})"
    return f"{op.destination} already exists ({_bytes(op.old_size)}) and overwrite_files is false"


def _copy(
    op: Operation,
    storage: Storage,
    tag: str,
    folders: set[str] | None,
    fence: Callable[[], None],
    places: Folders | None = None,
) -> Outcome:
    src, dst = op.source, op.destination
    assert src is not None and dst is not None
    if op.action is Action.WRITE and places is not None:
        written = storage.copy_new(places, src, dst, folders, fence)
        if written is not None:
            return Outcome(State.DONE, f"Copied {src} to {dst} ({_bytes(written)}).")
    real_dst = storage.real(dst)  # refuse an escaping destination even when skipping
    gone = Outcome(State.FAILED, f"Could not copy {src} to {dst}: {src} no longer exists.")
    if op.action is Action.SKIP:
        if storage.size(src) is None:
            return gone
        return Outcome(State.SKIPPED, f"Skipped copying {src}: {_why_skipped(op)}.")
    written = storage.copy_resolved(
        storage.real(src), real_dst, tag, folders, old=op.planned_destination(), fence=fence
    )
    if written is None:
        return gone
    if op.action is Action.OVERWRITE:
        return Outcome(
            State.DONE,
            f"Copied {src} to {dst} ({_bytes(written)}), overwriting the existing file "
            f"({_bytes(op.old_size)}).",
        )
    return Outcome(State.DONE, f"Copied {src} to {dst} ({_bytes(written)}).")


def _move(
    op: Operation, storage: Storage, tag: str, folders: set[str] | None, fence: Callable[[], None]
) -> Outcome:
    src, dst = op.source, op.destination
    assert src is not None and dst is not None
    storage.resolve(dst)
    if op.action is Action.SKIP:
        return Outcome(
            State.SKIPPED, f"Skipped moving {src}: {_why_skipped(op)}; {src} was left in place."
        )
    present = storage.size(src)
    try:
        moved = storage.move(
            src,
            dst,
            tag,
            folders,
            planned=op.planned_source(),
            old=op.planned_destination(),
            fence=fence,
        )
    except FileNotFoundError:
        return Outcome(State.FAILED, f"Could not move {src} to {dst}: {src} no longer exists.")
    if not moved:
        # Redone after a crash between the file action and its commit: the planned
        # file is where the plan sends it.
        return Outcome(
            State.DONE,
            f"Already moved: {src} is gone and {dst} has the planned size ({_bytes(op.size)}).",
        )
    if op.action is Action.OVERWRITE:
        return Outcome(
            State.DONE,
            f"Moved {src} to {dst} ({_bytes(present)}), overwriting the existing file "
            f"({_bytes(op.old_size)}).",
        )
    return Outcome(State.DONE, f"Moved {src} to {dst} ({_bytes(present)}).")


def observe(op: Operation, storage: Storage) -> Outcome | None:
    """What the disk says about an operation whose outcome was never recorded (its run is
    being ended): its result if that is found there, None if it was not performed.

    A copy's or move's destination holding a file of the planned size (not the one
    an overwrite was to replace), a move's or delete's source gone, a folder that
    exists: the action happened, whoever's attempt it was.
    """
    found = " (found on disk when the run was ended)"
    src, dst = op.source, op.destination
    try:
        if op.kind is Kind.CREATE_FOLDER and dst is not None and storage.is_folder(dst):
            return Outcome(State.DONE, f"Folder {dst} exists{found}.")
        if op.kind is Kind.DELETE and src is not None and storage.entry_identity(src) is None:
            return Outcome(State.DONE, f"Already deleted: {src} was gone{found}.")
        if op.kind not in (Kind.COPY, Kind.MOVE) or op.action is Action.SKIP:
            return None
        assert src is not None and dst is not None
        there = storage.lookup(dst, {})
        if there is None or not stat.S_ISREG(there.st_mode) or there.st_size != op.size:
            return None
        if op.old_id is not None and identity_of(there) == op.old_id:
            return None  # still the file the overwrite was to replace
        if op.kind is Kind.COPY:
            return Outcome(State.DONE, f"Copied {src} to {dst} ({_bytes(op.size)}){found}.")
        if storage.entry_identity(src) is None:
            return Outcome(State.DONE, f"Moved {src} to {dst} ({_bytes(op.size)}){found}.")
    except (OSError, PathEscape):
        return None
    return None
