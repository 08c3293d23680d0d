"""The whole log of a mix of runs, line by line: text, order, level and time.

Copy (with a skip and a file gone before execution, so a failure), move and
delete runs, one of them taken over after its worker died mid-execution, are
run by the real workers (stepped in-process, ManualClock). Every line of each
run's log, as the store reads it for every reader, must be exactly the line
the engine has always written, at its time and level, in its place.
"""

from __future__ import annotations

from engine_world import World

from conveyor.engine.hooks import Hooks
from conveyor.store import run_views, runs


class Crash(Exception):
    """Stands for a worker process dying at this point."""


def _crash_at(seq: int) -> Hooks:
    def after_operation(_run_id: int, current: int) -> None:
        if current == seq:
            raise Crash(f"died after operation {seq}")

    return Hooks(after_operation=after_operation)


def _log(world: World, run_id: int, start: int) -> list[tuple[int, str, str]]:
    with world.db.read() as conn:
        lines = runs.read_messages(conn, run_id)
    return [(line[1] - start, line[2], line[3]) for line in lines]


CRASH = (
    "Worker doomed stopped working on the run during executing: Crash: died after operation 3; "
    "another worker takes over when its lease runs out."
)
COPY = [
    (0, "info", "Planning started (worker planner)."),
    (
        0,
        "info",
        "Plan: 4 files under 'in' match '*.txt'; copy each to 1 destination: 4 operations.",
    ),
    (0, "info", "Planned #1: copy in/a.txt -> out/a.txt."),
    (0, "info", "Planned #2: skip copy in/b.txt -> out/b.txt (same size exists)."),
    (0, "info", "Planned #3: copy in/c.txt -> out/c.txt."),
    (0, "info", "Planned #4: copy in/d.txt -> out/d.txt."),
    (1000000, "info", "Execution started (worker doomed): 4 operations to perform."),
    (1000000, "info", "Copied in/a.txt to out/a.txt (6 bytes)."),
    (
        1000000,
        "info",
        "Skipped copying in/b.txt: out/b.txt already exists with the same size (6 bytes).",
    ),
    (
        1000000,
        "error",
        CRASH,
    ),
    (
        32000000,
        "warning",
        "The lease of worker doomed ran out 1.0 s ago during executing (operation #3 was in "
        "flight at 1 of at most 3 lease losses); worker w2 takes over and resumes with the 2 "
        "operations not yet done.",
    ),
    (32000000, "error", "Could not copy in/c.txt to out/c.txt: in/c.txt no longer exists."),
    (32000000, "info", "Copied in/d.txt to out/d.txt (6 bytes)."),
    (
        32000000,
        "warning",
        "Run finished with status partial_failure: 3 operations succeeded, 1 failed. "
        "First failure: " + CRASH,
    ),
]
MOVE = [
    (33000000, "info", "Planning started (worker w2)."),
    (
        33000000,
        "info",
        "Plan: 1 file under 'mv' matches '*'; move each to 1 destination: 1 operation.",
    ),
    (33000000, "info", "Planned #1: move mv/x.txt -> moved/x.txt."),
    (34000000, "info", "Execution started (worker w2): 1 operation to perform."),
    (34000000, "info", "Moved mv/x.txt to moved/x.txt (7 bytes)."),
    (34000000, "info", "Run finished with status success: 1 operation succeeded, 0 failed."),
]
DELETE = [
    (35000000, "info", "Planning started (worker w2)."),
    (35000000, "info", "Plan: 1 file under 'del' matches '*'; delete 1 file."),
    (35000000, "info", "Planned #1: delete del/y.txt."),
    (36000000, "info", "Execution started (worker w2): 1 operation to perform."),
    (36000000, "info", "Deleted del/y.txt."),
    (36000000, "info", "Run finished with status success: 1 operation succeeded, 0 failed."),
]


def test_the_log_of_a_copy_move_delete_and_failure_mix(world: World) -> None:
    start = world.clock.now()
    for name in ("a", "b", "c", "d"):
        world.write(f"in/{name}.txt", f"file {name}")
    world.write("out/b.txt", "file b")  # same size: skipped
    world.write("mv/x.txt", "move me")
    world.write("del/y.txt", "delete me")
    copy = world.run(
        world.automation("copy_file", path="in", source="*.txt", destinations=["out/"])
    )
    assert world.worker("planner").step()
    world.clock.advance(1)
    (world.root / "in" / "c.txt").unlink()  # gone before execution: a failure
    # The copy's first worker commits each outcome and dies after its third file action.
    assert world.worker("doomed", hooks=_crash_at(3), outcome_batch_size=1).step()
    world.clock.advance(world.settings.lease_seconds + 1)
    move = world.run(world.automation("move_file", path="mv", source="*", destinations=["moved/"]))
    delete = world.run(world.automation("delete_file", path="del", source="*"))
    while world.worker("w2").step():  # the copy taken over, then the others planned and run
        world.clock.advance(1)

    for run_id, expected in ((copy, COPY), (move, MOVE), (delete, DELETE)):
        assert _log(world, run_id, start) == expected
        _check_pages(world, run_id, start, expected)


def _check_pages(
    world: World, run_id: int, start: int, expected: list[tuple[int, str, str]]
) -> None:
    """The run page's reads: the tail, pages back and forth, the level filter, the search."""

    def shown(page: run_views.LogPage) -> list[tuple[int, str, str]]:
        return [(line[1] - start, line[2], line[3]) for line in page.lines]

    with world.db.read() as conn:
        assert shown(run_views.message_page(conn, run_id, 500)) == expected
        backwards: list[tuple[int, str, str]] = []
        page = run_views.message_page(conn, run_id, 2)
        while True:
            backwards = shown(page) + backwards
            if not page.has_earlier:
                break
            page = run_views.message_page(conn, run_id, 2, before=page.lines[0][0])
        assert backwards == expected
        forwards: list[tuple[int, str, str]] = []
        page = run_views.message_page(conn, run_id, 2, after=(0, 0, 0))
        while True:
            forwards += shown(page)
            if not page.has_later:
                break
            page = run_views.message_page(conn, run_id, 2, after=page.lines[-1][0])
        assert forwards == expected
        for level in ("info", "warning", "error"):
            found = shown(run_views.message_page(conn, run_id, 500, level=level))
            assert found == [line for line in expected if line[1] == level]
        for text in ("COPIED", "planned #", "out/d.txt", "worker w2"):
            found = shown(run_views.message_page(conn, run_id, 500, search=text))
            assert found == [line for line in expected if text.lower() in line[2].lower()]
