"""`conveyor worker` as real subprocesses for the engine tests: start, wait until ready, kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


class WorkerProcess:
    """One `conveyor worker` process; its output is collected on a thread."""

    def __init__(self, env: dict[str, str], concurrency: int = 1) -> None:
        self.proc = subprocess.Popen(
            [CONVEYOR, "worker", "--concurrency", str(concurrency)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def worker_ids(self) -> list[str]:
        """The ids the process's workers write as lease_owner, from its start line."""
        line = next(line for line in self.lines if "Conveyor worker started" in line)
        return line.split("[", 1)[1].split("]", 1)[0].split(", ")

    @property
    def started(self) -> bool:
        return any("Conveyor worker started" in line for line in self.lines)

    def wait_ready(self, timeout: float = 30) -> WorkerProcess:
        wait_for(lambda: self.started or self.proc.poll() is not None, timeout, "worker start")
        assert self.proc.poll() is None, f"worker exited early:\n{self.output}"
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no lease released, as when a machine dies."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll `condition` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def worker_env(
    database_url: str, storage_root: Path, home: Path, **settings: str
) -> dict[str, str]:
    env = {
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_STORAGE_ROOT": str(storage_root),
        "CONVEYOR_HOME": str(home),
    }
    env.update({f"CONVEYOR_{name.upper()}": value for name, value in settings.items()})
    return env
