"""`conveyor serve` as a real process: ready once its engine beats, JSON logs on stderr,
metrics of the runs its engine finished, a backup while it runs, a restore refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from conveyor.testing.postgres import free_port

CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]


def test_serve_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_PORT": str(port),
        "CONVEYOR_EMBEDDED_WORKERS": "1",
        "CONVEYOR_POLL_INTERVAL": "0.1",
        "CONVEYOR_LOG_LEVEL": "info",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:
        server = subprocess.Popen(
            [*CONVEYOR, "serve"], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        assert server.stdout is not None
        key = ""
        for _ in range(5):
            line = server.stdout.readline()
            if "API key" in line:
                key = line.split("API key ")[1].split()[0]
                break
        assert key, "the first start prints the admin key"
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "conveyor serve never became ready"
            time.sleep(0.1)
        assert ready.json()["checks"]["workers"] == "ok (1 alive)"

        headers = {"X-FilesAPI-Key": key}
        automation = httpx.post(
            f"{url}/api/rest/v1/automations",
            headers=headers,
            json={"automation": "create_folder", "destinations": ["made/a/", "made/b/"]},
        ).json()["id"]
        run = httpx.post(
            f"{url}/api/rest/v1/automations/{automation}/manual_run", headers=headers
        ).json()
        deadline = time.monotonic() + 60
        while True:
            shown = httpx.get(f"{url}/api/conveyor/v1/automation_runs/{run['id']}", headers=headers)
            if shown.json()["run_stage"] == "finished":
                break
            assert time.monotonic() < deadline, "the embedded engine did not finish the run"
            time.sleep(0.1)
        assert shown.json()["status"] == "success"
        assert shown.json()["log_expires_at"] is not None

        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
            for sample in family.samples
        }
        assert samples[("conveyor_runs_finished_total", (("status", "success"),))] == 1
        assert samples[("conveyor_operations_total", (("outcome", "success"),))] == 2
        assert samples[("conveyor_workers_alive", ())] == 1
        assert samples[("conveyor_run_queue_wait_seconds_count", (("queue", "planning"),))] == 1

        backup = subprocess.run(
            [*CONVEYOR, "db", "backup", str(tmp_path / "copy.db")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert backup.returncode == 0, backup.stderr
        refused = subprocess.run(
            [*CONVEYOR, "db", "restore", str(tmp_path / "copy.db")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 1
        assert str(server.pid) in refused.stderr
    finally:
        server.terminate()
        server.wait(timeout=60)
    lines = [orjson.loads(line) for line in stderr_path.read_text().splitlines() if line]
    access = [line for line in lines if line["logger"] == "conveyor.access"]
    runs = [line for line in lines if line["logger"] == "conveyor.runs"]
    assert any(
        line["route"] == "/api/rest/v1/automations/{automation_id}/manual_run"
        and line["status"] == 201
        for line in access
    )
    assert [line["stage"] for line in runs if line["run_id"] == run["id"]] == [
        "queued_for_planning",
        "planning",
        "queued_for_execution",
        "executing",
        "finished",
    ]
