"""Runs that really performed operations on files, for the AutomationLog tests.

Automations and runs are made through the store; a real worker performs them
on a storage root in the test's folder (the same database the server reads).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from conveyor.clock import ManualClock
from conveyor.config import Settings
from conveyor.engine.context import EngineContext
from conveyor.engine.storage import Storage
from conveyor.engine.worker import Worker
from conveyor.store import automations, runs
from conveyor.store.database import Database
from conveyor.testing.seed import Account, Seeder

T0 = 1_708_126_200_000_000  # 2024-02-16T23:30:00Z
SECOND = 1_000_000


@dataclass
class Logged:
    alice: Account
    bob: Account
    root: Account  # an admin
    copy: int  # alice's copy_file automation
    folders: int  # alice's create_folder automation
    bobs: int  # bob's delete_file automation
    copy_runs: list[int]
    folder_run: int
    bob_run: int


def perform(db: Database, settings: Settings, clock: ManualClock, storage: Path) -> None:
    engine = EngineContext(
        db=db,
        settings=replace(settings, storage_root=storage),
        clock=clock,
        storage=Storage(storage),
    )
    Worker(engine, "w1").drain()


def logged_runs(seed: Seeder, settings: Settings, tmp_path: Path) -> Logged:
    """alice: two runs of a copy (3 files: one copied, one skipped as the same size
    exists, one refused as its destination is a folder; then the same again) and one
    of a create_folder; bob: one run deleting a file. One second apart each."""
    storage = tmp_path / "storage"
    for name, data in (("in/a.txt", "aaa"), ("in/b.txt", "bb"), ("out/b.txt", "xy")):
        (storage / name).parent.mkdir(parents=True, exist_ok=True)
        (storage / name).write_text(data)
    (storage / "in/c.txt").write_text("c")
    (storage / "out/c.txt").mkdir()
    (storage / "bob/old.log").parent.mkdir(parents=True)
    (storage / "bob/old.log").write_text("old")
    alice, bob = seed.account("alice"), seed.account("bob")
    admin = seed.account("root", admin=True)
    clock = ManualClock(T0)
    with seed.db.write() as conn:
        copy = automations.create_automation(
            conn,
            alice.user.id,
            T0,
            name="copy",
            automation="copy_file",
            path="in",
            source="*.txt",
            destinations=("out/",),
        )
        folders = automations.create_automation(
            conn,
            alice.user.id,
            T0,
            name="folders",
            automation="create_folder",
            destinations=("made/%Y",),
        )
        bobs = automations.create_automation(
            conn,
            bob.user.id,
            T0,
            name="cleanup",
            automation="delete_file",
            path="bob",
            source="*.log",
        )
    made: list[int] = []
    for automation in (copy, folders, bobs, copy):
        clock.advance(1)
        with seed.db.write() as conn:
            made.append(runs.create_run(conn, automation, clock.now(), clock.now()).id)
        perform(seed.db, settings, clock, storage)
    return Logged(alice, bob, admin, copy, folders, bobs, [made[0], made[3]], made[1], made[2])
