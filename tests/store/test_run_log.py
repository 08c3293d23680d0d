"""store.run_log: the lines operation rows stand for, next to message rows, on both databases."""

from __future__ import annotations

from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.engine.operations import Action, Kind, Operation
from conveyor.store import engine as engine_store
from conveyor.store import run_log
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

SHAPES = [
    Operation(1, Kind.CREATE_FOLDER, destination="out/new"),
    Operation(2, Kind.DELETE, source="in/a b.txt"),
    Operation(3, Kind.REFUSE, destination="out/%x", reason="no such token"),
    Operation(4, Kind.REFUSE, source="in/l", reason="'in/l' resolves outside the storage root"),
    Operation(5, Kind.REFUSE, source="in/a", destination="in/a", reason="the same file"),
    Operation(6, Kind.COPY, source="in/é.txt", destination="out/é.txt", action=Action.WRITE),
    Operation(7, Kind.COPY, source="in/b", destination="out/b", action=Action.SKIP),
    Operation(8, Kind.COPY, source="in/c", destination="out/c", action=Action.OVERWRITE),
    Operation(9, Kind.MOVE, source="in/d", destination="out/d", action=Action.WRITE),
    Operation(10, Kind.MOVE, source="in/e", destination="out/e", action=Action.SKIP),
    Operation(11, Kind.MOVE, source="in/f", destination='out/"f"', action=Action.OVERWRITE),
]


def _row(op: Operation, at: int, after: int) -> dict[str, object]:
    return {
        "seq": op.seq,
        "kind": op.kind.value,
        "source": op.source,
        "destination": op.destination,
        "detail": op.detail(),
        "planned_at": at,
        "planned_after": after,
    }


def test_planned_lines_read_as_the_planner_described_them(db: Database, seed: Seeder) -> None:
    owner = seed.account("alice", admin=True)
    run = seed.run(seed.automation(owner), stage=RunStage.EXECUTING, messages=["first"])
    with db.write() as conn:
        after = run_log.anchor(conn, run.id)
        engine_store.insert_operations(conn, run.id, [_row(op, 7, after) for op in SHAPES])
        engine_store.insert_messages(conn, run.id, 8, [(MessageLevel.WARNING, "last")])
    with db.read() as conn:
        lines = run_log.lines(conn, run.id, 100)
        newest = run_log.lines(conn, run.id, 3, newest_first=True)
    assert [(line.level, line.message) for line in lines] == [
        ("info", "first"),
        *(("info", f"Planned #{op.seq}: {op.describe()}.") for op in SHAPES),
        ("warning", "last"),
    ]
    assert [line.created_at for line in lines[1:-1]] == [7] * len(SHAPES)
    assert [line.message for line in newest] == [
        lines[-1].message,
        lines[-2].message,
        lines[-3].message,
    ]
    for line in lines:  # every cursor survives its URL form
        assert run_log.parse_cursor(run_log.cursor_text(line.cursor)) == line.cursor
    for bad in ("", "x", "-1", "1.3.4", "1.1", "\u0663", "9" * 19):
        assert run_log.parse_cursor(bad) is None


def test_rows_of_older_versions_read_as_their_message_rows(db: Database, seed: Seeder) -> None:
    """Before migration 0015 every line was a message row and the operation rows had
    no place in the log: such a run reads exactly as it was written."""
    owner = seed.account("alice", admin=True)
    old = ["Planned #1: delete in/a.", "Deleted in/a."]
    run = seed.run(seed.automation(owner), stage=RunStage.EXECUTING, messages=old)
    op = Operation(1, Kind.DELETE, source="in/a")
    with db.write() as conn:
        engine_store.insert_operations(
            conn,
            run.id,
            [
                {
                    "seq": 1,
                    "kind": "delete",
                    "source": "in/a",
                    "destination": None,
                    "detail": op.detail(),
                }
            ],
        )
    with db.read() as conn:
        assert [line.message for line in run_log.lines(conn, run.id, 10)] == old
