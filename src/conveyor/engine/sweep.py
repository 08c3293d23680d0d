"""The temp-file sweep: remove what interrupted copies left behind for runs that will not resume.

Where the kernel has O_TMPFILE a copy's temp file has no name and vanishes with
a killed worker. Elsewhere (and in versions before) a copy writes
`.conveyor-r<run>-o<seq>-<random>.tmp` next to its destination and renames it
into place; a worker killed in between leaves the temp file.
A run that resumes clears its own (executor), but a run that ended without
its worker (aborted after lease losses, finished by another worker while
this one was stopped) would keep them forever. Each worker pool therefore
walks the storage root when it starts and every `temp_sweep_interval`
seconds, and removes the temp files of runs that are finished or gone, never
those of a run still queued or in progress.

A displaced file waiting to be removed (`.conveyor-...aside`, storage.displace)
is never removed here: only a worker that checked it is the planned file may.
One left behind (a worker died in the microseconds between the rename and
the removal) is logged so an operator can look at it.
"""

from __future__ import annotations

import logging
import os
import re
import threading

from conveyor.engine.context import EngineContext
from conveyor.engine.storage import ASIDE_SUFFIX
from conveyor.store import engine as engine_store

log = logging.getLogger("conveyor.engine")
_TEMP = re.compile(r"^\.conveyor-r(\d+)-o\d+-[0-9a-f]+\.(tmp|aside)$")


def sweep_temps(engine: EngineContext) -> int:
    """One sweep of the storage root; returns how many temp files were removed."""
    found: dict[int, list[str]] = {}
    for current, _dirs, files in os.walk(engine.storage.root):
        for name in files:
            match = _TEMP.match(name)
            if match is not None:
                found.setdefault(int(match.group(1)), []).append(os.path.join(current, name))
    if not found:
        return 0
    with engine.db.read() as conn:
        alive = engine_store.unfinished_runs(conn, sorted(found))
    removed = 0
    for run_id, paths in found.items():
        if run_id in alive:
            continue
        for path in paths:
            if path.endswith(ASIDE_SUFFIX):
                log.warning(
                    "a displaced file was left behind by automation run %s: %s", run_id, path
                )
                continue
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
    if removed:
        log.info("temp sweep: removed %s temp files of finished runs", removed)
    return removed


class Sweeper:
    """A thread that sweeps at start and then every `interval` seconds until stopped."""

    def __init__(self, engine: EngineContext, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="temp-sweep", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                sweep_temps(self.engine)
            except Exception:  # the database may be down: try again next time
                log.exception("temp sweep failed; retrying after %.0f s", self.interval)
            if self._stop.wait(self.interval):
                return
