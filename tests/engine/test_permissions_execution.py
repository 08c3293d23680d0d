"""Folder permissions at execution: a permission revoked while a run executes stops its
remaining operations (at the next batch of outcomes), each failing with the reason."""

from __future__ import annotations

import pytest
from engine_world import World
from sqlalchemy import delete

from conveyor.domain.permissions import Level
from conveyor.domain.runs import RunStatus
from conveyor.engine.hooks import Hooks
from conveyor.store import permissions
from conveyor.store.schema import permissions as permissions_t

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


def only_grant(world: World, path: str, level: Level, *more: tuple[str, Level]) -> int:
    """Replace the world user's permissions by these; the first one's id."""
    with world.db.write() as conn:
        conn.execute(delete(permissions_t).where(permissions_t.c.user_id == world.user_id))
        for other, other_level in more:
            permissions.grant(conn, world.user_id, other, other_level, world.clock.now())
        return permissions.grant(conn, world.user_id, path, level, world.clock.now()).id


def test_a_revocation_during_execution_fails_the_remaining_operations(world: World) -> None:
    grant = only_grant(world, "data", Level.FULL)
    for name in ("a", "b", "c"):
        world.write(f"data/{name}", name)
    run_id = world.run(world.automation("delete_file", source="data/*"))

    def revoke_after_first(_run: int, seq: int) -> None:
        if seq == 1:
            with world.db.write() as conn:
                assert permissions.delete_permission(conn, grant)

    worker = world.worker(hooks=Hooks(after_operation=revoke_after_first), outcome_batch_size=1)
    assert worker.drain() == 2  # planned with the permission, executed as it was revoked

    view = world.view(run_id)
    assert view.run.status is RunStatus.PARTIAL_FAILURE
    assert (view.run.successful_operations, view.run.failed_operations) == (1, 2)
    assert world.files() == {"data/b": b"b", "data/c": b"c"}
    assert view.log[-3:] == [
        "Refused to delete data/b: permission denied: no full permission on 'data'.",
        "Refused to delete data/c: permission denied: no full permission on 'data'.",
        "Run finished with status partial_failure: 1 operation succeeded, 2 failed. "
        "First failure: Refused to delete data/b: permission denied: "
        "no full permission on 'data'.",
    ]


def test_a_grant_on_a_sibling_with_a_common_prefix_covers_nothing(world: World) -> None:
    """A grant on "out/al" must not reach "out/alice" at planning either."""
    only_grant(world, "out/al", Level.FULL)
    world.write("out/alice/x", "alice's")
    world.write("out/al/y", "ok")
    run_id = world.run(world.automation("delete_file", source="out/al*/*"))
    world.worker().drain()
    view = world.view(run_id)
    assert world.files() == {"out/al/y": b"ok", "out/alice/x": b"alice's"}
    assert view.run.status is RunStatus.FAILURE  # the glob's fixed folder is "out"
    assert view.log[-1] == (
        "Planning failed: permission denied: source 'out/al*/*': no full permission on "
        "'out' and its subfolders. Run finished with status failure."
    )


def test_writeonly_cannot_replace_a_file_that_appeared_after_planning(world: World) -> None:
    only_grant(world, "in", Level.READONLY, ("drop", Level.WRITEONLY))
    world.write("in/a.txt", "new content")

    def someone_writes_the_destination(_run: int) -> None:
        world.write("drop/a.txt", "another user's file")

    automation = world.automation("copy_file", path="in", source="*.txt", destinations=["drop/"])
    run_id = world.run(automation)
    world.worker(hooks=Hooks(before_plan_commit=someone_writes_the_destination)).drain()
    view = world.view(run_id)
    assert world.files("drop") == {"drop/a.txt": b"another user's file"}
    assert view.run.status is RunStatus.FAILURE
    assert view.log[-2] == (
        "Refused to copy in/a.txt -> drop/a.txt: permission denied: drop/a.txt appeared after "
        "planning and replacing it needs full permission on 'drop'."
    )
