"""The watcher against hostile trees: links out of the root, names that are not UTF-8,
and a watcher thread that dies (it is restarted, and /readyz says so meanwhile).

Real files, the real watcher (inotify), both databases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from triggers_world import World

from conveyor.clock import SystemClock
from conveyor.engine.watcher import INOTIFY, Watcher
from conveyor.observability import components
from conveyor.store.database import Database

DEBOUNCE = 0.3
COPY = dict(automation="copy_file", source="*", destinations=["out/"], trigger="action")


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    root = tmp_path / "files"
    root.mkdir()
    return World(db, SystemClock(), root)


@pytest.fixture
def watcher(world: World, db: Database) -> Iterator[Callable[[], Watcher]]:
    started: list[Watcher] = []

    def start() -> Watcher:
        assert world.root is not None
        found = Watcher(db, world.clock, world.root, debounce=DEBOUNCE, rescan=3600).start()
        assert found.wait_ready(30)
        started.append(found)
        return found

    yield start
    for found in started:
        found.stop()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def quiet(watcher: Watcher) -> None:
    """Wait until the watcher has had nothing to handle for three debounce intervals."""
    since = time.monotonic()
    wait_for(lambda: watcher.idle(), "the watcher to be idle")
    while time.monotonic() - since < 3 * DEBOUNCE:
        if not watcher.idle():
            since = time.monotonic()
        time.sleep(0.05)


def test_a_path_through_a_link_out_of_the_root_is_not_watched(
    world: World,
    watcher: Callable[[], Watcher],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert world.root is not None
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (world.root / "in").symlink_to(outside)
    world.automation(path="in/sub", trigger_actions=["create"], **COPY)
    # A control automation inside the root proves the watcher is alive.
    control = world.automation(path="inside", trigger_actions=["create"], **COPY)
    with caplog.at_level(logging.INFO, logger="conveyor.watcher"):
        running = watcher()
        (outside / "sub" / "private-name.txt").write_text("outside")
        world.write("inside/marker.txt", "marker")
        wait_for(lambda: len(world.runs()) >= 1, "the control run")
        quiet(running)
    runs = world.runs()
    assert [run.automation_id for run in runs] == [control]
    assert "private-name" not in caplog.text
    assert "private-name" not in "".join(line for run in runs for line in run.log)
    assert "not watching in/sub" in caplog.text


def test_a_name_that_is_not_utf8_is_skipped_and_the_watcher_keeps_working(
    world: World, watcher: Callable[[], Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    assert world.root is not None
    automation = world.automation(path="in", trigger_actions=["create"], **COPY)
    (world.root / "in").mkdir()
    running = watcher()
    states: list[str] = []
    with caplog.at_level(logging.WARNING):
        # watchfiles cannot decode this name and stops its session: the watcher is
        # down for /readyz until the session is started again.
        (world.root / "in").joinpath(b"bad-\xff.txt".decode("utf-8", "surrogateescape")).touch()

        def seen_down() -> bool:
            state = components.states().get(INOTIFY, "ok")
            states.append(state)
            return state != "ok"

        wait_for(seen_down, "the event thread to be reported down")
        wait_for(lambda: components.states().get(INOTIFY) == "ok", "the event thread to restart")
        world.write("in/good.txt", "good")
        wait_for(lambda: len(world.runs()) >= 1, "a run for the good file")
        quiet(running)
        running.catch_up()  # a full rescan meets the bad name again: skipped, no error
    runs = world.runs()
    assert [(run.automation_id, sorted(run.files)) for run in runs] == [
        (automation, [("create", "in/good.txt")])
    ]
    assert any("restarting" in state for state in states)
    assert "skipped in/bad-\\xff.txt: its name is not valid UTF-8" in caplog.text
    assert "file watcher step failed" not in caplog.text
