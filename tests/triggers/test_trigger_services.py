"""Triggers as they run for users: inside the app's services (as `conveyor serve`) and in
`conveyor worker`, with the real engine finishing the runs they create.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
from triggers_world import World

from conveyor.app import create_app
from conveyor.clock import ManualClock, SystemClock, to_rfc3339
from conveyor.config import Settings
from conveyor.engine.service import embedded_services
from conveyor.store import runs as run_store
from conveyor.store import triggers as store
from conveyor.store.database import Database
from conveyor.testing.server import ServerThread

DAY = 86_400.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def finished(world: World, automation_id: int) -> bool:
    found = world.runs(automation_id)
    return bool(found) and all(r.run_stage == "finished" for r in found)


def yesterday_world(db: Database, root: Path) -> World:
    """A world whose edits happened two days ago: their slots since then were missed."""
    clock = ManualClock(SystemClock().now() - int(2 * DAY * 1_000_000))
    return World(db, clock, root)


def watching(db: Database, folder: str) -> bool:
    """Has a watcher taken `folder` in? A file written from then on is an event: if inotify
    is not watching yet, the watcher's first comparison finds it."""
    with db.read() as conn:
        return folder in store.list_watch_roots(conn)


def test_serve_runs_scheduler_watcher_and_webhooks_with_the_engine(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    (root / "in").mkdir(parents=True)
    world = yesterday_world(db, root)
    daily = world.automation(
        trigger="daily",
        interval="day",
        schedule_times_of_day=["00:00"],
        destinations=["made/%Y-%m-%d"],
    )
    watched = world.automation(
        automation="copy_file",
        path="in",
        source="*.csv",
        destinations=["out/"],
        trigger="action",
        trigger_actions=["create"],
    )
    hook = world.automation(trigger="webhook", destinations=["hooked"])
    app_settings = replace(
        settings,
        storage_root=root,
        embedded_workers=1,
        scheduler_interval=0.2,
        watch_debounce=0.3,
        poll_interval=0.2,
    )
    with ServerThread(create_app(app_settings, db, services=embedded_services())) as live:
        # Down since two days ago: only the most recent midnight runs, once, and finishes.
        wait_for(lambda: finished(world, daily), "the missed slot's run to finish")
        (run,) = world.runs(daily)
        slot_day = to_rfc3339(run.runtime)[:10]
        assert to_rfc3339(run.runtime) == f"{slot_day}T00:00:00Z"
        assert (root / "made" / slot_day).is_dir()

        # A new csv file under `in` is copied by its own run.
        wait_for(lambda: watching(db, "in"), "the watcher to watch 'in'")
        (root / "in" / "report.csv").write_text("a,b\n1,2\n")
        wait_for(lambda: finished(world, watched), "the file event's run to finish")
        assert (root / "out" / "report.csv").read_text() == "a,b\n1,2\n"

        with db.read() as conn:
            secret = conn.exec_driver_sql(
                "SELECT webhook_secret FROM automations WHERE id = ?"
                if db.is_sqlite
                else "SELECT webhook_secret FROM automations WHERE id = %s",
                (hook,),
            ).scalar_one()
        response = httpx.post(f"{live.url}/api/rest/v1/webhooks/{secret}", json={"go": 1})
        assert response.status_code == 201
        wait_for(lambda: finished(world, hook), "the webhook's run to finish")
        assert (root / "hooked").is_dir()
        with db.read() as conn:
            found = run_store.get_run(conn, response.json()["id"])
        assert found is not None and found.status.value == "success"
    assert len(world.runs(daily)) == 1


def test_conveyor_worker_runs_the_scheduler_and_with_a_flag_the_watcher(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    (root / "in").mkdir(parents=True)
    world = yesterday_world(db, root)
    daily = world.automation(
        trigger="daily", interval="day", schedule_times_of_day=["06:00"], destinations=["daily"]
    )
    watched = world.automation(
        automation="copy_file",
        path="in",
        source="*",
        trigger="action",
        destinations=["out/"],
        trigger_actions=["create"],
    )
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_STORAGE_ROOT": str(root),
        "CONVEYOR_SCHEDULER_INTERVAL": "0.2",
        "CONVEYOR_WATCH_DEBOUNCE": "0.3",
        "CONVEYOR_POLL_INTERVAL": "0.2",
    }

    def worker(*flags: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli.main", "worker", *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    quiet = worker("--no-scheduler")
    try:
        time.sleep(3)
        assert world.runs() == []  # no scheduler, no watcher: nothing creates runs
    finally:
        quiet.send_signal(signal.SIGTERM)
        quiet.communicate(timeout=60)
    busy = worker("--watcher")
    try:
        wait_for(lambda: finished(world, daily), "the scheduled run to finish")
        wait_for(lambda: watching(db, "in"), "the worker's watcher to watch 'in'")
        (root / "in" / "x.txt").write_text("x")
        wait_for(lambda: finished(world, watched), "the file event run to finish")
        assert (root / "out" / "x.txt").read_text() == "x"
    finally:
        busy.send_signal(signal.SIGTERM)
        out, _ = busy.communicate(timeout=60)
    assert busy.returncode == 0, out
    assert len(world.runs(daily)) == 1
