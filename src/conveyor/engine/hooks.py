"""Test-only pauses inside the engine, so crash tests can kill a worker at chosen moments.

`CONVEYOR_TEST_ENGINE_DELAYS="plan=0.3,operation=0.02"` makes a worker sleep
0.3 s after computing a plan and before committing it, and 0.02 s after
each operation's file action and before committing its outcome: the two
windows where a crash is hardest to survive. Unset (always, outside tests),
the hooks do nothing. This is a debugging aid, not a setting, so it is read
here rather than in `conveyor.config`.
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
        )
