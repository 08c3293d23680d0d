"""File events: changes under an `action` automation's path create runs on exactly those files.

How changes are seen. inotify (through `watchfiles`) says *which* paths were
touched, at once and at a cost that grows with the changes, not with the
size of the tree; the database keeps a snapshot of every file under the
watched folders (path, size, mtime, inode: `watched_files`), which says
*what* changed: a path touched but identical to its snapshot is no event.
The same comparison, over whole folders, catches up on start-up with what
changed while no watcher ran, and again every `watch_rescan` seconds in case
the kernel dropped events (its queue can overflow).

Debounce. A path is handled once nothing touched it for `watch_debounce`
seconds and its mtime is at least that old, so a file being written is
handled once, after the writer stopped. A burst (many files at once) is
handled as one batch when the whole burst has been quiet for the debounce
interval; under a never-ending stream of changes, quiet paths are still
taken at least every half debounce interval, so runs stay bounded in number
and no path waits more than 1.5 intervals.

Actions, from one automation's point of view (only files under its `path`):
`create` a new file; `update` a file whose size, mtime or inode changed;
`destroy` a file that is gone (or was moved out of the path); `move` a file
that arrived by a rename within the storage root (the run gets its new
path); `copy` cannot be told from `create` on a local disk, so it fires on
new files as `create` does; `read` is not observable and never fires.

Duplicates. Each change is claimed in the database before a run is created
for it, in the same transaction (`store.triggers.claim_present` /
`claim_absent` return only the rows they changed), so two watchers on the
same storage (e.g. `conveyor serve` and `conveyor worker` on one machine)
create one run per change between them.

Loops. Files under an automation's own destination folders are not events
for that automation, so a copy into a subfolder of the watched path does not
trigger itself forever.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Connection

from conveyor.clock import Clock
from conveyor.context import AppContext
from conveyor.domain.automations import Automation, path_root
from conveyor.domain.destinations import split_relative
from conveyor.engine.storage import is_temp_name, is_utf8, shown
from conveyor.observability import components
from conveyor.store import outage
from conveyor.store import triggers as store
from conveyor.store.database import Database
from conveyor.store.triggers import FileState, covers

log = logging.getLogger("conveyor.watcher")

MAX_FILES_PER_RUN = 1000
LOG_FILES = 20  # how many paths a run's first log line lists before "and N more"
JOIN_TIMEOUT = 30.0
REFRESH_SECONDS = 1.0  # how often the set of watching automations is re-read
# Their names in /readyz: the loop that compares and creates runs, and the inotify session.
WATCHER = "file_watcher"
INOTIFY = "file_watcher_events"
# `copy` is not observable apart from `create` (see the module docstring).
_MATCHES = {
    "create": {"create", "copy"},
    "update": {"update"},
    "destroy": {"destroy"},
    "move": {"move"},
}


# -------------------------------------------------------------------- disk


def signed_inode(inode: int) -> int:
    # st_ino is unsigned 64-bit; the column is a signed BIGINT. Wrap, staying unique.
    return inode - (1 << 64) if inode >= (1 << 63) else inode


def _state(relative: str, info: os.stat_result) -> FileState:
    return FileState(relative, info.st_size, info.st_mtime_ns, signed_inode(info.st_ino))


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def reached_directly(root: Path, relative: str) -> bool:
    """Whether the folder `relative` (under the real path `root`) is reached without following
    a symbolic link. The watcher sees only such files: a link to a folder outside the
    root is never watched, and no name from there is logged (the engine's containment);
    a link inside the root is not followed either, as `walk` never follows one."""
    lexical = f"{root}/{relative}" if relative else str(root)
    return os.path.realpath(lexical) == lexical


def skip_name(path: str) -> None:
    """A name that is not valid UTF-8 is never an event (nor acted on by the engine)."""
    log.warning("file watcher: skipped %s: its name is not valid UTF-8", shown(path))


def walk(root: Path, relative: str) -> Iterable[tuple[FileState, bool]]:
    """Regular files at or under `relative`, without following symbolic links.

    Yields (state, is_temp) so callers may skip the engine's temp files. Nothing is
    yielded when `relative` is reached through a link (see `reached_directly`).
    """
    if relative and not reached_directly(root, relative.rpartition("/")[0]):
        return
    try:
        info = os.lstat(root / relative) if relative else os.lstat(root)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode):
        yield _state(relative, info), is_temp_name(relative.rpartition("/")[2])
        return
    if not stat.S_ISDIR(info.st_mode):
        return
    stack = [relative]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(root / folder if folder else root))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            path = _join(folder, entry.name)
            if not is_utf8(entry.name):
                skip_name(path)
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    yield _state(path, entry.stat(follow_symlinks=False)), is_temp_name(entry.name)
            except FileNotFoundError:
                continue


def minimal_roots(paths: Iterable[str]) -> list[str]:
    """The fewest folders that cover all `paths` ("" covers everything)."""
    roots: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count("/"), len(p), p)):
        if not any(covers(root, path) for root in roots):
            roots.append(path)
    return sorted(roots)


# ----------------------------------------------------------------- changes


@dataclass(frozen=True, slots=True)
class Change:
    action: str  # create | update | destroy | move
    path: str  # the file's path now (for destroy: where it was)
    moved_from: str | None = None


@dataclass
class Comparison:
    """What differs between the disk and the snapshot over some paths."""

    present: list[FileState] = field(default_factory=list)  # new or changed files
    absent: list[str] = field(default_factory=list)  # files that are gone
    changes: list[Change] = field(default_factory=list)


def compare(disk: dict[str, FileState], seen: dict[str, FileState]) -> Comparison:
    """Changes from `seen` (the snapshot) to `disk`, over the same set of paths.

    A file that vanished and one that appeared with the same inode, size and
    mtime are one rename: a `move`.
    """
    result = Comparison()
    gone = {path: state for path, state in seen.items() if path not in disk}
    by_identity = {(s.inode, s.size, s.mtime_ns): path for path, s in gone.items()}
    for path in sorted(disk):
        now = disk[path]
        before = seen.get(path)
        if before is None:
            result.present.append(now)
            origin = by_identity.pop((now.inode, now.size, now.mtime_ns), None)
            if origin is not None:
                gone.pop(origin)
                result.absent.append(origin)
                result.changes.append(Change("move", path, origin))
            else:
                result.changes.append(Change("create", path))
        elif before != now:
            result.present.append(now)
            result.changes.append(Change("update", path))
    for path in sorted(gone):
        result.absent.append(path)
        result.changes.append(Change("destroy", path))
    return result


Guard = tuple[list[str | None], bool, bool]


def _destination_guards(automation: Automation) -> list[Guard]:
    """The automation's own outputs as (segments, is_folder, relative); None stands for a
    segment with a token (`%Y`, `%tf`), which may become any name. A relative destination
    (`./done/`) lands below the source's folder, wherever that is."""
    guards = []
    for destination in automation.destinations:
        ups, rest = split_relative(destination)
        folder = destination.endswith("/")
        parts = [p for p in rest.split("/") if p]
        if parts:
            guards.append(([None if "%" in p else p for p in parts], folder, ups is not None))
    return guards


def _fits(segments: list[str | None], folder: bool, parts: list[str]) -> bool:
    fits = len(parts) > len(segments) if folder else len(parts) == len(segments)
    return fits and all(s is None or s == p for s, p in zip(segments, parts, strict=False))


def _produced_by(guards: list[Guard], path: str) -> bool:
    parts = path.split("/")
    for segments, folder, relative in guards:
        starts = range(len(parts)) if relative else range(1)
        if any(_fits(segments, folder, parts[start:]) for start in starts):
            return True
    return False


def events_for(automation: Automation, changes: Sequence[Change]) -> list[Change]:
    """The changes this automation acts on, as it sees them (see the module docstring)."""
    wanted = set(automation.trigger_actions)
    guards = _destination_guards(automation)
    root = path_root(automation.path)  # a glob path: the planner picks the folders it matches

    def inside(path: str) -> bool:
        return covers(root, path) and not _produced_by(guards, path)

    found = []
    for change in changes:
        action = change.action
        if action == "move" and not inside(change.path):
            # Moved out of this automation's path: for it, the file is gone.
            if change.moved_from is None or not inside(change.moved_from):
                continue
            change = Change("destroy", change.moved_from)
            action = "destroy"
        elif not inside(change.path):
            continue
        if _MATCHES[action] & wanted:
            found.append(change)
    return found


def run_log_lines(automation: Automation, changes: Sequence[Change]) -> list[str]:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    where = f"'{automation.path}'" if automation.path else "the storage root"
    listed = "; ".join(
        f"{c.action} {c.path}" + (f" (from {c.moved_from})" if c.moved_from else "")
        for c in changes[:LOG_FILES]
    )
    more = f"; and {len(changes) - LOG_FILES} more" if len(changes) > LOG_FILES else ""
    return [
        f"Started by file events under {where}: {len(changes)} "
        f"file{'s' if len(changes) != 1 else ''} ({summary}).",
        f"Files: {listed}{more}.",
    ]


# ----------------------------------------------------------------- watcher


class _Either:
    """Set when either event is: watchfiles polls `is_set()` to know when to stop."""

    def __init__(self, first: threading.Event, second: threading.Event) -> None:
        self.first = first
        self.second = second

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()


class Watcher:
    """Watches the folders of `action` automations and creates their runs."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        storage_root: Path,
        *,
        debounce: float = 1.0,
        rescan: float = 300.0,
        on_run_created: Callable[[int], None] | None = None,
        use_inotify: bool = True,
    ) -> None:
        self.db = db
        self.clock = clock
        self.root = Path(os.path.realpath(storage_root))
        self.debounce = debounce
        self.rescan = rescan
        self.on_run_created = on_run_created
        self.use_inotify = use_inotify
        self.stop_event = threading.Event()
        self.automations: list[Automation] = []
        self.roots: list[str] = []
        self.runs_created = 0
        self._pending: dict[str, float] = {}  # path -> monotonic time it was last touched
        self._last_event = 0.0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._ready = threading.Event()  # set once the start-up catch-up is done
        self._session: tuple[list[Path], threading.Event] | None = None
        self._watching = threading.Event()  # inotify is watching the current roots
        self._roots_known = threading.Event()  # the first refresh is done
        self._sessions = 0  # inotify sessions started so far

    # ------------------------------------------------------------ events in

    def note(self, paths: Iterable[str]) -> None:
        """Paths (relative to the storage root) that something touched just now."""
        moment = time.monotonic()
        with self._lock:
            for path in paths:
                self._pending[path] = moment
                self._last_event = moment

    def _relative(self, absolute: str) -> str | None:
        root = str(self.root)
        if absolute == root:
            return ""
        if absolute.startswith(root + "/"):
            return absolute[len(root) + 1 :]
        return None

    def _watch_paths(self) -> list[Path]:
        """What inotify watches: each root, or its nearest existing folder while it is missing."""
        found = set()
        for root in self.roots:
            path = self.root / root if root else self.root
            while not path.is_dir() and path != self.root:
                path = path.parent
            if path == self.root or reached_directly(self.root, str(path.relative_to(self.root))):
                found.add(path)
        return sorted(p for p in found if not any(o != p and p.is_relative_to(o) for o in found))

    def _inotify(self) -> None:
        import watchfiles

        while not self.stop_event.is_set():
            self._roots_known.wait(REFRESH_SECONDS)
            paths = self._watch_paths()
            if not paths:
                self._watching.set()  # nothing to watch is watched
                self.stop_event.wait(REFRESH_SECONDS)
                continue
            self._watching.clear()
            session = threading.Event()
            self._session = (paths, session)
            started = False
            # watchfiles yields a batch once 50 ms pass without a change (at
            # most every 200 ms under a stream), so `note` times are that close.
            for batch in watchfiles.watch(
                *paths,
                watch_filter=None,
                debounce=200,
                step=50,
                stop_event=_Either(self.stop_event, session),
                rust_timeout=200,
                # The first yield (a change or a timeout) proves the kernel
                # watches are in place: from then on nothing is missed.
                yield_on_timeout=True,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                if not started:
                    started = True
                    self._watching.set()
                    components.report(INOTIFY, self, None)
                    if self._sessions:
                        # Changes made while switching sessions (or while a failed
                        # one was restarted) were not seen: compare the roots
                        # (once quiet) instead.
                        self.note(self.roots)
                    self._sessions += 1
                relative = [self._relative(path) for _change, path in batch]
                # watchfiles stops on a name that is not UTF-8 ("Unable to decode
                # path"): the supervisor starts a new session, which compares the
                # roots; the name itself is skipped there (`walk`).
                self.note(p for p in relative if p is not None)

    # -------------------------------------------------------------- folders

    def refresh(self) -> None:
        """Re-read the action automations; start or stop watching their folders."""
        with self.db.read() as conn:
            automations = store.action_automations(conn)
            existing = store.list_watch_roots(conn)
        roots = minimal_roots(path_root(a.path) for a in automations)
        for root in roots:
            if root not in existing:
                self._add_root(root)
        for root in existing:
            if root not in roots:
                self._drop_root(root, roots)
        self.automations = automations
        self.roots = roots
        session = self._session
        if session is not None and session[0] != self._watch_paths():
            session[1].set()

    def _add_root(self, root: str) -> None:
        # The files there now are the baseline: they are no events.
        if root and not reached_directly(self.root, root):
            log.warning(
                "file watcher: not watching %s: it is reached through a symbolic link", root
            )
        files = [state for state, temp in walk(self.root, root) if not temp]

        def work(conn: Connection) -> None:
            store.add_watch_root(conn, root, files, self.clock.now())

        self.db.run_write(work)
        log.info("watching %s (%d files)", root or "the storage root", len(files))

    def _drop_root(self, root: str, remaining: list[str]) -> None:
        def work(conn: Connection) -> None:
            store.drop_watch_root(conn, root, remaining)

        self.db.run_write(work)

    # ------------------------------------------------------------- handling

    def take_ready(self) -> set[str]:
        """The paths quiet for the debounce interval that are to be handled now."""
        moment = time.monotonic()
        with self._lock:
            quiet = {p for p, t in self._pending.items() if moment - t >= self.debounce}
            if not quiet:
                return set()
            burst_over = moment - self._last_event >= self.debounce
            overdue = any(moment - self._pending[p] >= 1.5 * self.debounce for p in quiet)
            if not (burst_over or overdue):
                return set()
            for path in quiet:
                del self._pending[path]
        return quiet

    def handle(self, paths: set[str], folders: Iterable[str] = ()) -> list[int]:
        """Compare these paths (and whole `folders`) with the snapshot; create the runs."""
        roots = self.roots
        paths = {p for p in paths if any(covers(r, p) for r in roots)}
        folders = [f for f in folders if any(covers(r, f) or covers(f, r) for r in roots)]
        if not paths and not folders:
            return []
        threshold = time.time_ns() - int(self.debounce * 1e9)
        disk: dict[str, FileState] = {}
        subtrees: list[str] = list(folders)
        exact: list[str] = []
        direct: dict[str, bool] = {}  # folder -> reached without a link
        for path in sorted(paths):
            parent = path.rpartition("/")[0]
            if parent not in direct:
                direct[parent] = reached_directly(self.root, parent)
            if not direct[parent] or not is_utf8(path):
                # Not seen from here: gone, if it was known (no name from outside is listed).
                if is_utf8(path):
                    exact.append(path)
                else:
                    skip_name(path)
                continue
            full = self.root / path
            try:
                info = os.lstat(full)
            except FileNotFoundError:
                exact.append(path)  # a file or a folder that is gone
                continue
            if stat.S_ISDIR(info.st_mode):
                subtrees.append(path)
            elif stat.S_ISREG(info.st_mode) and not is_temp_name(path.rpartition("/")[2]):
                exact.append(path)
                disk[path] = _state(path, info)
        for folder in subtrees:
            for state, temp in walk(self.root, folder):
                if not temp:
                    disk[state.path] = state
        # Written less than a debounce interval ago: look again later.
        unsettled = {p: s for p, s in disk.items() if s.mtime_ns > threshold}
        for path in unsettled:
            del disk[path]
        if unsettled:
            self.note(unsettled)
        automations = self.automations

        def work(conn: Connection) -> list[int]:
            seen = store.watched_exact(conn, exact)
            for path in exact:
                if path not in seen and path not in disk and path not in unsettled:
                    seen.update(store.watched_under(conn, path))  # it was a folder
            for folder in subtrees:
                seen.update(store.watched_under(conn, folder))
            for path in unsettled:
                seen.pop(path, None)
            # A file renamed right after it was written: keep its old path for
            # later too, so the two halves are compared together (a `move`).
            young = {s.inode for s in unsettled.values()}
            for path in [p for p, s in seen.items() if s.inode in young and p not in disk]:
                seen.pop(path)
                self.note([path])
            seen = {p: s for p, s in seen.items() if any(covers(r, p) for r in roots)}
            comparison = compare(disk, seen)
            if not comparison.changes:
                return []
            now = self.clock.now()
            won_present = store.claim_present(conn, comparison.present, now)
            won_absent = store.claim_absent(conn, comparison.absent)
            claimed = [
                c
                for c in comparison.changes
                if (c.path in won_present if c.action != "destroy" else c.path in won_absent)
            ]
            created = []
            for automation in automations:
                events = events_for(automation, claimed)
                for start in range(0, len(events), MAX_FILES_PER_RUN):
                    chunk = events[start : start + MAX_FILES_PER_RUN]
                    created.append(
                        store.create_triggered_run(
                            conn,
                            automation.id,
                            now,
                            trigger="action",
                            kind="files",
                            payload={
                                "files": [
                                    {"path": c.path, "action": c.action, "from": c.moved_from}
                                    for c in chunk
                                ]
                            },
                            messages=run_log_lines(automation, chunk),
                        )
                    )
            return created

        created = self.db.run_write(work)
        self.runs_created += len(created)
        if self.on_run_created is not None:
            for run_id in created:
                self.on_run_created(run_id)
        return created

    def catch_up(self) -> list[int]:
        """Compare every watched folder with the snapshot (start-up and periodic rescans)."""
        return self.handle(set(), self.roots)

    def idle(self) -> bool:
        """Nothing waiting to be handled (for tests and benchmarks)."""
        with self._lock:
            return self._ready.is_set() and not self._pending

    # ---------------------------------------------------------------- loop

    def run(self) -> None:
        tick = min(0.25, self.debounce / 10)
        last_refresh = last_rescan = time.monotonic()
        try:
            self.refresh()
            self._roots_known.set()
            if self.use_inotify:
                # Compare only once inotify watches, so that no change falls
                # between the comparison and the first event.
                self._watching.wait(10 * REFRESH_SECONDS)
            self.catch_up()
            components.report(WATCHER, self, None)
        except Exception as exc:
            outage.log_failure(log, "file watcher start-up failed; retrying in its loop", exc)
            components.report(WATCHER, self, f"its start-up failed ({type(exc).__name__})")
        self._ready.set()
        while not self.stop_event.wait(tick):
            try:
                moment = time.monotonic()
                if moment - last_refresh >= REFRESH_SECONDS:
                    last_refresh = moment
                    self.refresh()
                if moment - last_rescan >= self.rescan:
                    # Stamped first: a rescan that fails waits for the next interval.
                    last_rescan = moment
                    self.catch_up()
                paths = self.take_ready()
                if paths:
                    self.handle(paths)
                components.report(WATCHER, self, None)
            except Exception as exc:  # keep watching; the next rescan finds anything missed
                outage.log_failure(log, "file watcher step failed", exc)
                components.report(WATCHER, self, f"its last step failed ({type(exc).__name__})")

    def start(self) -> Watcher:
        self.root.mkdir(parents=True, exist_ok=True)
        stop = self.stop_event
        if self.use_inotify:

            def events() -> None:
                components.supervise(INOTIFY, self, self._inotify, stop)

            self._threads.append(
                threading.Thread(target=events, name="watcher-inotify", daemon=True)
            )

        def loop() -> None:
            components.supervise(WATCHER, self, self.run, stop)

        self._threads.append(threading.Thread(target=loop, name="watcher", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
        components.forget(WATCHER, self)
        components.forget(INOTIFY, self)


def start_watcher(context: AppContext) -> Callable[[], None]:
    """The app-lifespan service: a file watcher over the storage root in this process.

    Only in a `conveyor serve` that runs embedded workers (the single-machine
    default): API-only processes may run on machines whose disk is not the
    storage, where a watcher would report every file as gone. There,
    `conveyor worker --watcher` on the storage's machine watches.
    """
    if context.settings.embedded_workers == 0:
        return lambda: None
    watcher = Watcher(
        context.db,
        context.clock,
        context.settings.storage_root,
        debounce=context.settings.watch_debounce,
        rescan=context.settings.watch_rescan,
        # Looked up per call: the engine installs its wakeup after services start.
        on_run_created=lambda run_id: context.on_run_created(run_id),
    )
    watcher.start()
    return watcher.stop
