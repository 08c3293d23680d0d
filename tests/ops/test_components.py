"""Background threads in /readyz: a failing scheduler makes the process unready, with the
reason, until it works again or stops; a thread that dies is started again with backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from ops_support import Serve

from conveyor.clock import SystemClock
from conveyor.engine.scheduler import Scheduler
from conveyor.observability import components
from conveyor.store.database import Database


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_scheduler_whose_passes_fail_makes_readyz_say_so(serve: Serve, tmp_path: Path) -> None:
    url = serve(ready_requires_workers=False).url
    assert httpx.get(f"{url}/readyz").status_code == 200
    # A real database without Conveyor's tables: every pass fails.
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    scheduler = Scheduler(empty, SystemClock(), 0.05).start()
    try:
        wait_for(lambda: scheduler.passes >= 1, "a pass")
        reply = httpx.get(f"{url}/readyz")
        assert reply.status_code == 503
        assert reply.json()["checks"]["scheduler"] == "its last pass failed (OperationalError)"
    finally:
        scheduler.stop()
        empty.dispose()
    assert httpx.get(f"{url}/readyz").status_code == 200  # stopped on purpose: not counted


def test_a_thread_that_dies_is_restarted_and_reported_down_meanwhile() -> None:
    stop = threading.Event()
    owner = object()
    starts: list[float] = []
    seen: list[str] = []

    def body() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 2:
            raise OSError("inotify watch limit reached")
        components.report("test_component", owner, None)
        stop.wait()

    thread = threading.Thread(
        target=components.supervise,
        args=("test_component", owner, body, stop),
        kwargs={"first_backoff": 0.05},
    )
    thread.start()
    try:

        def observed() -> bool:
            seen.append(components.states().get("test_component", ""))
            return seen[-1] == "ok"

        wait_for(observed, "the third start")
    finally:
        stop.set()
        thread.join(10)
        components.forget("test_component", owner)
    assert len(starts) == 3
    # The backoff doubles: the second wait is at least twice the first.
    assert starts[2] - starts[1] >= 2 * 0.05
    down = [state for state in seen if state.startswith("its thread failed")]
    assert down and "OSError: inotify watch limit reached" in down[0]
    assert "test_component" not in components.states()
