"""The share of the engine workers' time spent writing per-file log rows, from a py-spy profile.

Reads a speedscope file written by py-spy with `--threads` (as
`copy_throughput.py --profile` writes it, or `py-spy record --pid PID --format
speedscope --threads --idle` of a `conveyor serve` or `conveyor worker`).
Counts the samples of the engine's worker threads (named `worker-...`, not
the heartbeat) while they plan or execute a run (`plan_run` or `execute_run`
on the stack) and, among them, those writing the per-file log rows:

- planning: `planner._insert_chunk` building the `Planned #N` lines (its list
  comprehension) or inserting them (`store.engine.insert_messages`);
- execution: `store.runs.record_operations` inserting the outcome lines (anything
  it runs except `_apply`, which counts the batch).

Prints both shares and the profile's top functions (self and inclusive).
`--exclude NAME` (repeatable) also prints the share among the samples whose
innermost frame is not NAME (time spent in NAME itself, mostly in the kernel
or waiting): `Storage._create_temp` (creating the temp file, bound by the disk
on a shared machine), `Connection.wait` (waiting for PostgreSQL's answer),
`Database.write` (waiting for the process's SQLite writer lock): what the share
would be if those took no time.

    .venv/bin/python bench/copy_throughput.py --case small --scale 0.1 --rounds 2 \\
        --backend sqlite --profile /tmp/copy.json
    .venv/bin/python bench/log_share.py /tmp/copy.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any


def _key(frame: dict[str, Any]) -> str:
    return f"{frame['name']} ({frame['file'].rsplit('/', 1)[-1]})"


def _below(names: list[str], caller: str) -> list[str]:
    """The function names called (directly or not) by the innermost `caller` frame."""
    for index in range(len(names) - 1, -1, -1):
        if names[index] == caller:
            return names[index + 1 :]
    return []


def classify(names: list[str]) -> str | None:
    """Which per-file log write a stack (outermost first) is in, if any."""
    planning = _below(names, "_insert_chunk")
    if planning and (planning[0].endswith("<listcomp>") or planning[0] == "insert_messages"):
        return "planning: Planned lines"
    outcome = _below(names, "record_operations")
    if outcome and "_apply" not in outcome:
        return "execution: outcome lines"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy speedscope JSON")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--exclude", action="append", default=[], help="a function's name")
    args = parser.parse_args()
    data = json.loads(args.profile.read_text())
    frames = data["shared"]["frames"]
    active = 0
    rest = 0  # samples without an --exclude function
    rest_hits = 0
    shares: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for profile in data["profiles"]:
        name = profile["name"]
        if "worker" not in name or "heartbeat" in name:
            continue
        for stack in profile["samples"]:
            stack_frames = [frames[i] for i in stack]
            names = [f["name"] for f in stack_frames]
            if "plan_run" not in names and "execute_run" not in names:
                continue
            active += 1
            found = classify(names)
            if found is not None:
                shares[found] += 1
            if names[-1] not in args.exclude:
                rest += 1
                rest_hits += found is not None
            own[_key(stack_frames[-1])] += 1
            for key in {_key(f) for f in stack_frames}:
                inclusive[key] += 1
    if not active:
        raise SystemExit("no worker samples while planning or executing in this profile")
    print(f"{args.profile}: {active} worker samples while planning or executing")
    for label in ("planning: Planned lines", "execution: outcome lines"):
        print(f"  {label}: {shares[label]} = {100 * shares[label] / active:.1f} %")
    total = sum(shares.values())
    print(f"  per-file log rows: {total} = {100 * total / active:.1f} % of the workers' time")
    if args.exclude:
        print(
            f"  without the time in {', '.join(args.exclude)} itself: {rest_hits} of {rest} = "
            f"{100 * rest_hits / max(rest, 1):.1f} %"
        )
    print("top (self):")
    for key, count in own.most_common(args.top):
        print(f"  {100 * count / active:5.1f} % {key}")
    print("top (inclusive, below Worker.step):")
    shown = 0
    for key, count in inclusive.most_common():
        if shown == args.top:
            break
        if count == active:  # the thread's own frames: every sample has them
            continue
        print(f"  {100 * count / active:5.1f} % {key}")
        shown += 1


if __name__ == "__main__":
    main()
