"""Crash safety: SIGKILL `conveyor worker` mid-planning and mid-operation, then check every run.

Design (docs/engine.md, "The crash test"): 30 copy automations of the same
50 files, each to its own folder, are queued. Three "victim" worker
processes (two workers each) work on them with test pauses
(CONVEYOR_TEST_ENGINE_DELAYS): 0.4 s between computing a plan and committing
it, 10 ms after each copy; they commit outcomes in batches of 1, 2, 3 or 5
(each victim its own size, in turn). The test watches the database and
SIGKILLs a victim at a drawn point: a random moment of planning, right after
an execution was claimed, or after the victim committed d (1..12) more
operations of its run; kills land before, between and inside operations,
and inside batches (copies made, not committed). Every run a dead victim's
workers held is a kill point; a new victim replaces each dead one and takes
over runs whose lease ran out. After 22 distinct kill points, at least 3 in
planning and 10 distinct commit counts among the executing ones, plain
workers finish the rest. For every run the test checks:
finished with success, counts equal to the 50 files, every destination file
byte-identical, no temp file left, every outcome logged exactly once, the
plan logged once, and one lease loss (and one takeover line) per kill that
hit the run.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_processes import WorkerProcess, wait_for, worker_env
from engine_world import World
from sqlalchemy import select

from conveyor.domain.runs import RunStage, RunStatus
from conveyor.store.schema import automation_runs as runs_t

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"])]

FILES = 50
RUNS = 30
MIN_KILL_POINTS = 20
SEED = 20240216
VICTIMS = 3
MIN_PLANNING_KILLS = 3
# Distinct commit counts among the executing kill points: kills spread over the runs'
# progress, not bunched where batches happen to end.
MIN_EXECUTING_COUNTS = 10
BATCH_SIZES = (1, 2, 3, 5)


@dataclass(frozen=True, order=True)
class KillPoint:
    run_id: int
    stage: str
    committed: int  # operations the run had committed when the worker died


def held_by(world: World, owner: str) -> tuple[int, str, int] | None:
    """(run id, stage, successful operations) of the run `owner` holds, if any."""
    with world.db.read() as conn:
        row = conn.execute(
            select(runs_t.c.id, runs_t.c.run_stage, runs_t.c.successful_operations).where(
                runs_t.c.lease_owner == owner
            )
        ).first()
    return None if row is None else (row[0], row[1], row[2])


PLANNING_STAGES = (RunStage.QUEUED_FOR_PLANNING, RunStage.PLANNING)


def snapshot(world: World) -> list[tuple[int, str, int, str | None]]:
    with world.db.read() as conn:
        return [
            (row[0], row[1], row[2], row[3])
            for row in conn.execute(
                select(
                    runs_t.c.id,
                    runs_t.c.run_stage,
                    runs_t.c.successful_operations,
                    runs_t.c.lease_owner,
                )
            )
        ]


def all_finished(world: World) -> bool:
    with world.db.read() as conn:
        stages = conn.execute(select(runs_t.c.run_stage)).scalars().all()
    return all(stage == RunStage.FINISHED for stage in stages)


def test_sigkill_at_many_points_loses_and_repeats_nothing(
    world: World, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    sources = {f"f{i:02}.bin": rng.randbytes(rng.randint(1, 48_000)) for i in range(FILES)}
    for name, data in sources.items():
        world.write(f"src/{name}", data)
    run_ids = [
        world.run(
            world.automation("copy_file", path="src", source="*.bin", destinations=[f"dest{n:02}/"])
        )
        for n in range(RUNS)
    ]
    env = worker_env(
        database_url,
        world.root,
        tmp_path / "home",
        lease_seconds="1",
        poll_interval="0.05",
        max_lease_losses="20",
    )
    victim_env = {**env, "CONVEYOR_TEST_ENGINE_DELAYS": "plan=0.4,operation=0.01"}
    started_victims = 0

    def new_victim() -> WorkerProcess:
        # Victims commit outcomes in batches of 1, 2, 3 or 5 in turn, so kills land
        # inside batches (copies made, not committed) at many different commit
        # counts; the finishers use the default batches.
        nonlocal started_victims
        size = BATCH_SIZES[started_victims % len(BATCH_SIZES)]
        started_victims += 1
        return WorkerProcess({**victim_env, "CONVEYOR_OUTCOME_BATCH_SIZE": str(size)}, 2)

    # Kill targets: a random moment of planning; as soon as an execution is
    # claimed; or after the victim committed d more operations of its run.
    targets: list[tuple[str, float]] = [("planning", rng.uniform(0.0, 0.35)) for _ in range(4)]
    more = [("planning", rng.uniform(0.0, 0.35)) for _ in range(4)]
    more += [("executing", 0.0)] * 3
    more += [("executing", float(rng.randint(1, 12))) for _ in range(50)]
    rng.shuffle(more)
    targets += more  # planning first, while there is still planning to kill
    points: list[KillPoint] = []
    # Three victims live at once, so new ones start up while the others work;
    # each has two workers, and a kill hits every run either of them holds.
    victims = [new_victim() for _ in range(VICTIMS)]
    first_seen: dict[tuple[str, int], int] = {}
    started = time.monotonic()
    for stage, value in targets:
        planned_kills = sum(p.stage == "planning" for p in set(points))
        counts = {p.committed for p in points if p.stage == "executing"}
        if (
            len(set(points)) >= MIN_KILL_POINTS + 2
            and planned_kills >= MIN_PLANNING_KILLS
            and len(counts) >= MIN_EXECUTING_COUNTS
        ):
            break
        chosen: list[WorkerProcess] = []

        def ready(
            stage: str = stage, value: float = value, chosen: list[WorkerProcess] = chosen
        ) -> bool:
            runs = snapshot(world)  # one query per poll: the workers need the CPU
            if all(row[1] == RunStage.FINISHED for row in runs):
                return True
            planning_left = any(row[1] in PLANNING_STAGES for row in runs)
            held = {row[3]: row for row in runs if row[3] is not None}
            for victim in victims:
                for owner in victim.worker_ids if victim.started else []:
                    if owner not in held:
                        continue
                    run_id, held_stage, committed, _owner = held[owner]
                    seen = first_seen.setdefault((owner, run_id), committed)
                    hit = held_stage == stage and (stage == "planning" or committed >= seen + value)
                    if stage == "planning" and not planning_left:
                        hit = True  # nothing left to plan: kill it where it is
                    if hit:
                        chosen.append(victim)
                        return True
            return False

        wait_for(ready, 60, f"a victim to reach {stage} {value}", interval=0.01)
        if not chosen:
            break
        victim = chosen[0]
        if stage == "planning":
            time.sleep(value)
        victim.kill()
        print(f"{time.monotonic() - started:6.1f}s kill {stage} {value:.2f}", flush=True)
        victims.remove(victim)
        victims.append(new_victim())
        for owner in victim.worker_ids:
            held = held_by(world, owner)  # still held after death: this kill hit that run
            if held is not None:
                points.append(KillPoint(held[0], held[1], held[2]))
    for victim in victims:  # stopped gently: they release what they hold
        assert victim.wait_ready().terminate() == 0, victim.output

    # Plain workers (no pauses) take over the dead victims' runs and finish everything.
    finishers = [WorkerProcess(env, concurrency=2).wait_ready() for _ in range(2)]
    try:
        wait_for(lambda: all_finished(world), 120, "every run to finish", interval=0.1)
    finally:
        for process in finishers:
            assert process.terminate() == 0, process.output

    print(f"{len(points)} kill points ({len(set(points))} distinct): {sorted(set(points))}")
    assert len(set(points)) >= MIN_KILL_POINTS, points
    assert sum(p.stage == "planning" for p in set(points)) >= MIN_PLANNING_KILLS, points
    assert len({p.committed for p in points if p.stage == "executing"}) >= MIN_EXECUTING_COUNTS, (
        points
    )
    kills = Counter(p.run_id for p in points)
    for index, run_id in enumerate(run_ids):
        folder = f"dest{index:02}"
        view = world.view(run_id)
        assert view.run.run_stage is RunStage.FINISHED, run_id
        assert view.run.status is RunStatus.SUCCESS, (run_id, view.log)
        assert (view.run.successful_operations, view.run.failed_operations) == (FILES, 0)
        assert world.files(folder) == {f"{folder}/{n}": data for n, data in sources.items()}
        assert [op[4] for op in view.operations] == ["done"] * FILES
        outcomes = [line for line in view.log if line.startswith("Copied ")]
        assert sorted(outcomes) == sorted(
            f"Copied src/{n} to {folder}/{n} ({len(d)} bytes)." for n, d in sources.items()
        )
        assert sum(line.startswith("Planned #") for line in view.log) == FILES
        assert view.lease.lease_losses == kills[run_id], (run_id, view.log)
        takeovers = [line for line in view.log if line.startswith("The lease of worker")]
        assert len(takeovers) == kills[run_id]
        assert view.log[-1] == (
            f"Run finished with status success: {FILES} operations succeeded, 0 failed."
        )
    assert world.files("src") == {f"src/{n}": data for n, data in sources.items()}
