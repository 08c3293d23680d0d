"""The server's memory under two cheap attacks on `conveyor serve` (a real subprocess).

- body: three concurrent unauthenticated POSTs of 200 MB each to /sign-in
  (raw sockets, Content-Length declared, the bytes sent as fast as the server
  takes them, until it answers or closes);
- log: 16 concurrent fetches of the plain-text log (the signed
  status_messages_url) of a run with 200,000 log lines.

Printed for each: the server's VmRSS before, its highest sampled VmRSS
during the attack (every 10 ms from /proc), VmHWM (the peak since the
process started) after, and what the clients got.

    .venv/bin/python bench/attacks.py --backend sqlite
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from common import PYTHON, conveyor_home, load_average, print_machine, stop_process, wait_started
from conveyor.domain.runs import MessageLevel
from conveyor.store import automations, runs
from conveyor.store import engine as engine_store
from conveyor.store.database import Database

BODY_BYTES = 200 * 1024 * 1024
BODY_POSTS = 3
LOG_LINES = 200_000
LOG_FETCHES = 16


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def during(pid: int, attack: Callable[[], list[str]]) -> tuple[int, int, int, list[str]]:
    """(VmRSS before, highest VmRSS sampled during, VmHWM after) in KiB, and the results."""
    before = status_kib(pid, "VmRSS")
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, status_kib(pid, "VmRSS"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results = attack()
    finally:
        done.set()
        sampler.join()
    return before, peak, status_kib(pid, "VmHWM"), results


def post_body(port: int) -> str:
    """One 200 MB POST to /sign-in; what came back (the status line) and bytes sent."""
    chunk = b"a" * (1 << 20)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(
            b"POST /sign-in HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {BODY_BYTES}\r\n\r\n".encode()
        )
        try:
            while sent < BODY_BYTES:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: the rest is never read
        try:
            answer = sock.recv(200).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            answer = f"no answer ({exc})"
    return f"{answer}; {sent / 1e6:.0f} MB sent"


def fetch_log(url: str) -> str:
    size = 0
    lines = 0
    with httpx.stream("GET", url, timeout=600) as reply:
        for chunk in reply.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return f"{reply.status_code}: {lines:,} lines, {size / 1e6:.1f} MB"


def parallel(count: int, work: Callable[[], str]) -> list[str]:
    results: list[str] = [""] * count

    def one(i: int) -> None:
        results[i] = work()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def seed_log(url: str) -> int:
    """A run with LOG_LINES log lines; its id."""
    db = Database(url, null_pool=True)
    now = int(time.time() * 1e6)
    with db.write() as conn:
        user_id = conn.exec_driver_sql("SELECT id FROM users WHERE name = 'bench'").scalar_one()
        automation = automations.create_automation(
            conn,
            user_id,
            now,
            name="long log",
            automation="create_folder",
            trigger="manual",
            destinations=("made",),
        )
        run_id = runs.create_run(conn, automation, now, now).id
    for start in range(0, LOG_LINES, 20_000):
        with db.write() as conn:
            engine_store.insert_messages(
                conn,
                run_id,
                now,
                [
                    (
                        MessageLevel.INFO,
                        f"Copied in/file-{n:06}.csv to out/file-{n:06}.csv (1234 bytes).",
                    )
                    for n in range(start, start + 20_000)
                ],
            )
    db.dispose()
    return run_id


def measure(backend: str) -> None:
    with conveyor_home(backend, "attacks") as home:
        run_id = seed_log(home.url)
        env = {**home.env, "CONVEYOR_EMBEDDED_WORKERS": "0", "CONVEYOR_ACCESS_LOG": "false"}
        log = open(home.path / "serve.log", "wb")  # noqa: SIM115
        process: subprocess.Popen[Any] = subprocess.Popen(
            [PYTHON, "-m", "conveyor.cli.main", "serve"], env=env, stdout=log, stderr=log
        )
        try:
            wait_started(process, lambda: _healthy(home.api), "conveyor serve")
            run = httpx.get(
                f"{home.api}/api/rest/v1/automation_runs/{run_id}",
                headers={"X-FilesAPI-Key": home.key},
            ).json()
            url = run["status_messages_url"]
            for name, attack in (
                ("body", lambda: parallel(BODY_POSTS, lambda: post_body(home.port))),
                ("log", lambda: parallel(LOG_FETCHES, lambda: fetch_log(url))),
            ):
                started = time.perf_counter()
                before, peak, hwm, results = during(process.pid, attack)
                took = time.perf_counter() - started
                print(
                    f"{backend:<10} {name} attack: VmRSS {before / 1024:.0f} MiB before, "
                    f"{peak / 1024:.0f} MiB at most during ({took:.1f} s); VmHWM "
                    f"{hwm / 1024:.0f} MiB; clients got: {sorted(set(results))}",
                    flush=True,
                )
        finally:
            stop_process(process)
            log.close()


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args()
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        measure(backend)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
