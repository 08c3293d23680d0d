"""This process's background threads (file watcher, scheduler): restarted when they die,
and their state for `/readyz`.

A component reports itself down with the reason (its thread died, its last
step failed) and up again once it works; `/readyz` lists every component that
runs in this process under `checks` and is not ready while one is down.
A thread body that raises is logged and started again after a backoff that
doubles from one second up to a minute (back to one second after a minute of
running), so a fault that repeats cannot spin.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("conveyor.components")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
OK = "ok"

_lock = threading.Lock()
# (component name, instance) -> "ok" or why it is down; one process may run several.
_states: dict[tuple[str, int], str] = {}


def report(name: str, instance: object, problem: str | None) -> None:
    """`instance`'s component `name` works (problem None) or is down for `problem`."""
    with _lock:
        _states[(name, id(instance))] = OK if problem is None else problem


def forget(name: str, instance: object) -> None:
    """The component stopped on purpose: it no longer counts."""
    with _lock:
        _states.pop((name, id(instance)), None)


def states() -> dict[str, str]:
    """Each running component's state: "ok", or the reason of (one of) its down instances."""
    found: dict[str, str] = {}
    with _lock:
        for (name, _instance), state in sorted(_states.items()):
            if found.get(name, OK) == OK:
                found[name] = state
    return found


def supervise(
    name: str,
    instance: object,
    body: Callable[[], None],
    stop: threading.Event,
    *,
    first_backoff: float = FIRST_BACKOFF,
) -> None:
    """Run `body` until `stop` is set, starting it again (with backoff) whenever it raises
    or returns early; the component is reported down from the failure until `body`
    reports it up again."""
    delay = first_backoff
    while not stop.is_set():
        started = time.monotonic()
        error: Exception | None = None
        try:
            body()
            problem = "its thread stopped unexpectedly"
        except Exception as exc:
            error = exc
            problem = f"its thread failed ({type(exc).__name__}: {str(exc)[:200]})"
        if stop.is_set():
            return
        if time.monotonic() - started >= MAX_BACKOFF:
            delay = first_backoff
        log.error("%s: %s; restarting in %g s", name, problem, delay, exc_info=error)
        report(name, instance, f"{problem}; restarting in {delay:g} s")
        if stop.wait(delay):
            return
        delay = min(delay * 2, MAX_BACKOFF)
