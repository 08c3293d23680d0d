"""The systemd units in deploy/systemd pass `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/opt/conveyor/.venv/bin/conveyor"


def test_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # scripts/test installs it, as it does PostgreSQL and Chromium: missing, it is a failure.
        pytest.fail("systemd-analyze is not installed (Debian: apt-get install systemd)")
    # verify checks that ExecStart exists: point it at this checkout's conveyor.
    conveyor = Path(sys.executable).with_name("conveyor")
    assert conveyor.exists()
    units = sorted(DEPLOY.glob("conveyor*.service")) + sorted(DEPLOY.glob("*.target"))
    assert {unit.name for unit in units} >= {
        "conveyor.service",
        "conveyor-api@.service",
        "conveyor-worker@.service",
        "conveyor.target",
    }
    for unit in units:
        text = unit.read_text()
        if unit.suffix == ".service":
            assert INSTALLED in text, unit.name
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(conveyor)))
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / unit.name) for unit in units)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if "conveyor" in line]
    assert not problems, problems
