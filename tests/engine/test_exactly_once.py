"""Exactly once at scale-out: several `conveyor worker` processes share 300 queued runs.

PostgreSQL: 3 processes (claims with FOR UPDATE SKIP LOCKED, woken by
NOTIFY). SQLite: 2 processes (claims serialised by BEGIN IMMEDIATE). Every
run must finish once, every operation be performed and logged once, and the
runs be spread over the processes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from engine_processes import WorkerProcess, wait_for, worker_env
from engine_world import World
from sqlalchemy import func, select

from conveyor.domain.runs import RunStage, RunStatus
from conveyor.store import runs
from conveyor.store.schema import automation_runs as runs_t

pytestmark = pytest.mark.slow

RUNS = 300
PROCESSES = {"sqlite": 2, "postgresql": 3}


def unfinished(world: World) -> int:
    with world.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(runs_t)
                .where(runs_t.c.run_stage != RunStage.FINISHED)
            ).scalar_one()
        )


def test_every_run_and_operation_happens_exactly_once(
    world: World, backend: str, database_url: str, tmp_path: Path
) -> None:
    contents = {}
    automations = []
    for n in range(RUNS):
        for name in ("a", "b"):
            contents[(n, name)] = f"run {n} file {name}\n".encode() * (n % 7 + 1)
            world.write(f"in/{n:03}/{name}.txt", contents[(n, name)])
        automations.append(
            world.automation(
                "copy_file", path=f"in/{n:03}", source="*.txt", destinations=[f"out/{n:03}/"]
            )
        )
    env = worker_env(database_url, world.root, tmp_path / "home", poll_interval="0.5")
    processes = [WorkerProcess(env, concurrency=2) for _ in range(PROCESSES[backend])]
    try:
        for process in processes:
            process.wait_ready()
        # All at once, in one transaction: every worker competes for every run.
        with world.db.write() as conn:
            run_ids = [runs.create_run(conn, a, world.clock.now()).id for a in automations]
        wait_for(lambda: unfinished(world) == 0, 150, "all runs to finish", interval=0.2)
    finally:
        for process in processes:
            assert process.terminate() == 0, process.output

    executed_by: Counter[str] = Counter()
    for n, run_id in enumerate(run_ids):
        view = world.view(run_id)
        assert view.run.status is RunStatus.SUCCESS, view.log
        assert (view.run.successful_operations, view.run.failed_operations) == (2, 0)
        assert view.lease.lease_losses == 0
        assert [op[4] for op in view.operations] == ["done", "done"]
        starts = [line for line in view.log if line.startswith("Execution started")]
        assert len(starts) == 1
        assert sum(line.startswith("Planning started") for line in view.log) == 1
        worker_id = starts[0].split("(worker ", 1)[1].split(")", 1)[0]
        executed_by[worker_id.rsplit(":", 1)[0]] += 1
        sizes = {name: len(contents[(n, name)]) for name in ("a", "b")}
        assert [line for line in view.log if line.startswith("Copied")] == [
            f"Copied in/{n:03}/{name}.txt to out/{n:03}/{name}.txt ({sizes[name]} bytes)."
            for name in ("a", "b")
        ]
        assert view.log[-1] == "Run finished with status success: 2 operations succeeded, 0 failed."
    assert world.files("out") == {
        f"out/{n:03}/{name}.txt": data for (n, name), data in contents.items()
    }
    # Every process did a share of the work (process = worker id without its thread number).
    prefixes = {p.worker_ids[0].rsplit(":", 1)[0] for p in processes}
    assert set(executed_by) == prefixes, executed_by
    assert min(executed_by.values()) >= RUNS // 30, executed_by
