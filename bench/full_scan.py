"""Figure 3: walking every run of an automation with Conveyor's SDK and with the official one.

Walks all runs of the measured automation (1,000,000 at the recorded size),
per_page 10,000, newest first, with `conveyor.sdk` and with the official
Files.com SDK (`files_sdk`) against Conveyor's app served by uvicorn in a
subprocess; prints runs per second of each and their ratio, and the server's
resident memory (VmRSS) every 10 % of each walk and its peak (VmHWM), read
from /proc for the server's pid.

    .venv/bin/python bench/full_scan.py            # recorded size: 1,000,000 + 1,000,000 runs
    .venv/bin/python bench/full_scan.py --runs 20000 --backend sqlite   # quick
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from common import Seeded, ServerProcess, arguments, backends, load_average, print_machine, seeded

PER_PAGE = 10_000
GOAL = 2.0


def conveyor_walk(url: str, key: str, automation_id: int) -> Iterable[Any]:
    from conveyor import sdk

    sdk.base_url = url
    sdk.set_api_key(key)
    params = {"automation_id": automation_id, "per_page": PER_PAGE}
    return sdk.automation_run.list(params).auto_paging_iter()


def official_walk(url: str, key: str, automation_id: int) -> Iterable[Any]:
    import files_sdk

    files_sdk.base_url = url
    files_sdk.set_api_key(key)
    params = {"automation_id": automation_id, "per_page": PER_PAGE}
    return files_sdk.automation_run.list(params).auto_paging_iter()


WALKS: dict[str, Callable[[str, str, int], Iterable[Any]]] = {
    "conveyor.sdk": conveyor_walk,
    "files_sdk": official_walk,
}


def walk(name: str, db: Seeded, server: ServerProcess) -> float:
    """Walk the whole list once; returns runs per second. Prints the server's memory."""
    step = db.runs // 10
    rss = [server.status("VmRSS")]
    started = time.perf_counter()
    count, previous = 0, None
    for run in WALKS[name](server.url, db.api_key, db.automation_id):
        # Newest first, and ids grow with creation time in the seeded data.
        assert previous is None or run.id < previous, "the walk repeated or skipped a run"
        previous = run.id
        count += 1
        if count % step == 0:
            rss.append(server.status("VmRSS"))
    took = time.perf_counter() - started
    assert count == db.runs, f"{name} walked {count:,} runs, not {db.runs:,}"
    rate = count / took
    mib = ", ".join(f"{kib / 1024:.0f}" for kib in rss)
    print(
        f"{db.backend:<10} {name:<13} {count:,} runs in {took:6.1f} s = {rate:9,.0f} runs/s; "
        f"server VmRSS MiB at 0, 10, ... 100 %: {mib}; "
        f"VmHWM {server.status('VmHWM') / 1024:.0f} MiB",
        flush=True,
    )
    return rate


def measure(db: Seeded) -> None:
    with tempfile.TemporaryDirectory() as home, ServerProcess("conveyor", db, Path(home)) as srv:
        print(
            f"{db.backend:<10} server pid {srv.pid}: VmRSS {srv.status('VmRSS') / 1024:.0f} MiB "
            "after start",
            flush=True,
        )
        rates = {name: walk(name, db, srv) for name in WALKS}
    ratio = rates["conveyor.sdk"] / rates["files_sdk"]
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(f"{db.backend:<10} conveyor.sdk / files_sdk = {ratio:.2f} (goal >= {GOAL}: {verdict})")


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    print_machine()
    for backend in backends(args):
        with seeded(backend, args.runs) as db:
            measure(db)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
