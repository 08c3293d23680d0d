"""A scheduler process for the two-process test: passes over simulated time, as fast as it can.

Usage: scheduler_process.py DATABASE_URL START_US END_US STEP_SECONDS GO_FILE
Waits for GO_FILE (so both processes start together), runs a pass at every
step from START to END inclusive, and prints how many runs it created.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from conveyor.clock import ManualClock
from conveyor.engine.scheduler import run_pass
from conveyor.store.database import Database


def main() -> None:
    url, start, end, step, go = sys.argv[1:]
    db = Database(url)
    clock = ManualClock(int(start))
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the go file never appeared")
        time.sleep(0.01)
    created = 0
    while clock.now() <= int(end):
        created += len(run_pass(db, clock).created)
        clock.advance(float(step))
    db.dispose()
    print(created)


if __name__ == "__main__":
    main()
