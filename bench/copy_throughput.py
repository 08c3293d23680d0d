"""Copy throughput: a copy_file run against `cp -r`, `rsync -a` and `rclone copy` of the same tree.

Two cases (`--case`), each on SQLite and PostgreSQL (`--backend`):

- **small**: 20,000 files of 4 KiB (80 MiB) in 20 folders: the cost per file;
- **large**: 2,000 files of 512 KiB (1 GiB) in 20 folders: the cost per byte.

One `conveyor serve` per backend (its default embedded workers), started
through `common.py counted`, so every transaction it commits is counted. The
source tree is written once per case under `src-<case>/` in the storage root.
Then, `--rounds` times, taking turns, each step after an untimed `sync`:

1. `cp -r src dst`, timed;
2. `rsync -a src/ dst/`, timed;
3. a `copy_file` automation (path `src-<case>`, source `**/*`, destination
   `copies/<name>/`), triggered with POST .../manual_run over HTTP: from the
   POST to the run's `completed_at` (read from the database);
4. `rclone copy src dst` (local to local), timed;
5. `cp -r` again, timed.

Every step's output stays on disk until the case ends, and then the script
waits a minute before the next case: on this machine's ext4 the kernel avoids
reusing an inode freed in the last minute and, for every file it creates,
looks past each such inode (`perf`: ext4's `recently_deleted` took half the
samples of `cp -r`), so a tool that ran right after thousands of files were
removed took up to 10 times as long (`cp -r` of 10,000 files: 0.5-1.3 s, and
7-9 s right after a removal), whichever tool that was. Disk space needed: the
source and (rounds x 6) copies of it (3 rounds: 1.5 GiB for `small`, 19 GiB
for `large`).

The `cp -r` figure is the mean of the two around the run: on this virtual
machine the cost of writing into the page cache drifts within seconds, so
one `cp -r` always before the run would favour it. Each ratio is the peer's
seconds ÷ the run's seconds (above 1: Conveyor is faster); the script prints
each round's and then the median with min and max over the rounds.

`--durable` runs the server with `CONVEYOR_DURABLE_WRITES=true` (each file
and its folder fsynced before its outcome is recorded) and compares the run
with `cp -r` followed by `sync`, timed together, the nearest a shell user gets
to the same promise; the other peers are then skipped.

Peers are Debian packages: when `rsync` or `rclone` is missing the script
installs it with apt-get (as root; otherwise it says what to install), as
`scripts/bootstrap` does for the test suite's system packages.

    .venv/bin/python bench/copy_throughput.py                       # both cases, both databases
    .venv/bin/python bench/copy_throughput.py --case small --backend sqlite --rounds 1  # quick
    .venv/bin/python bench/copy_throughput.py --durable --case small
    .venv/bin/python bench/copy_throughput.py --case small --backend sqlite --rounds 1 \\
        --profile /tmp/copy.json       # py-spy (speedscope) of the first round's run
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from common import (
    CountedProcess,
    conveyor_home,
    count_delta,
    load_average,
    print_machine,
    wait_healthy,
)

API = "/api/rest/v1"
FOLDERS = 20
COMMAND = "bench/copy_throughput.py"
# case: (files, bytes per file)
CASES = {"small": (20_000, 4 * 1024), "large": (2_000, 512 * 1024)}
PEERS = {"rsync": "rsync", "rclone": "rclone"}  # command: Debian package


def ensure_peers() -> None:
    """Install the peers' Debian packages when missing (apt-get, as root)."""
    missing = [package for command, package in PEERS.items() if shutil.which(command) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"the peers need these Debian packages: {' '.join(missing)} (apt-get install)")
    print(f"installing Debian packages: {' '.join(missing)}")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )


@dataclass
class Setup:
    root: Path  # the storage root
    url: str
    api: str
    key: str
    serve: CountedProcess


def make_tree(source: Path, files: int, size: int) -> int:
    """`files` files of `size` random bytes in FOLDERS folders; the total size."""
    total = 0
    for n in range(files):
        folder = source / f"d{n % FOLDERS:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        (folder / f"f{n:05d}.bin").write_bytes(data)
        total += len(data)
    return total


def sync() -> float:
    started = time.perf_counter()
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timed:
    seconds: float  # wall clock
    cpu: float  # user + system CPU seconds


def timed(command: list[str]) -> Timed:
    cpu = children_cpu()
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return Timed(time.perf_counter() - started, children_cpu() - cpu)


@contextmanager
def conveyor(backend: str, durable: bool, code: Path | None = None) -> Iterator[Setup]:
    """A `conveyor serve` on a fresh home; `code`: a `src` folder to run instead of this one."""
    with ExitStack() as stack:
        home = stack.enter_context(conveyor_home(backend, "conveyor-copy", code))
        env = {**home.env, "CONVEYOR_DURABLE_WRITES": "true" if durable else "false"}
        if code is not None:
            env["PYTHONPATH"] = str(code)
        serve = CountedProcess(["serve"], env, home.path, "serve")
        stack.callback(serve.stop)
        wait_healthy(home.api, serve, timeout=300)  # a loaded machine starts slowly
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
    cpu: float  # CPU seconds the server used from the POST to the run's end
    counts: dict[str, int]


def py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy; not a dependency) recording `pid` as speedscope JSON."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--format",
            "speedscope",
            "--output",
            str(output),
            "--rate",
            "250",
            "--threads",
            "--idle",  # wall-clock samples: a worker waiting in the kernel counts too
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed_run(
    setup: Setup, client: httpx.Client, source: str, name: str, profile: Path | None
) -> RunResult:
    reply = client.post(
        f"{API}/automations",
        json={
            "automation": "copy_file",
            "name": name,
            "path": source,
            "source": "**/*",
            "destinations": [f"copies/{name}/"],
        },
    )
    reply.raise_for_status()
    automation = reply.json()["id"]
    before = setup.serve.counts()
    spy = None
    if profile is not None:
        spy = py_spy(setup.serve.process.pid, profile)
        time.sleep(1.0)  # py-spy attached
    cpu = process_cpu(setup.serve.process.pid)
    sent = time.time()
    reply = client.post(f"{API}/automations/{automation}/manual_run")
    if reply.status_code != 201:
        raise RuntimeError(f"manual_run answered {reply.status_code}: {reply.text[:200]}")
    run_id = reply.json()["id"]
    deadline = time.monotonic() + 600
    while (row := read_run(setup.url, run_id)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} did not finish in 600 s")
        time.sleep(0.02)
    cpu = process_cpu(setup.serve.process.pid) - cpu  # (a few polls after the end too)
    counts = count_delta(before, setup.serve.counts())
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        spy.wait(timeout=120)
    _created, planning, queued, executing, completed, _ok, failed = row
    if failed:
        raise RuntimeError(f"run {run_id}: {failed} operations failed")
    return RunResult(
        seconds=completed / 1e6 - sent,
        planning=(queued - planning) / 1e6,
        executing=(completed - executing) / 1e6,
        cpu=cpu,
        counts=counts,
    )


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# How long ext4 avoids reusing a freed inode (whose block was written: `sync` first).
INODE_RECENCY = 61.0


def spread(values: list[float]) -> str:
    """Median (min-max) of a figure over the rounds."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def measure_case(
    setup: Setup,
    client: httpx.Client,
    backend: str,
    case: str,
    rounds: int,
    durable: bool,
    profile: Path | None,
    other: tuple[Setup, httpx.Client] | None = None,
) -> None:
    """`other`: a server running other code (`--baseline-src`), whose run is timed right
    after this one's in every round."""
    files, size = CASES[case]
    root = setup.root
    source = f"src-{case}"
    started = time.perf_counter()
    total = make_tree(root / source, files, size)
    print(
        f"{backend}/{case}: source tree {files:,} files x {size // 1024} KiB = "
        f"{total / 2**20:,.0f} MiB in {FOLDERS} folders, written in "
        f"{time.perf_counter() - started:.1f} s"
    )
    src = str(root / source)
    if other is not None:  # the same files for the other server, as hard links
        subprocess.run(["cp", "-al", src, str(other[0].root / source)], check=True)

    outputs: list[Path] = []  # removed when the case ends (see the module docstring)

    def step(name: str, command: Callable[[str], list[str]], synced: bool = False) -> Timed:
        """One peer's copy into a fresh folder, timed (with its `sync` if `synced`)."""
        sync()
        target = root / name
        result = timed(command(str(target)))
        if synced:
            result.seconds += sync()
        outputs.append(target)
        return result

    cp: Callable[[str], list[str]] = lambda target: ["cp", "-r", src, target]  # noqa: E731
    peers: dict[str, Callable[[str], list[str]]] = (
        {}
        if durable
        else {
            "rsync -a": lambda target: ["rsync", "-a", f"{src}/", f"{target}/"],
            "rclone copy": lambda target: ["rclone", "copy", src, target],
        }
    )
    cp_name = "cp -r + sync" if durable else "cp -r"
    names = [cp_name, *peers]
    ratios: dict[str, list[float]] = {peer: [] for peer in names}
    cpu_ratios: dict[str, list[float]] = {peer: [] for peer in names}
    run_rates: list[float] = []
    baseline: list[float] = []
    baseline_cpu: list[float] = []
    for number in range(1, rounds + 1):
        results: dict[str, Timed] = {}
        cp_before = step(f"cp-{number}", cp, synced=durable)
        if "rsync -a" in peers:
            results["rsync -a"] = step(f"rsync-{number}", peers["rsync -a"])
        sync()
        name = f"{case}-{number}"
        run = timed_run(setup, client, source, name, profile if number == 1 else None)
        copied = sum(f.stat().st_size for f in (root / "copies" / name).rglob("*.bin"))
        if copied != total:
            raise RuntimeError(f"{name} copied {copied} bytes of {total}")
        outputs.append(root / "copies" / name)
        if other is not None:
            sync()
            theirs = timed_run(other[0], other[1], source, name, None)
            outputs.append(other[0].root / "copies" / name)
            baseline.append(theirs.seconds / run.seconds)
            baseline_cpu.append(theirs.cpu / run.cpu)
            print(
                f"  round {number}: baseline code's run {theirs.seconds:.2f} s (planning "
                f"{theirs.planning:.2f} s, executing {theirs.executing:.2f} s, server CPU "
                f"{theirs.cpu:.2f} s)"
            )
        if "rclone copy" in peers:
            results["rclone copy"] = step(f"rclone-{number}", peers["rclone copy"])
        cp_after = step(f"cp-{number}b", cp, synced=durable)
        results[cp_name] = Timed(
            (cp_before.seconds + cp_after.seconds) / 2, (cp_before.cpu + cp_after.cpu) / 2
        )
        writes = sum(v for k, v in run.counts.items() if "/write/commit" in k)
        reads = sum(v for k, v in run.counts.items() if "/read/commit" in k)
        run_rates.append(files / run.seconds)
        line = ", ".join(
            f"{peer} {results[peer].seconds:.2f} s (CPU {results[peer].cpu:.2f} s)"
            for peer in names
        )
        print(
            f"  round {number}: run {run.seconds:.2f} s ({files / run.seconds:,.0f} files/s, "
            f"{total / run.seconds / 2**20:,.0f} MiB/s; planning {run.planning:.2f} s, "
            f"executing {run.executing:.2f} s; server CPU {run.cpu:.2f} s; {writes} write / "
            f"{reads} read transactions); {line}; {cp_name} before {cp_before.seconds:.2f} s, "
            f"after {cp_after.seconds:.2f} s; load average {load_average()}"
        )
        for peer in names:
            ratios[peer].append(results[peer].seconds / run.seconds)
            cpu_ratios[peer].append(results[peer].cpu / run.cpu)
        sys.stdout.flush()
    label = f"{backend}/{case}{' durable' if durable else ''}"
    print(
        f"{label}: run {spread(run_rates)} files/s; run speed "
        + "; ".join(f"÷ {peer} {spread(ratios[peer])}" for peer in names)
        + f"  [median (min-max) of {rounds} rounds]"
    )
    print(
        f"{label}: CPU of the peer ÷ CPU of the server for the run: "
        + "; ".join(f"{peer} {spread(cpu_ratios[peer])}" for peer in names)
    )
    if other is not None:
        print(
            f"{label}: this code's run speed ÷ the baseline code's {spread(baseline)}; "
            f"its CPU ÷ this code's {spread(baseline_cpu)}"
        )
        outputs.append(other[0].root / source)
    for path in [*outputs, root / source]:
        remove(path)
    sys.stdout.flush()


def client_for(setup: Setup) -> httpx.Client:
    return httpx.Client(base_url=setup.api, headers={"X-FilesAPI-Key": setup.key}, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--case", choices=["small", "large", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="file counts x this (quick runs)")
    parser.add_argument("--durable", action="store_true", help="CONVEYOR_DURABLE_WRITES=true")
    parser.add_argument("--profile", type=Path, help="py-spy speedscope of the first run here")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also time, in each round, a server running the code in this `src` folder "
        "(e.g. `git archive <commit> src | tar -x -C /tmp/base`, then /tmp/base/src)",
    )
    args = parser.parse_args()
    print(f"command: .venv/bin/python {COMMAND} {' '.join(sys.argv[1:])}".rstrip())
    if not args.durable:
        ensure_peers()
    print_machine()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    cases = ["small", "large"] if args.case == "both" else [args.case]
    for case, (files, size) in CASES.items():
        CASES[case] = (max(FOLDERS, round(files * args.scale)), size)
    first = True
    for backend in backends:
        with ExitStack() as stack:
            setup = stack.enter_context(conveyor(backend, args.durable))
            client = stack.enter_context(client_for(setup))
            other = None
            if args.baseline_src is not None:
                theirs = stack.enter_context(conveyor(backend, args.durable, args.baseline_src))
                other = (theirs, stack.enter_context(client_for(theirs)))
            for case in cases:
                profile = args.profile if backend == backends[0] else None
                if profile is not None and case != cases[0]:
                    profile = profile.with_name(f"{profile.stem}-{case}{profile.suffix}")
                if not first:  # the previous case's files were just removed
                    sync()
                    print(f"waiting {INODE_RECENCY:.0f} s: freed inodes become reusable")
                    time.sleep(INODE_RECENCY)
                first = False
                measure_case(
                    setup, client, backend, case, args.rounds, args.durable, profile, other
                )
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
