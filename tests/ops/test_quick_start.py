"""The quick start's `scripts/serve`, run for real from this checkout: it does not reinstall
when pyproject.toml is unchanged, it prints the commands to run next, and those
commands, pasted into a shell in another folder, work against the server it started."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conveyor.testing.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
UP_TO_DATE = "Conveyor in .venv is up to date (pyproject.toml unchanged since its install)"


@pytest.fixture(autouse=True)
def _suite_venv() -> None:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.fail("run the suite with this checkout's .venv/bin/pytest (scripts/test)")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if ".venv" not in part
    )
    return {**env, **extra}


def test_bootstrap_installs_only_when_pyproject_changed() -> None:
    # Installs if this .venv's stamp is stale (it is not, after scripts/test), then never.
    subprocess.run([ROOT / "scripts" / "bootstrap"], env=clean_env(), check=True, timeout=600)
    again = subprocess.run(
        [ROOT / "scripts" / "bootstrap"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert again.stdout == UP_TO_DATE + "\n"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    assert (ROOT / ".venv" / ".conveyor-install").read_text().split()[0] == digest


def test_serve_prints_the_next_commands_and_they_work(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = clean_env(CONVEYOR_HOME=str(home), CONVEYOR_PORT=str(port))
    subprocess.run([ROOT / "scripts" / "bootstrap"], env=env, check=True, timeout=600)
    server = subprocess.Popen(
        [ROOT / "scripts" / "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    printed: list[str] = []

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            printed.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("Conveyor serving on") for line in printed):
            assert server.poll() is None, printed
            assert time.monotonic() < deadline, printed
            time.sleep(0.05)
        assert printed[0] == UP_TO_DATE
        assert printed[1] == (
            "The conveyor command is in .venv/bin, not on PATH. Next, in another terminal:"
        )
        end = next(n for n, line in enumerate(printed) if line.startswith("Conveyor serving"))
        commands = [line.strip() for line in printed[2:end]]
        assert commands == [
            f"cd {ROOT} && source .venv/bin/activate    # puts conveyor on PATH",
            f"export CONVEYOR_HOME={home}",
            f"export CONVEYOR_URL=http://127.0.0.1:{port}",
            "export CONVEYOR_API_KEY=$(conveyor api-keys create --user alice)",
            "conveyor automations list",
        ]
        assert printed[end].startswith(f"Conveyor serving on http://127.0.0.1:{port} ")
        # Pasted into a new shell elsewhere, where conveyor is not on PATH.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        pasted = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(commands)],
            cwd=elsewhere,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pasted.returncode == 0, pasted.stderr
        assert pasted.stdout.split()[:2] == ["id", "name"]  # the (empty) automations table
        assert f"conveyor: database: {home / 'conveyor.db'} (SQLite)" in pasted.stderr
    finally:
        server.terminate()
        server.wait(timeout=60)
        reader.join(timeout=60)
