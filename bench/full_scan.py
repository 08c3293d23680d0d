"""Figure 3: walking every run of an automation with Conveyor's SDK and with the official one.

Walks all runs of the measured automation (1,000,000 at the recorded size),
per_page 10,000, newest first, with `conveyor.sdk` and with the official
Files.com SDK (`files_sdk`) against Conveyor's app served by uvicorn in a
subprocess, the SDKs taking turns (two walks each by default); prints runs
per second of each walk and of all, the CPU time of the client and of the
server per walk, and the server's resident memory (VmRSS) every 10 % of each
walk and its peak (VmHWM), read from /proc for the server's pid.

    .venv/bin/python bench/full_scan.py            # recorded size: 1,000,000 + 1,000,000 runs
    .venv/bin/python bench/full_scan.py --runs 20000 --backend sqlite   # quick
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from common import Seeded, ServerProcess, run_on_seeded

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


def walk(name: str, db: Seeded, server: ServerProcess) -> tuple[float, float]:
    """Walk the whole list once; returns (seconds, client CPU seconds). Prints the
    rate, both processes' CPU time and the server's memory along the walk."""
    step = db.runs // 10
    rss = [server.status("VmRSS")]
    server_cpu = server.cpu_seconds()
    client_cpu = time.process_time()
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
    client_cpu = time.process_time() - client_cpu
    server_cpu = server.cpu_seconds() - server_cpu
    assert count == db.runs, f"{name} walked {count:,} runs, not {db.runs:,}"
    mib = ", ".join(f"{kib / 1024:.0f}" for kib in rss)
    print(
        f"{db.backend:<10} {name:<13} {count:,} runs in {took:5.1f} s = {count / took:7,.0f} "
        f"runs/s (CPU s: client {client_cpu:4.1f}, server {server_cpu:4.1f}); server VmRSS "
        f"MiB at 0, 10, ... 100 %: {mib}; VmHWM {server.status('VmHWM') / 1024:.0f} MiB",
        flush=True,
    )
    return took, client_cpu


def measure(db: Seeded, walks: int) -> None:
    with tempfile.TemporaryDirectory() as home, ServerProcess("conveyor", db, Path(home)) as srv:
        print(
            f"{db.backend:<10} server pid {srv.pid}: VmRSS {srv.status('VmRSS') / 1024:.0f} MiB "
            "after start",
            flush=True,
        )
        seconds = {name: 0.0 for name in WALKS}
        for _ in range(walks):  # the SDKs take turns, so noise falls on both
            for name in WALKS:
                seconds[name] += walk(name, db, srv)[0]
    rates = {name: walks * db.runs / took for name, took in seconds.items()}
    ratio = rates["conveyor.sdk"] / rates["files_sdk"]
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(
        f"{db.backend:<10} over {walks} walks each: conveyor.sdk {rates['conveyor.sdk']:,.0f} "
        f"runs/s, files_sdk {rates['files_sdk']:,.0f} runs/s, ratio {ratio:.2f} "
        f"(goal >= {GOAL}: {verdict})",
        flush=True,
    )


def main() -> None:
    run_on_seeded(
        __doc__.splitlines()[0],
        measure,
        walks={"type": int, "default": 2, "help": "walks with each SDK, taking turns"},
    )


if __name__ == "__main__":
    main()
