"""File events on real files with the real watcher (inotify) on both databases.

Each test makes real changes under a storage root, waits (bounded) until
the watcher has settled, and checks exactly which runs were created and
which files each names; the burst test also runs the real engine and
checks that every file was copied exactly once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from triggers_world import RunSeen, World

from conveyor.clock import SystemClock
from conveyor.config import Settings
from conveyor.domain.automations import Automation, AutomationType, Trigger
from conveyor.engine.planner import make_plan
from conveyor.engine.service import WorkerPool, make_engine
from conveyor.engine.storage import Storage
from conveyor.engine.watcher import Change, Watcher, compare, events_for, minimal_roots
from conveyor.store.database import Database
from conveyor.store.schema import run_operations
from conveyor.store.triggers import FileState

DEBOUNCE = 0.3
ALL = ["create", "update", "destroy", "move"]


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    # A real clock: the watcher compares file mtimes with the time now.
    root = tmp_path / "files"
    root.mkdir()
    return World(db, SystemClock(), root)


@pytest.fixture
def start_watcher(world: World, db: Database) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(database: Database | None = None) -> Watcher:
        assert world.root is not None
        watcher = Watcher(database or db, world.clock, world.root, debounce=DEBOUNCE, rescan=3600)
        watcher.start()
        assert watcher.wait_ready(30)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def settle(world: World, watchers: list[Watcher], runs: int) -> list[RunSeen]:
    """Wait for at least `runs` runs, then until every watcher stayed idle for 3 debounces."""
    wait_for(lambda: len(world.runs()) >= runs, f"{runs} runs")
    quiet_since = time.monotonic()
    deadline = quiet_since + 30
    while time.monotonic() - quiet_since < 3 * DEBOUNCE:
        assert time.monotonic() < deadline, "the watchers never settled"
        if not all(w.idle() for w in watchers):
            quiet_since = time.monotonic()
        time.sleep(0.05)
    return world.runs()


def by_automation(runs: list[RunSeen], since: int = 0) -> dict[int, list[list[tuple[str, str]]]]:
    found: dict[int, list[list[tuple[str, str]]]] = {}
    for run in runs:
        if run.id > since:
            found.setdefault(run.automation_id, []).append(sorted(run.files))
    return found


def test_each_action_creates_runs_on_exactly_the_changed_files(
    world: World, start_watcher: Callable[..., Watcher]
) -> None:
    copy = dict(automation="copy_file", source="*", destinations=["out/"], trigger="action")
    on_create = world.automation(path="in", trigger_actions=["create"], **copy)
    on_update = world.automation(path="in", trigger_actions=["update"], **copy)
    on_destroy = world.automation(path="in", trigger_actions=["destroy"], **copy)
    on_move = world.automation(path="in", trigger_actions=["move"], **copy)
    sub = world.automation(path="in/sub", trigger_actions=ALL, **copy)
    elsewhere = world.automation(path="elsewhere", trigger_actions=ALL, **copy)
    for name in ("in/keep.txt", "in/old.txt", "in/sub/x.txt", "other/o.txt", "other/p.txt"):
        world.write(name, name)
    watcher = start_watcher()
    root = world.root
    assert root is not None
    assert world.runs() == []  # files there before watching are no events

    world.write("in/new.txt", "new")
    world.write("in/sub/s.txt", "s")
    world.write("other/n.txt", "not watched")
    runs = settle(world, [watcher], 2)
    assert by_automation(runs) == {
        on_create: [[("create", "in/new.txt"), ("create", "in/sub/s.txt")]],
        sub: [[("create", "in/sub/s.txt")]],
    }
    mark = runs[-1].id

    with open(root / "in/keep.txt", "a") as handle:
        handle.write(" and more")
    runs = settle(world, [watcher], len(runs) + 1)
    assert by_automation(runs, mark) == {on_update: [[("update", "in/keep.txt")]]}
    mark = runs[-1].id

    os.rename(root / "in/old.txt", root / "in/renamed.txt")
    os.rename(root / "in/sub/x.txt", root / "in/x.txt")
    runs = settle(world, [watcher], len(runs) + 2)
    assert by_automation(runs, mark) == {
        on_move: [[("move", "in/renamed.txt"), ("move", "in/x.txt")]],
        sub: [[("destroy", "in/sub/x.txt")]],  # moved out of its path: gone, for it
    }
    moved = [r for r in runs if r.automation_id == on_move][-1]
    assert moved.payload is not None
    assert {e["path"]: e["from"] for e in moved.payload["files"]} == {
        "in/renamed.txt": "in/old.txt",
        "in/x.txt": "in/sub/x.txt",
    }
    mark = runs[-1].id

    os.remove(root / "in/new.txt")
    os.rename(root / "other/o.txt", root / "in/o.txt")  # from an unwatched folder
    runs = settle(world, [watcher], len(runs) + 2)
    assert by_automation(runs, mark) == {
        on_destroy: [[("destroy", "in/new.txt")]],
        on_create: [[("create", "in/o.txt")]],
    }
    assert world.runs(elsewhere) == []
    for run in runs:
        assert run.trigger == "action"
        assert run.input_kind == "files"
        assert run.log[0].startswith("Started by file events under 'in")
    # Reading is not observable; touching a file without changing it is no event.
    (root / "in/keep.txt").read_bytes()
    os.remove(root / "other/p.txt")
    time.sleep(3 * DEBOUNCE)
    assert len(settle(world, [watcher], len(runs))) == len(runs)


def test_a_file_being_written_is_handled_once_after_it_is_complete(
    world: World, start_watcher: Callable[..., Watcher]
) -> None:
    automation = world.automation(path="in", trigger="action", trigger_actions=["create", "update"])
    (world.root / "in").mkdir()  # type: ignore[operator]
    watcher = start_watcher()
    path = world.root / "in" / "big.bin"  # type: ignore[operator]
    with open(path, "wb") as handle:
        for _ in range(8):  # written over about 4 debounce intervals
            handle.write(os.urandom(64 * 1024))
            handle.flush()
            last_write = world.clock.now()
            time.sleep(DEBOUNCE / 2)
    (run,) = settle(world, [watcher], 1)
    assert run.automation_id == automation
    assert run.files == [("create", "in/big.bin")]
    # Once, and only after the file had been still for the debounce interval.
    assert run.created_at >= last_write + int(DEBOUNCE * 1e6)


def test_a_burst_of_1000_files_is_a_few_runs_and_each_file_is_copied_once(
    world: World, start_watcher: Callable[..., Watcher], db: Database, settings: Settings
) -> None:
    automation = world.automation(
        automation="copy_file",
        path="drop",
        source="*",
        destinations=["kept/"],
        trigger="action",
        trigger_actions=["create"],
    )
    assert world.root is not None
    (world.root / "drop").mkdir()
    watcher = start_watcher()
    names = [f"drop/f{n:04d}.txt" for n in range(1000)]
    for name in names:
        world.write(name, name * 3)
    wait_for(lambda: sum(len(r.files) for r in world.runs()) >= 1000, "1000 files in runs", 60)
    runs = settle(world, [watcher], 1)
    listed = [path for run in runs for _action, path in run.files]
    assert sorted(listed) == names  # every file, each once
    assert all(run.automation_id == automation for run in runs)
    assert len(runs) <= 10, f"{len(runs)} runs for one burst"

    pool = WorkerPool(make_engine(replace(settings, storage_root=world.root), db, world.clock), 2)
    pool.start()
    try:
        wait_for(lambda: all(r.run_stage == "finished" for r in world.runs()), "runs finished", 120)
    finally:
        pool.stop()
    with db.read() as conn:
        sources = [row[0] for row in conn.execute(select(run_operations.c.source))]
    assert sorted(sources) == names
    for name in names:
        copied = world.root / "kept" / name.removeprefix("drop/")
        assert copied.read_text() == name * 3


def test_changes_while_no_watcher_ran_are_caught_up_on_start(
    world: World, start_watcher: Callable[..., Watcher]
) -> None:
    automation = world.automation(path="in", trigger="action", trigger_actions=ALL)
    for name in ("in/a.txt", "in/b.txt", "in/c.txt"):
        world.write(name, name)
    first = start_watcher()
    first.stop()
    root = world.root
    assert root is not None
    # While down: one of each.
    world.write("in/d.txt", "new")
    with open(root / "in/a.txt", "a") as handle:
        handle.write("changed")
    os.remove(root / "in/b.txt")
    os.rename(root / "in/c.txt", root / "in/c2.txt")
    time.sleep(DEBOUNCE * 1.5)  # older than the debounce: settled files
    second = start_watcher()
    (run,) = settle(world, [second], 1)
    assert run.automation_id == automation
    assert sorted(run.files) == [
        ("create", "in/d.txt"),
        ("destroy", "in/b.txt"),
        ("move", "in/c2.txt"),
        ("update", "in/a.txt"),
    ]


def test_disabled_automations_get_nothing_and_re_enabling_does_not_replay(
    world: World, start_watcher: Callable[..., Watcher]
) -> None:
    automation = world.automation(path="in", trigger="action", trigger_actions=ALL)
    world.write("in/a.txt", "a")
    watcher = start_watcher()
    world.update(automation, disabled=True)
    wait_for(lambda: watcher.roots == [], "the watcher to drop the folder")
    world.write("in/while-disabled.txt", "x")
    os.remove(world.root / "in/a.txt")  # type: ignore[operator]
    time.sleep(3 * DEBOUNCE)
    world.update(automation, disabled=False)
    wait_for(lambda: watcher.roots == ["in"], "the watcher to watch the folder again")
    time.sleep(3 * DEBOUNCE)
    assert world.runs() == []
    world.write("in/after.txt", "y")
    (run,) = settle(world, [watcher], 1)
    assert run.files == [("create", "in/after.txt")]


def test_two_watchers_on_one_storage_create_one_run_per_change(
    world: World, start_watcher: Callable[..., Watcher], database_url: str
) -> None:
    world.automation(path="shared", trigger="action", trigger_actions=["create", "update"])
    (world.root / "shared").mkdir()  # type: ignore[operator]
    other_db = Database(database_url)
    try:
        watchers = [start_watcher(), start_watcher(other_db)]
        names = [f"shared/{n}.txt" for n in range(50)]
        for name in names:
            world.write(name, name)
        wait_for(lambda: sum(len(r.files) for r in world.runs()) >= 50, "50 files in runs")
        runs = settle(world, watchers, 1)
        assert sorted(path for run in runs for _a, path in run.files) == sorted(names)
        for watcher in watchers:
            watcher.stop()
    finally:
        other_db.dispose()


def test_an_automation_does_not_trigger_on_its_own_destination(
    world: World, start_watcher: Callable[..., Watcher]
) -> None:
    loop = world.automation(
        automation="copy_file",
        path="in",
        source="**",
        trigger="action",
        destinations=["in/done/"],
        trigger_actions=["create"],
    )
    (world.root / "in/done").mkdir(parents=True)  # type: ignore[operator]
    watcher = start_watcher()
    world.write("in/done/output.txt", "made by the automation")
    world.write("in/input.txt", "from a person")
    (run,) = settle(world, [watcher], 1)
    assert run.automation_id == loop
    assert run.files == [("create", "in/input.txt")]


# ------------------------------------------------------------- pure helpers


def state(path: str, inode: int, size: int = 1, mtime: int = 1) -> FileState:
    return FileState(path, size, mtime, inode)


def test_compare_pairs_renames_by_identity() -> None:
    seen = {"a": state("a", 1), "b": state("b", 2), "c": state("c", 3)}
    disk = {"a": state("a", 1, size=2), "c2": state("c2", 3), "d": state("d", 4)}
    result = compare(disk, seen)
    assert result.changes == [
        Change("update", "a"),
        Change("move", "c2", "c"),
        Change("create", "d"),
        Change("destroy", "b"),
    ]
    assert sorted(result.absent) == ["b", "c"]
    assert [s.path for s in result.present] == ["a", "c2", "d"]


def test_events_for_respects_path_actions_and_own_destinations() -> None:
    automation = Automation(
        id=1,
        user_id=1,
        automation=AutomationType.COPY_FILE,
        trigger=Trigger.ACTION,
        path="in",
        destinations=("in/%Y/", "log.txt"),
        trigger_actions=("copy", "destroy"),
    )
    changes = [
        Change("create", "in/a"),
        Change("create", "inbox/a"),
        Change("update", "in/b"),
        Change("create", "in/2024/x"),
        Change("move", "out/c", "in/c"),
        Change("move", "in/d", "out/d"),
    ]
    assert events_for(automation, changes) == [Change("create", "in/a"), Change("destroy", "in/c")]


def test_minimal_roots() -> None:
    assert minimal_roots(["a/b", "a", "c/d", "c/de", "a/b/c"]) == ["a", "c/d", "c/de"]
    assert minimal_roots(["x", ""]) == [""]
    assert minimal_roots([]) == []


def test_the_planner_acts_on_exactly_the_listed_files_that_still_match(tmp_path: Path) -> None:
    for name in ("in/a.csv", "in/b.csv", "in/c.txt", "in/sub/d.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    automation = Automation(
        id=1,
        user_id=1,
        automation=AutomationType.COPY_FILE,
        trigger=Trigger.ACTION,
        path="in",
        source="*.csv",
        destinations=("out/",),
        trigger_actions=("create",),
    )
    listed = ["in/a.csv", "in/c.txt", "in/gone.csv", "other/x.csv", "in/sub/d.csv"]
    plan = make_plan(automation, 0, Storage(tmp_path), only=listed)
    # b.csv matches but was not listed; c.txt does not match; gone.csv is gone;
    # other/x.csv is outside the path; sub/d.csv is deeper than `*` reaches.
    assert [(op.source, op.destination) for op in plan.operations] == [("in/a.csv", "out/a.csv")]
    everything = make_plan(automation, 0, Storage(tmp_path))
    assert [op.source for op in everything.operations] == ["in/a.csv", "in/b.csv"]
