"""Calls into the official Files.com JavaScript SDK (npm `files.com`, unchanged) under Node.

`tests/compat/files_js.js` performs the calls; `scripts/bootstrap test` installs
Node.js and the SDK (`npm ci`, package.json). Without them these tests fail
with a message saying what to run: they are part of the suite, not optional.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("files_js.js")
SDK = ROOT / "node_modules" / "files.com" / "package.json"


def sdk_version() -> str:
    version: str = json.loads(SDK.read_text())["version"]
    return version


def run_js(base_url: str, api_key: str | None, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Each call's answer: {"value": ...} or {"error": {"class", "code", "type", "message"}}."""
    node = shutil.which("node")
    if node is None or not SDK.exists():
        raise AssertionError(
            "Node.js and the npm package files.com are needed: run `scripts/bootstrap test`"
        )
    request = {"base_url": base_url, "api_key": api_key, "calls": list(calls)}
    done = subprocess.run(
        [node, str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(answers) == len(calls)
    return answers


def value(answer: dict[str, Any]) -> Any:
    assert "error" not in answer, answer["error"]
    return answer["value"]


def error_class(answer: dict[str, Any]) -> str:
    assert "error" in answer, answer
    name: str = answer["error"]["class"]
    return name


def js_error_class_for(error_types: list[tuple[str, int]]) -> dict[str, str]:
    """The class the SDK throws for an error body of each (type, http-code)."""
    calls = [{"error_class_for": {"type": t, "http-code": code}} for t, code in error_types]
    answers = run_js("http://127.0.0.1:9", None, *calls)
    return {t: value(a) for (t, _), a in zip(error_types, answers, strict=True)}
