"""Test-only pauses inside the engine, so crash tests can kill a worker at chosen moments.

`CONVEYOR_TEST_ENGINE_DELAYS="plan=0.3,operation=0.02"` makes a worker sleep
0.3 s after computing a plan and before committing it, and 0.02 s after
each operation's file action and before committing its outcome: the two
windows where a crash is hardest to survive. Unset (always, outside tests),
the hooks do nothing. This is a debugging aid, not a setting, so it is read
here rather than in `conveyor.config`.

Two more pauses serve the stall tests: `act=S` sleeps after the lease check
(the fence) and before a file action that removes or replaces a file, and
`commit=S` sleeps inside a batch's commit transaction, after the lease row
was updated (so its lock is held). Each prints `test hook: act|commit <run>
<seq>` first, so a test can stop the process inside the pause.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

ENV_VAR = "CONVEYOR_TEST_ENGINE_DELAYS"


def _nothing(*_args: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Hooks:
    # Called with the run id after planning, before the plan is committed.
    before_plan_commit: Callable[[int], None] = _nothing
    # Called with the run id and seq after the file action, before its commit.
    after_operation: Callable[[int, int], None] = _nothing
    # Called with the run id and seq after the fence, before a destructive file action.
    before_action: Callable[[int, int], None] = _nothing
    # Called with the run id and first seq inside a batch's commit transaction.
    in_commit: Callable[[int, int], None] = _nothing

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Hooks:
        raw = (os.environ if env is None else env).get(ENV_VAR, "")
        delays: dict[str, float] = {}
        for part in raw.split(","):
            name, _, value = part.partition("=")
            if name.strip() and value.strip():
                delays[name.strip()] = float(value)
        plan = delays.get("plan", 0.0)
        operation = delays.get("operation", 0.0)
        return cls(
            before_plan_commit=(lambda _run: time.sleep(plan)) if plan else _nothing,
            after_operation=(lambda _run, _seq: time.sleep(operation)) if operation else _nothing,
            before_action=_announced("act", delays.get("act", 0.0)),
            in_commit=_announced("commit", delays.get("commit", 0.0)),
        )


def _announced(name: str, seconds: float) -> Callable[[int, int], None]:
    """A pause that first prints its name, run and seq (for a test watching the output)."""
    if not seconds:
        return _nothing

    def pause(run_id: int, seq: int) -> None:
        print(f"test hook: {name} {run_id} {seq}", flush=True)
        time.sleep(seconds)

    return pause
