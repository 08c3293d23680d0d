"""Every shell block of README.md and docs/*.md runs, as written, against a live server.

The server is a real `conveyor serve` process on a fresh CONVEYOR_HOME; each block
runs in a new bash (`set -euo pipefail`), with real curl and the installed
`conveyor` on PATH (as after `source .venv/bin/activate`), in a folder that sees
this checkout's files. The environment holds what the docs take as given:
CONVEYOR_HOME (the server's), CONVEYOR_URL, alice's key as both
CONVEYOR_API_KEY and KEY, and an admin's key as ADMIN_KEY; alice holds `full` on
the storage root, as every user of an installation upgraded to folder
permissions does (docs/permissions.md). Alice owns automations 1 to 12 (7 is a weekly copy,
the rest make folders) and automation 1 has three finished runs, ids 1 to 3. The docs
use the default address http://127.0.0.1:8080; the server listens on a free port
and the blocks are run with that port instead.

A shell block fails the test when it exits non-zero or prints an API error
(`"http-code": 4xx/5xx`); a transcript's commands are checked one by one
(check_transcript). A block that cannot run here is marked in the
Markdown with its reason (tests/ops/doc_blocks.py) and is not run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from doc_blocks import TRANSCRIPT, Block, blocks, documents

from conveyor.testing.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
CONVEYOR = ROOT / ".venv" / "bin" / "conveyor"
DEFAULT_ADDRESS = "127.0.0.1:8080"
BLOCK_TIMEOUT = 60  # seconds; a block is a few commands against a local server
API_ERROR = re.compile(r'"http-code"\s*:\s*[45]\d\d')
BLOCKS = [block for document in documents(ROOT) for block in blocks(document)]
RUN = [block for block in BLOCKS if block.skip_reason is None]


@dataclass
class Live:
    url: str
    port: int
    env: dict[str, str]
    workdir: Path


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{CONVEYOR.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def seed(url: str, key: str) -> None:
    """Automations 1..12 of alice's (7 a weekly copy); runs 1..3 of automation 1, finished."""
    with httpx.Client(base_url=url, headers={"X-FilesAPI-Key": key}, timeout=30) as api:
        for number in range(1, 13):
            body: dict[str, object] = {
                "name": f"Automation {number}",
                "automation": "create_folder",
                "destinations": ["reports/%Y-%m-%d/", "reports/inbox/"],
            }
            if number == 7:
                body = {
                    "name": "Weekly copy",
                    "automation": "copy_file",
                    "source": "reports/*.csv",
                    "destinations": ["archive/%Y-%m-%d/"],
                    "trigger": "custom_schedule",
                    "schedule_days_of_week": [1],
                    "schedule_times_of_day": ["06:30"],
                    "schedule_time_zone": "Europe/Paris",
                }
            made = api.post("/api/rest/v1/automations", json=body)
            assert (made.status_code, made.json()["id"]) == (201, number), made.text
        for number in (1, 2, 3):
            run = api.post("/api/rest/v1/automations/1/manual_run").json()
            assert run["id"] == number
            path = f"/api/rest/v1/automation_runs/{number}"
            wait_for(
                lambda path=path: api.get(path).json()["run_stage"] == "finished",  # type: ignore[misc]
                f"run {number} to finish",
            )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("doc-commands")
    home, workdir, port = base / "home", base / "work", free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **base_env(),
        "CONVEYOR_HOME": str(home),
        "CONVEYOR_PORT": str(port),
        "CONVEYOR_EMBEDDED_WORKERS": "1",
        "CONVEYOR_POLL_INTERVAL": "0.2",
    }
    server = subprocess.Popen(
        [CONVEYOR, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, "conveyor serve")
        created = subprocess.run(
            [CONVEYOR, "api-keys", "create", "--user", "alice"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        key = created.stdout.strip()
        admin_key = subprocess.run(
            [CONVEYOR, "api-keys", "create", "--user", "admin", "--admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        granted = httpx.post(
            f"{url}/api/rest/v1/permissions",
            headers={"X-FilesAPI-Key": admin_key},
            json={"username": "alice", "path": "", "permission": "full"},
        )
        assert granted.status_code == 201, granted.text
        seed(url, key)
        # A folder that sees the checkout's files (scripts, bench, tests, .venv) and keeps
        # what the blocks write away from it; automation.json is the file cli.md creates from.
        workdir.mkdir()
        for entry in ROOT.iterdir():
            if entry.name not in {".git", "conveyor-data", "test-artifacts"}:
                (workdir / entry.name).symlink_to(entry)
        (workdir / "automation.json").write_bytes(
            orjson.dumps({"automation": "create_folder", "destinations": ["from-json/"]})
        )
        env.pop("CONVEYOR_PORT")
        env.update(CONVEYOR_URL=url, CONVEYOR_API_KEY=key, KEY=key, ADMIN_KEY=admin_key)
        yield Live(url, port, env, workdir)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_docs_have_shell_blocks_and_marked_ones_say_why() -> None:
    assert len(RUN) >= 10  # the extractor finds them (README, api, cli, operations ...)
    assert [block for block in RUN if block.path.name == "README.md"]
    # Blocks not run here; each mark carries its reason (an empty one fails collection).
    marked = {block.name: block.skip_reason for block in BLOCKS if block.skip_reason}
    assert all(reason and len(reason) > 10 for reason in marked.values()), marked


def run_bash(block: Block, script: str, live: Live) -> tuple[int, str, str]:
    """Run a script in bash, in a session of its own so that whatever it starts is
    stopped with it on a time-out."""
    shell = subprocess.Popen(
        ["bash", "-c", script.replace(DEFAULT_ADDRESS, f"127.0.0.1:{live.port}")],
        cwd=live.workdir,
        env=live.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = shell.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)
        stdout, stderr = shell.communicate()
        pytest.fail(f"{block.name} still ran after {BLOCK_TIMEOUT} s:\n{stdout}{stderr}")
    return shell.returncode, stdout, stderr


def check_transcript(block: Block, live: Live, results: Path) -> None:
    """Each `$ ` command runs in one bash, in order (so `echo $?` sees the one before).
    A command shown printing a `conveyor: KIND: ...` error must fail with that KIND
    of error; any other must exit 0 without an API error."""
    results.mkdir()
    script = []
    steps = block.steps()
    for number, step in enumerate(steps):
        out = results / str(number)
        script.append(
            f"{{ {step.command}\n}} >{out}.out 2>&1; status=$?; echo $status >{out}.rc; "
            "(exit $status)"
        )
    run_bash(block, "\n".join(script) + "\n", live)
    for number, step in enumerate(steps):
        status = int((results / f"{number}.rc").read_text())
        printed = (results / f"{number}.out").read_text()
        shown = f"{block.name}: $ {step.command}\nexited {status}, printed:\n{printed}"
        errors = [line for line in step.shown if line.startswith("conveyor: ")]
        if errors:
            kind = errors[0].split(": ")[1]
            assert status != 0, shown
            assert any(line.startswith(f"conveyor: {kind}") for line in printed.splitlines()), shown
        else:
            assert status == 0, shown
            assert not API_ERROR.search(printed), shown


@pytest.mark.parametrize("block", RUN, ids=[block.name for block in RUN])
def test_shell_block_runs(block: Block, live: Live, tmp_path: Path) -> None:
    if block.tag == TRANSCRIPT:
        check_transcript(block, live, tmp_path / "results")
        return
    status, stdout, stderr = run_bash(block, "set -euo pipefail\n" + block.text, live)
    shown = f"{block.name} exited {status}\n--- block\n{block.text}--- stdout\n"
    shown += f"{stdout}--- stderr\n{stderr}"
    assert status == 0, shown
    assert not API_ERROR.search(stdout + stderr), shown


def test_the_extractor_reads_fences_marks_and_transcripts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```sh\necho one \\\n  two\n```\n\n"
        "- item:\n\n  ```bash\n  echo in a list\n  ```\n\n"
        "<!-- not run by tests: a synopsis, with placeholders -->\n\n~~~shell\nconveyor X\n~~~\n\n"
        "```\n$ conveyor a \\\n    --b\nshown\n$ echo $?\n3\n```\n\n"
        "```\nplain output\n```\n\n```python\nprint(1)\n```\n"
    )
    found = blocks(page)
    assert [(b.line, b.tag, b.skip_reason) for b in found] == [
        (3, "sh", None),
        (10, "bash", None),
        (16, "shell", "a synopsis, with placeholders"),
        (20, TRANSCRIPT, None),
    ]
    assert found[0].text == "echo one \\\n  two\n"
    assert found[1].text == "echo in a list\n"
    assert [(step.command, step.shown) for step in found[3].steps()] == [
        ("conveyor a \\\n    --b", ["shown"]),
        ("echo $?", ["3"]),
    ]
    page.write_text("<!-- not run by tests: -->\n```sh\ntrue\n```\n")
    with pytest.raises(ValueError, match="needs its reason"):
        blocks(page)
