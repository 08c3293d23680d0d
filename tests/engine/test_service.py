"""The engine inside `conveyor serve` and as `conveyor worker`: wakeups, clean stops."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import httpx
from engine_processes import WorkerProcess, wait_for, worker_env
from engine_world import World

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.domain.runs import RunStage, RunStatus
from conveyor.engine.service import embedded_services
from conveyor.store import runs, users
from conveyor.testing.server import ServerThread

# Far longer than any wait below: a run that finishes in time was woken, not polled.
SLOW_POLL = 120.0


def finished(world: World, run_id: int) -> bool:
    with world.db.read() as conn:
        run = runs.get_run(conn, run_id)
    return run is not None and run.run_stage is RunStage.FINISHED


def test_serve_runs_embedded_workers_woken_by_manual_run(world: World) -> None:
    world.write("in/a.txt", "served")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    with world.db.write() as conn:
        key = users.create_api_key(conn, world.user_id, world.clock.now())
    settings: Settings = replace(world.settings, embedded_workers=2, poll_interval=SLOW_POLL)
    app = create_app(settings, world.db, services=embedded_services())
    with ServerThread(app) as server:
        response = httpx.post(
            f"{server.url}/api/rest/v1/automations/{automation}/manual_run",
            headers={"X-FilesAPI-Key": key},
        )
        assert response.status_code == 201
        run_id = response.json()["id"]
        wait_for(lambda: finished(world, run_id), 20, "the embedded workers to finish the run")
    # Leaving the block stopped the server, which stopped its workers.
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert world.files("out") == {"out/a.txt": b"served"}
    assert view.log[0].startswith("Planning started (worker ")
    assert view.log[-1] == "Run finished with status success: 1 operation succeeded, 0 failed."


def test_worker_process_is_woken_by_new_runs_and_stops_on_sigterm(
    world: World, database_url: str, tmp_path: Path
) -> None:
    world.write("in/a.txt", "from a worker process")
    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    # On SQLite nothing can wake another process, so only PostgreSQL gets the slow poll.
    poll = "0.2" if world.db.is_sqlite else str(SLOW_POLL)
    env = worker_env(database_url, world.root, tmp_path / "home", poll_interval=poll)
    process = WorkerProcess(env, concurrency=2).wait_ready()
    try:
        run_id = world.run(automation)
        wait_for(lambda: finished(world, run_id), 20, "the worker process to finish the run")
    finally:
        code = process.terminate(signal.SIGTERM)
    assert code == 0
    assert process.lines[-2:] == [
        "Conveyor worker stopping: finishing current operations.",
        "Conveyor worker stopped.",
    ]
    view = world.view(run_id)
    assert view.run.status is RunStatus.SUCCESS
    assert world.files("out") == {"out/a.txt": b"from a worker process"}


def test_worker_process_exits_cleanly_on_sigint(
    world: World, database_url: str, tmp_path: Path
) -> None:
    env = worker_env(database_url, world.root, tmp_path / "home")
    process = WorkerProcess(env).wait_ready()
    assert process.terminate(signal.SIGINT) == 0
    assert process.lines[-1] == "Conveyor worker stopped."
