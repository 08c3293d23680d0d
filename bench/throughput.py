"""Figure 2: how close Conveyor's list endpoint comes to the least a server must do.

Pages of 1,000 and of 10,000 runs per second from Conveyor's real app
(bench/servers.py conveyor: create_app under uvicorn, as `conveyor serve`
runs it) divided by the same pages from the baseline (bench/servers.py
baseline: the same SQL through the raw driver, the same JSON through orjson,
a bare ASGI app under the same uvicorn settings). The load is `wrk` on
127.0.0.1, bounded in time, cycling through pages that start at 0 %, 5 %, ...
95 % of the list (keyset cursors for Conveyor, the same anchors for the
baseline). The two servers take turns, so noise on the shared machine falls
on both.

Needs wrk: `apt-get install -y wrk` (Debian).

    .venv/bin/python bench/throughput.py            # recorded size: 1,000,000 + 1,000,000 runs
    .venv/bin/python bench/throughput.py --runs 20000 --seconds 2 --backend sqlite   # quick
    .venv/bin/python bench/throughput.py --rate-limits   # Conveyor with its rate limits on

By default both servers run without rate limits, which would answer the load
with 429s. `--rate-limits` turns Conveyor's on, at a rate the load never
reaches, kept where `conveyor serve` keeps them by default (memory on SQLite,
the database on PostgreSQL): what every request then also pays.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx

from common import (
    Seeded,
    ServerProcess,
    anchor_at,
    arguments,
    backends,
    load_average,
    print_machine,
    require,
    seeded,
    signed_cursor,
)

PAGE_SIZES = (1000, 10_000)
POSITIONS = 20  # pages start at 0 %, 5 %, ... 95 % of the list
GOAL = 0.8  # issue 14: pages of 1,000 and 10,000, both databases
WRK_THREADS = 1
WRK_CONNECTIONS = 4

LUA = """
local paths = {%s}
local i = 0
wrk.headers["X-FilesAPI-Key"] = "%s"
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def paths(db: Seeded, per_page: int) -> tuple[list[str], list[str]]:
    """The same pages as Conveyor URLs (signed cursors) and as baseline URLs."""
    conveyor, baseline = [], []
    base = f"automation_id={db.automation_id}&per_page={per_page}"
    with db.connect() as conn:
        for n in range(POSITIONS):
            anchor = anchor_at(db, conn, db.runs * n // POSITIONS)
            if anchor is None:
                conveyor.append(f"/api/rest/v1/automation_runs?{base}")
                baseline.append(f"/?{base}")
            else:
                cursor = signed_cursor(db, anchor, per_page)
                conveyor.append(f"/api/rest/v1/automation_runs?{base}&cursor={cursor}")
                baseline.append(f"/?{base}&after={anchor[0]},{anchor[1]}")
    return conveyor, baseline


def same_pages(
    db: Seeded,
    conveyor: ServerProcess,
    baseline: ServerProcess,
    urls: list[str],
    base_urls: list[str],
) -> None:
    """Both servers answer each page with the same records in the same JSON shape."""
    headers = {"X-FilesAPI-Key": db.api_key}
    with httpx.Client(headers=headers, timeout=60) as client:
        for url, base_url in zip(urls[:3], base_urls[:3], strict=True):
            ours = client.get(conveyor.url + url).json()
            theirs = client.get(baseline.url + base_url).json()
            assert len(ours) == len(theirs) > 0
            for a, b in zip(ours, theirs, strict=True):
                assert list(a) == list(b), "the baseline's fields differ"
                assert {**a, "status_messages_url": ""} == {**b, "status_messages_url": ""}


def wrk(server: ServerProcess, script: Path, seconds: int) -> tuple[int, float]:
    """(pages answered, seconds) of one bounded wrk run; any failed request aborts."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{WRK_CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            server.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests against {server.kind}:\n{out}")
    found = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    assert found, out
    took = float(found.group(2)) / (1000 if found.group(3) == "ms" else 1)
    return int(found.group(1)), took


UNREACHED = str(10**9)  # requests per second and burst: a limit the load never meets


def measure(
    db: Seeded,
    seconds: int,
    rounds: int,
    no_gc_freeze: bool,
    rate_limits: bool = False,
    other_src: Path | None = None,
) -> None:
    env = {"BENCH_NO_GC_FREEZE": "1"} if no_gc_freeze else {}
    if rate_limits:  # the baseline has none to turn on
        env.update(CONVEYOR_RATE_LIMIT_RATE=UNREACHED, CONVEYOR_RATE_LIMIT_BURST=UNREACHED)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        home = Path(tmp)
        # label -> server; "other": Conveyor running the code in --baseline-src.
        servers = {
            "conveyor": stack.enter_context(ServerProcess("conveyor", db, home / "c", env)),
            "baseline": stack.enter_context(ServerProcess("baseline", db, home / "b", env)),
        }
        if other_src is not None:
            other_env = {**env, "PYTHONPATH": str(other_src.resolve())}
            servers["other"] = stack.enter_context(
                ServerProcess("conveyor", db, home / "o", other_env)
            )
        for per_page in PAGE_SIZES:
            urls, base_urls = paths(db, per_page)
            same_pages(db, servers["conveyor"], servers["baseline"], urls, base_urls)
            scripts = {}
            for label in servers:
                script = home / f"{label}.lua"
                listed = base_urls if label == "baseline" else urls
                quoted = ", ".join(f'"{u}"' for u in listed)
                script.write_text(LUA % (quoted, db.api_key))
                scripts[label] = script
            for label, server in servers.items():  # warm-up: caches, pools, connections
                wrk(server, scripts[label], min(2, seconds))
            # Per server: pages, seconds, server CPU seconds.
            totals = {label: [0.0, 0.0, 0.0] for label in servers}
            rates: dict[str, list[str]] = {label: [] for label in servers}
            for _ in range(rounds):
                for label, server in servers.items():
                    cpu = server.cpu_seconds()
                    pages, took = wrk(server, scripts[label], seconds)
                    totals[label][0] += pages
                    totals[label][1] += took
                    totals[label][2] += server.cpu_seconds() - cpu
                    rates[label].append(f"{pages / took:.1f}")
            base_rate = totals["baseline"][0] / totals["baseline"][1]
            cpu_ms = {label: 1000 * t[2] / t[0] for label, t in totals.items()}
            for label in servers:
                if label == "baseline":
                    continue
                rate = totals[label][0] / totals[label][1]
                ratio = rate / base_rate
                verdict = "met" if ratio >= GOAL else "MISSED"
                name = "conveyor" if label == "conveyor" else f"conveyor of {other_src}"
                print(
                    f"{db.backend:<10} pages of {per_page:>6,}: {name} {rate:7.1f}/s "
                    f"(rounds {', '.join(rates[label])}), baseline {base_rate:7.1f}/s "
                    f"(rounds {', '.join(rates['baseline'])}), ratio {ratio:.2f} "
                    f"(goal >= {GOAL}: {verdict}); server CPU per page: {name} "
                    f"{cpu_ms[label]:.2f} ms, baseline {cpu_ms['baseline']:.2f} ms",
                    flush=True,
                )


def main() -> None:
    args = arguments(
        __doc__.splitlines()[0],
        seconds={"type": int, "default": 6, "help": "length of each timed wrk run"},
        rounds={"type": int, "default": 3, "help": "timed wrk runs per server and page size"},
        no_gc_freeze={
            "action": "store_true",
            "help": "both servers skip the gc.freeze() that `conveyor serve` does at start",
        },
        rate_limits={
            "action": "store_true",
            "help": "Conveyor with its rate limits on, at a rate the load never reaches",
        },
        baseline_src={
            "type": Path,
            "help": "also measure, in each round, Conveyor running the code in this `src` "
            "folder (e.g. `git -C /work/main archive HEAD src | tar -x -C /tmp/main`, "
            "then /tmp/main/src)",
        },
    )
    require("wrk", "install it with `apt-get install -y wrk`")
    print_machine()
    if args.no_gc_freeze:
        print("both servers without the gc.freeze() that `conveyor serve` does at start")
    if args.rate_limits:
        print(f"Conveyor with rate limits on: {UNREACHED} requests/s, burst {UNREACHED}")
    print(
        f"load: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {args.rounds} x {args.seconds} s "
        "per server and page size, servers taking turns"
    )
    for backend in backends(args):
        with seeded(backend, args.runs) as db:
            measure(
                db,
                args.seconds,
                args.rounds,
                args.no_gc_freeze,
                args.rate_limits,
                args.baseline_src,
            )
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
