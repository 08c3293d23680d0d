"""The list and find endpoints answer with the seed's fields over real HTTP, on both databases."""

from __future__ import annotations

import httpx

from conveyor.testing.seed import Seeder
from conveyor.testing.server import ServerThread

SEED_FIELDS = {
    "id",
    "automation_id",
    "completed_at",
    "created_at",
    "runtime",
    "status",
    "run_stage",
    "successful_operations",
    "failed_operations",
    "status_messages_url",
    "retry_at",
    "retried_at",
    "retried_in_run_id",
    "retry_of_run_id",
    "cancel_requested_at",
    "rerun_of_run_id",
    "rerun_from_node_id",
}


def test_list_and_find(server: ServerThread, seed: Seeder) -> None:
    alice = seed.account("alice")
    automation = seed.automation(alice)
    finished = seed.run(automation, outcome=(2, 1))
    queued = seed.run(automation)
    headers = {"X-FilesAPI-Key": alice.key}
    response = httpx.get(
        f"{server.url}/api/rest/v1/automation_runs",
        params={"automation_id": automation},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body] == [queued.id, finished.id]
    assert all(set(r) == SEED_FIELDS for r in body)
    assert body[1]["status"] == "partial_failure"
    assert body[1]["run_stage"] == "finished"
    assert (body[1]["successful_operations"], body[1]["failed_operations"]) == (2, 1)
    assert body[0]["completed_at"] is None
    one = httpx.get(f"{server.url}/api/rest/v1/automation_runs/{finished.id}", headers=headers)
    assert one.json() == body[1]
