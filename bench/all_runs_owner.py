"""The all-runs view for a user who owns few automations: their automations' own
ranges merged against the filter's ranges with each run's automation checked.

On `bench/all_runs_depth.py`'s SQLite database (seeded here if missing: 2,000,000
runs of 1,000 automations, of which `bench-few` owns 10), times the first page of
1,000 of `store.all_runs.list_all_runs` as `bench-few`, with MERGED_RANGES at its
value (merged) and at 0 (every run checked), interleaved, medians in ms:

    .venv/bin/python bench/all_runs_owner.py
    .venv/bin/python bench/all_runs_owner.py --runs 50000    # quick
"""

from __future__ import annotations

import argparse
import statistics
import time

from all_runs_depth import _seed_sqlite
from common import SECRET, load_average, print_machine
from conveyor.domain.automations import Trigger
from conveyor.domain.listing import CursorCodec, parse_all_runs_query
from conveyor.store import all_runs
from conveyor.store.database import Database
from conveyor.store.prepared import run_steps
from conveyor.store.users import User


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2_000_000, help="runs in all")
    parser.add_argument("--rounds", type=int, default=7, help="timed pages of each way")
    args = parser.parse_args()
    print_machine()
    url, keys = _seed_sqlite(args.runs)
    db = Database(url)
    viewer = User(keys.few_id, "bench-few", False)
    codec = CursorCodec(SECRET.encode())
    triggers = [t.value for t in Trigger]
    merged = all_runs.MERGED_RANGES
    for extra in ([], [("filter[status]", "failure,partial_failure")]):
        query = parse_all_runs_query([("per_page", "1000"), *extra], codec, triggers)
        times: dict[int, list[float]] = {merged: [], 0: []}
        for _ in range(args.rounds):
            for limit in times:
                all_runs.MERGED_RANGES = limit
                with db.read() as conn:
                    started = time.perf_counter()
                    page = run_steps(conn, all_runs.list_all_runs(conn.dialect, query, viewer))
                    times[limit].append(time.perf_counter() - started)
                assert len(page.rows) == 1000, "the first page is not full"
        all_runs.MERGED_RANGES = merged
        ms = {limit: statistics.median(t) * 1000 for limit, t in times.items()}
        label = ", ".join(f"{k}={v}" for k, v in extra) or "no filter"
        print(
            f"sqlite  owner of 10 automations, {label:<45} first page: own ranges merged "
            f"{ms[merged]:7.1f}  every run checked {ms[0]:7.1f}"
        )
    db.dispose()
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
