"""/metrics over real HTTP: run counters from the lifecycle, queue depths from the database,
HTTP requests by route template, and several processes adding up (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from ops_support import Serve, sample, scrape

from conveyor.clock import ManualClock
from conveyor.domain.runs import RunStage
from conveyor.observability import runevents
from conveyor.store import runs
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

API = "/api/rest/v1"


def test_run_lifecycle_and_queue_depth(serve: Serve, db: Database, seed: Seeder) -> None:
    clock = ManualClock()
    server = serve(clock=clock)
    alice = seed.account("alice")
    automation = seed.automation(alice)
    before = scrape(server.url)
    created = [
        httpx.post(
            f"{server.url}{API}/automations/{automation}/manual_run",
            headers={"X-FilesAPI-Key": alice.key},
        ).json()["id"]
        for _ in range(3)
    ]
    middle = scrape(server.url)
    assert (
        sample(middle, "conveyor_runs_created_total", trigger="manual")
        - sample(before, "conveyor_runs_created_total", trigger="manual")
        == 3
    )
    assert sample(middle, "conveyor_runs_in_stage", stage="queued_for_planning") == 3
    assert sample(middle, "conveyor_queue_oldest_age_seconds", stage="queued_for_planning") == 0
    assert (
        sample(
            middle,
            "conveyor_http_requests_total",
            method="POST",
            route=f"{API}/automations/{{automation_id}}/manual_run",
            status="201",
        )
        - sample(
            before,
            "conveyor_http_requests_total",
            method="POST",
            route=f"{API}/automations/{{automation_id}}/manual_run",
            status="201",
        )
        == 3
    )
    clock.advance(7)
    first, second, third = created
    with db.write() as conn:
        runs.advance_stage(conn, first, RunStage.PLANNING)
        runs.advance_stage(conn, first, RunStage.QUEUED_FOR_EXECUTION)
        runs.advance_stage(conn, first, RunStage.EXECUTING)
        for ok in (True, True, False):
            runs.record_operation(conn, first, ok, clock.now())
        runs.finish_run(conn, first, clock.now() + 5_000_000)
        runs.advance_stage(conn, second, RunStage.PLANNING)
    after = scrape(server.url)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("conveyor_runs_finished_total", status="partial_failure") == 1
    assert delta("conveyor_operations_total", outcome="success") == 2
    assert delta("conveyor_operations_total", outcome="failure") == 1
    assert delta("conveyor_run_duration_seconds_count") == 1
    assert delta("conveyor_run_duration_seconds_sum") == pytest.approx(12.0)
    assert sample(after, "conveyor_runs_in_stage", stage="queued_for_planning") == 1
    assert sample(after, "conveyor_runs_in_stage", stage="planning") == 1
    assert sample(after, "conveyor_runs_in_stage", stage="executing") == 0
    assert sample(after, "conveyor_queue_oldest_age_seconds", stage="queued_for_planning") == 7
    assert third in created
    assert sample(after, "conveyor_database_up") == 1
    assert sample(after, "conveyor_workers_alive") == 0


def test_rolled_back_changes_are_not_counted(serve: Serve, db: Database, seed: Seeder) -> None:
    server = serve()
    automation = seed.automation(seed.account("alice"))
    before = scrape(server.url)
    with pytest.raises(RuntimeError), db.write() as conn:
        runs.create_run(conn, automation, 1, trigger="manual")
        runevents.lease_lost(conn)
        raise RuntimeError("the transaction fails after the changes")
    with db.write() as conn:
        runevents.lease_lost(conn)
    after = scrape(server.url)
    key = ("conveyor_runs_created_total", (("trigger", "manual"),))
    assert after.get(key, 0) == before.get(key, 0)
    assert (
        sample(after, "conveyor_lease_losses_total") - sample(before, "conveyor_lease_losses_total")
        == 1
    )


def test_scheduled_runs_report_their_lag(serve: Serve, db: Database, seed: Seeder) -> None:
    server = serve()
    automation = seed.automation(seed.account("alice"))
    before = scrape(server.url)
    with db.write() as conn:
        runs.create_run(conn, automation, 100_000_000, runtime=97_500_000, trigger="schedule")
    after = scrape(server.url)
    assert (
        sample(after, "conveyor_scheduler_lag_seconds_count")
        - sample(before, "conveyor_scheduler_lag_seconds_count")
        == 1
    )
    assert sample(after, "conveyor_scheduler_lag_seconds_sum") - sample(
        before, "conveyor_scheduler_lag_seconds_sum"
    ) == pytest.approx(2.5)


def test_unknown_paths_and_methods_keep_labels_bounded(serve: Serve) -> None:
    server = serve()
    for n in range(3):
        httpx.get(f"{server.url}/no/such/path/{n}")
    httpx.request("BREW", f"{server.url}/healthz")
    labels = {
        labels for name, labels in scrape(server.url) if name == "conveyor_http_requests_total"
    }
    routes = {dict(pairs)["route"] for pairs in labels}
    assert not any("no/such" in route for route in routes)
    assert "<unmatched>" in routes
    assert {dict(pairs)["method"] for pairs in labels} <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "OTHER",
    }


def test_metrics_can_be_turned_off(serve: Serve) -> None:
    assert httpx.get(f"{serve(metrics=False).url}/metrics").status_code == 404


CHILD = """
import sys
from conveyor.observability import metrics
metrics.RUNS_CREATED.labels("manual").inc(int(sys.argv[1]))
metrics.HTTP_REQUESTS.labels("GET", "/healthz", "200").inc()
"""


def test_several_processes_add_up(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, what each process counted is summed at scrape time."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    for count in ("2", "5"):
        subprocess.run([sys.executable, "-c", CHILD, count], env=env, check=True)
    render = (
        "from conveyor.observability import metrics; "
        "import sys; sys.stdout.write(metrics.render(None).decode())"
    )
    text = subprocess.run(
        [sys.executable, "-c", render], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert 'conveyor_runs_created_total{trigger="manual"} 7.0' in text
    assert 'conveyor_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
