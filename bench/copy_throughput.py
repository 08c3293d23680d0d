"""Copy throughput: a copy_file run over 2,000 files (1 GiB) against `cp -r` of the same tree.

One `conveyor serve` (SQLite by default, its default embedded workers)
started through `common.py counted`, so every transaction it commits is
counted. The script writes 2,000 files of 512 KiB of random bytes (1 GiB,
in 20 folders) once, under `src/` in the storage root, then takes turns,
`--rounds` times:

1. the engine's own file action alone (`Storage.copy` in this process: temp
   file, [fsync,] rename, [fsync of the folder]; no database, no API) over the
   same tree, timed; then `sync`, timed: the floor for any run;
2. `cp -r src cp-N` in the storage root, timed; then `sync`, timed too
   (`cp` does not fsync: its data is still in the page cache when it exits);
3. a `copy_file` automation (path `src`, source `**/*`, destination
   `copies/run-N/`), triggered with POST .../manual_run over HTTP: from the
   POST to the run's `completed_at`; then `sync`, timed;
4. `cp -r` again, timed, then `sync`.

Every timed step starts after an untimed `sync`, so none pays for the dirty
pages of the one before, and after the output of the step before it was
removed (untimed). The baseline is the mean of the two `cp -r`, one just
before the run and one just after it: on this virtual machine the cost of
writing a GiB into the page cache drifts within seconds (the same copy code
took 0.40 s as the first GiB written in a row and 2.65 s as the third; in
one round of an earlier version of this script, `cp -r`, then `Storage.copy`,
then the run took 0.31, 0.78 and 1.03 s, and the next round's `cp -r` 0.96 s),
so a single `cp -r` always before the run (the earlier design, which also
kept every output until the end of the round) favoured the baseline. Both
`cp -r` figures and the ratio to each are printed. Nothing is dropped from
the page cache (the source stays cached for all steps).

Figures: bytes per second of each, and per round the run's bytes/s ÷
`cp -r`'s (the mean of the two; the goal, >= 0.8), ÷ (`cp -r` + `sync`)'s
and ÷ `Storage.copy` alone's (each a baseline's seconds ÷ the run's
seconds); medians over the rounds.

    .venv/bin/python bench/copy_throughput.py                      # SQLite, 3 rounds
    .venv/bin/python bench/copy_throughput.py --files 200 --rounds 1   # quick (100 MiB)
    .venv/bin/python bench/copy_throughput.py --profile /tmp/copy.txt  # py-spy on round 1's run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from common import CountedProcess, conveyor_home, count_delta, print_machine, wait_healthy
from conveyor.config import Settings
from conveyor.engine.storage import Storage

API = "/api/rest/v1"
FOLDERS = 20
FILE_SIZE = 512 * 1024
COMMAND = "bench/copy_throughput.py"


@dataclass
class Setup:
    root: Path  # the storage root
    url: str
    api: str
    key: str
    serve: CountedProcess


def make_tree(source: Path, files: int) -> int:
    """`files` files of random bytes in FOLDERS folders; the total size."""
    total = 0
    for n in range(files):
        folder = source / f"d{n % FOLDERS:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = os.urandom(FILE_SIZE)
        (folder / f"f{n:05d}.bin").write_bytes(data)
        total += len(data)
    return total


def sync() -> float:
    started = time.perf_counter()
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def timed_cp(root: Path, name: str) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(root / "src"), str(root / name)], check=True)
    return time.perf_counter() - started


def timed_storage_copy(root: Path, files: list[str], name: str) -> float:
    """The engine's own file action alone (`Storage.copy`: temp file, [fsync,] rename)
    over the tree, in this process: no database, no API. With durable writes the
    folders are fsynced once per batch of outcomes, as the engine does."""
    # The same durability and batch settings the server runs with.
    settings = Settings.from_env()
    storage = Storage(root, durable=settings.durable_writes)
    folders: set[str] = set()
    started = time.perf_counter()
    for number, relative in enumerate(files):
        storage.copy(f"src/{relative}", f"{name}/{relative}", f"bench-{number}", folders)
        if (number + 1) % settings.outcome_batch_size == 0:
            storage.sync_folders(folders)
    storage.sync_folders(folders)
    return time.perf_counter() - started


@contextmanager
def conveyor(backend: str) -> Iterator[Setup]:
    with ExitStack() as stack:
        home = stack.enter_context(conveyor_home(backend, "conveyor-copy"))
        serve = CountedProcess(["serve"], home.env, home.path, "serve")
        stack.callback(serve.stop)
        wait_healthy(home.api, serve)
        yield Setup(home.path / "files", home.url, home.api, home.key, serve)


def read_run(url: str, run_id: int) -> tuple[int, ...] | None:
    query = (
        "SELECT created_at, planning_at, queued_for_execution_at, executing_at, completed_at, "
        "successful_operations, failed_operations FROM automation_runs WHERE id = "
    )
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        row = conn.execute(query + "?", (run_id,)).fetchone()
        conn.close()
    else:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg:
            row = pg.execute(query + "%s", (run_id,)).fetchone()
    return None if row is None or row[4] is None else tuple(row)


@dataclass
class RunResult:
    seconds: float  # POST to completed_at
    planning: float
    executing: float
    row: tuple[int, ...]
    counts: dict[str, int]


def timed_run(setup: Setup, client: httpx.Client, name: str, profile: Path | None) -> RunResult:
    reply = client.post(
        f"{API}/automations",
        json={
            "automation": "copy_file",
            "name": name,
            "path": "src",
            "source": "**/*",
            "destinations": [f"copies/{name}/"],
        },
    )
    reply.raise_for_status()
    automation = reply.json()["id"]
    before = setup.serve.counts()
    spy = None
    if profile is not None:
        # Wall-clock samples of every thread, idle ones too (a thread in fsync is "idle").
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(setup.serve.process.pid),
                "--format",
                "raw",
                "--output",
                str(profile),
                "--rate",
                "200",
                "--threads",
                "--idle",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attached
    sent = time.time()
    reply = client.post(f"{API}/automations/{automation}/manual_run")
    if reply.status_code != 201:
        raise RuntimeError(f"manual_run answered {reply.status_code}: {reply.text[:200]}")
    run_id = reply.json()["id"]
    deadline = time.monotonic() + 600
    while (row := read_run(setup.url, run_id)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} did not finish in 600 s")
        time.sleep(0.05)
    counts = count_delta(before, setup.serve.counts())
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        spy.wait(timeout=60)
    _created, planning, queued, executing, completed, _ok, failed = row
    if failed:
        raise RuntimeError(f"run {run_id}: {failed} operations failed")
    return RunResult(
        seconds=completed / 1e6 - sent,
        planning=(queued - planning) / 1e6,
        executing=(completed - executing) / 1e6,
        row=row,
        counts=counts,
    )


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--files", type=int, default=2000, help="files of 512 KiB (2,000: 1 GiB)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of round 1's run here")
    args = parser.parse_args()
    print(f"command: .venv/bin/python {COMMAND} {' '.join(sys.argv[1:])}".rstrip())
    print_machine()
    with conveyor(args.backend) as setup:
        started = time.perf_counter()
        total = make_tree(setup.root / "src", args.files)
        print(
            f"{args.backend}: source tree {args.files} files x {FILE_SIZE // 1024} KiB = "
            f"{total / 2**30:.3f} GiB in {FOLDERS} folders, written in "
            f"{time.perf_counter() - started:.1f} s; storage root {setup.root}"
        )
        sync()
        source = setup.root / "src"
        files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.bin"))
        ratios: list[float] = []
        floors: list[float] = []
        synced_ratios: list[float] = []
        headers = {"X-FilesAPI-Key": setup.key}
        with httpx.Client(base_url=setup.api, headers=headers, timeout=60) as client:
            for round_number in range(1, args.rounds + 1):
                # Each step starts after a sync and after the previous step's copy was
                # removed; the run is timed between two cp -r (see the docstring).
                sync()
                floor = timed_storage_copy(setup.root, files, f"storage-{round_number}")
                floor_sync = sync()
                remove(setup.root / f"storage-{round_number}")
                sync()
                cp_before = timed_cp(setup.root, f"cp-{round_number}")
                cp_before_sync = sync()
                remove(setup.root / f"cp-{round_number}")
                sync()
                name = f"run-{round_number}"
                profile = args.profile if round_number == 1 else None
                run = timed_run(setup, client, name, profile)
                run_sync = sync()
                copied = sum(
                    f.stat().st_size for f in (setup.root / "copies" / name).rglob("*.bin")
                )
                if copied != total:
                    raise RuntimeError(f"{name} copied {copied} bytes of {total}")
                remove(setup.root / "copies" / name)
                sync()
                cp_after = timed_cp(setup.root, f"cp-{round_number}b")
                cp_after_sync = sync()
                remove(setup.root / f"cp-{round_number}b")
                sync()
                cp_seconds = (cp_before + cp_after) / 2
                cp_sync = (cp_before_sync + cp_after_sync) / 2
                ratio = cp_seconds / run.seconds
                synced = (cp_seconds + cp_sync) / run.seconds
                ratios.append(ratio)
                synced_ratios.append(synced)
                floors.append(floor / run.seconds)
                writes = sum(v for k, v in run.counts.items() if "/write/commit" in k)
                reads = sum(v for k, v in run.counts.items() if "/read/commit" in k)
                print(
                    f"round {round_number}: Storage.copy alone {floor:.2f} s "
                    f"({total / floor / 2**20:,.0f} MiB/s), then sync {floor_sync:.2f} s; "
                    f"cp -r before {cp_before:.2f} s, then sync {cp_before_sync:.2f} s; "
                    f"run {run.seconds:.2f} s ({total / run.seconds / 2**20:,.0f} MiB/s; "
                    f"planning {run.planning:.2f} s, executing {run.executing:.2f} s), then "
                    f"sync {run_sync:.2f} s; cp -r after {cp_after:.2f} s, then sync "
                    f"{cp_after_sync:.2f} s; cp -r mean {cp_seconds:.2f} s "
                    f"({total / cp_seconds / 2**20:,.0f} MiB/s)"
                )
                print(
                    f"  run / cp -r = {ratio:.3f} (before: {cp_before / run.seconds:.3f}, "
                    f"after: {cp_after / run.seconds:.3f}); run / (cp -r + sync) = "
                    f"{synced:.3f}; run / Storage.copy alone = {floor / run.seconds:.3f}; "
                    f"run transactions: {writes} write ({writes / args.files:.3f} per file), "
                    f"{reads} read"
                )
                sys.stdout.flush()
        print(
            f"{args.backend}: median run / cp -r = {statistics.median(ratios):.3f} (goal >= 0.8); "
            f"median run / (cp -r + sync) = {statistics.median(synced_ratios):.3f}; "
            f"median run / Storage.copy alone = {statistics.median(floors):.3f}"
        )
        if args.profile:
            print(f"py-spy raw stacks of round 1's run: {args.profile}")


if __name__ == "__main__":
    main()
