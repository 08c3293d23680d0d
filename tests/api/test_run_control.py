"""Cancel, rerun and find_node over real HTTP, both databases: what each changes, and
every bad input refused in Files.com's error shape with nothing changed.

Runs are put in each state through the store's lifecycle functions (seed); the
engine's side of a cancel (an executing run stopping) is tests/engine/test_cancel.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from conveyor.domain.runs import RunStage
from conveyor.store import automations, run_control, runs, triggers
from conveyor.store import engine as engine_store
from conveyor.store.database import Database
from conveyor.store.schema import run_daily_counts, run_inputs, run_operations
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread

API = "/api/rest/v1/automation_runs"


class Api:
    def __init__(self, server: ServerThread, key: str) -> None:
        self.url = server.url + API
        self.headers = {"X-FilesAPI-Key": key}

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, **kwargs)


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


@pytest.fixture
def api(server: ServerThread, alice: Account) -> Api:
    return Api(server, alice.key)


def snapshot(db: Database) -> list[Any]:
    """Everything a refused request must leave as it was: runs, inputs, daily counts."""
    with db.read() as conn:
        rows = [tuple(r) for r in conn.execute(select(*runs.RUN_COLUMNS).order_by("id"))]
        rows += [tuple(r) for r in conn.execute(select(run_inputs))]
        rows += sorted(tuple(r) for r in conn.execute(select(run_daily_counts)))
        return rows


def daily(db: Database, automation_id: int) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            select(run_daily_counts.c.status, run_daily_counts.c.count).where(
                run_daily_counts.c.automation_id == automation_id
            )
        )
        return {status: count for status, count in rows if count}


def log_of(db: Database, run_id: int) -> list[str]:
    with db.read() as conn:
        return [m.message for m in runs.read_messages(conn, run_id)]


def check_error(reply: httpx.Response, status: int, type_: str, *words: str) -> None:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["type"] == type_ and body["http-code"] == status
    for word in words:
        assert word in body["error"], body["error"]


# ------------------------------------------------------------------ cancel


@pytest.mark.parametrize("stage", [RunStage.QUEUED_FOR_PLANNING, RunStage.QUEUED_FOR_EXECUTION])
def test_a_queued_run_is_canceled_at_once(
    api: Api, seed: Seeder, alice: Account, db: Database, stage: RunStage
) -> None:
    automation = seed.automation(alice)
    run = seed.run(automation, stage=stage)
    assert daily(db, automation) == {"running": 1}
    reply = api.post(f"/{run.id}/cancel", json={"id": run.id})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["status"], body["run_stage"]) == ("canceled", "finished")
    assert body["completed_at"] is not None and body["cancel_requested_at"] is not None
    assert body["completed_at"] == body["cancel_requested_at"]
    assert daily(db, automation) == {"canceled": 1}  # moved from running, not added
    assert (
        f"Run canceled by alice at {body['cancel_requested_at']} while {stage}"
        in (log_of(db, run.id)[-1])
    )
    # Canceling it again: it finished, so refused, naming the status; nothing changes.
    before = snapshot(db)
    again = api.post(f"/{run.id}/cancel")
    check_error(
        again, 422, "processing-failure/already-completed", f"Run {run.id}", "status canceled"
    )
    assert snapshot(db) == before


def test_an_executing_run_records_the_request_once(
    api: Api, seed: Seeder, alice: Account, db: Database
) -> None:
    automation = seed.automation(alice)
    run = seed.run(automation, stage=RunStage.EXECUTING)
    first = api.post(f"/{run.id}/cancel")
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["run_stage"]) == ("running", "executing")
    assert body["cancel_requested_at"] is not None
    assert "Cancel requested by alice" in log_of(db, run.id)[-1]
    # A second request while the first is pending changes nothing and is not an error.
    before = snapshot(db)
    second = api.post(f"/{run.id}/cancel")
    assert second.status_code == 200 and second.json() == body
    assert snapshot(db) == before
    assert daily(db, automation) == {"running": 1}


@pytest.mark.parametrize("outcome", [(2, 0), (1, 1), (0, 2)])
def test_canceling_a_finished_run_is_refused_naming_its_status(
    api: Api, seed: Seeder, alice: Account, db: Database, outcome: tuple[int, int]
) -> None:
    run = seed.run(seed.automation(alice), outcome=outcome)
    before = snapshot(db)
    reply = api.post(f"/{run.id}/cancel")
    check_error(reply, 422, "processing-failure/already-completed", f"status {run.status.value}")
    assert snapshot(db) == before


def test_cancel_and_rerun_of_a_missing_or_invisible_run_are_404(
    server: ServerThread, api: Api, seed: Seeder, db: Database
) -> None:
    bob = seed.account("bob")
    theirs = seed.run(seed.automation(bob), stage=RunStage.QUEUED_FOR_PLANNING)
    done = seed.run(seed.automation(bob), outcome=(1, 0))
    before = snapshot(db)
    for path in (f"/{theirs.id}/cancel", f"/{done.id}/rerun", "/999999/cancel", "/999999/rerun"):
        check_error(api.post(path), 404, "not-found", "not found")
    check_error(api.get(f"/{done.id}/node", params={"node_id": "planning"}), 404, "not-found")
    assert snapshot(db) == before
    # The owner, and an admin, may.
    admin = seed.account("root", admin=True)
    assert Api(server, admin.key).post(f"/{theirs.id}/cancel").status_code == 200


def test_bad_parameters_are_refused_by_name(
    api: Api, seed: Seeder, alice: Account, db: Database
) -> None:
    automation = seed.automation(alice)
    queued = seed.run(automation, stage=RunStage.QUEUED_FOR_PLANNING)
    done = seed.run(automation, outcome=(3, 0))
    before = snapshot(db)
    invalid = "bad-request/request-params-invalid"
    check_error(api.post(f"/{queued.id}/cancel", json={"reason": "x"}), 400, invalid, "reason")
    check_error(api.post(f"/{queued.id}/cancel", json={"id": queued.id + 1}), 400, invalid, "id")
    check_error(api.post(f"/{queued.id}/cancel", content=b"[1]"), 400, invalid, "JSON object")
    check_error(api.post("/abc/cancel"), 400, invalid)
    check_error(api.post(f"/{done.id}/rerun", json={"node_id": "step2"}), 400, invalid, "node_id")
    check_error(api.post(f"/{done.id}/rerun", json={"node_id": 3}), 400, invalid, "node_id")
    check_error(api.post(f"/{done.id}/rerun", json={"failed_only": "maybe"}), 400, invalid)
    check_error(
        api.post(f"/{done.id}/rerun", json={"failed_only": True, "node_id": "planning"}),
        400,
        invalid,
        "contradicts",
    )
    # failed_only on a run without failures: nothing to rerun.
    check_error(
        api.post(f"/{done.id}/rerun", params={"failed_only": "true"}),
        400,
        invalid,
        "no failed operations",
    )
    check_error(api.post(f"/{done.id}/rerun", json={"when": "now"}), 400, invalid, "when")
    check_error(api.get(f"/{done.id}/node"), 400, "bad-request/request-params-required", "node_id")
    check_error(api.get(f"/{done.id}/node", params={"node_id": "x"}), 400, invalid, "node_id")
    assert snapshot(db) == before


# ------------------------------------------------------------------- rerun


def test_a_rerun_is_a_new_linked_run_with_the_same_runtime_and_inputs(
    api: Api, seed: Seeder, alice: Account, db: Database
) -> None:
    automation = seed.automation(alice)
    payload = {"method": "POST", "query": {"batch": "7"}, "body": {"region": "eu"}}
    with db.write() as conn:
        run_id = triggers.create_triggered_run(
            conn,
            automation,
            1_700_000_000_000_000,
            trigger="webhook",
            kind="webhook",
            payload=payload,
            messages=[],
        )
        for stage in (RunStage.PLANNING, RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING):
            runs.advance_stage(conn, run_id, stage)
        runs.record_operation(conn, run_id, False, 1_700_000_000_000_000)
        runs.finish_run(conn, run_id, 1_700_000_000_000_000)
    original = api.get(f"/{run_id}").json()

    reply = api.post(f"/{run_id}/rerun", json={"id": run_id, "node_id": "failed_operations"})
    assert reply.status_code == 201, reply.text
    rerun = reply.json()
    assert rerun["id"] != run_id and rerun["automation_id"] == automation
    assert (rerun["status"], rerun["run_stage"]) == ("running", "queued_for_planning")
    assert rerun["runtime"] == original["runtime"] != rerun["created_at"]
    assert (rerun["rerun_of_run_id"], rerun["rerun_from_node_id"]) == (
        run_id,
        "failed_operations",
    )
    assert api.get(f"/{run_id}").json() == original  # the original is unchanged
    with db.read() as conn:
        assert triggers.run_input(conn, rerun["id"]) == ("webhook", payload)
        trigger = conn.execute(
            select(runs.runs_t.c.trigger).where(runs.runs_t.c.id == rerun["id"])
        ).scalar_one()
    assert trigger == "webhook"
    assert log_of(db, rerun["id"])[0].startswith(
        f"Rerun of run {run_id} from node failed_operations, requested by alice"
    )
    # Without a node: a full rerun (planning).
    full = api.post(f"/{run_id}/rerun").json()
    assert (full["rerun_of_run_id"], full["rerun_from_node_id"]) == (run_id, "planning")


def test_reruns_of_a_scheduled_slot_never_collide_with_it(
    api: Api, seed: Seeder, alice: Account, db: Database
) -> None:
    automation = seed.automation(alice)
    slot = 1_700_000_000_000_000
    with db.write() as conn:
        (run_id,) = triggers.create_slot_runs(
            conn, slot, [triggers.SlotRun(automation, slot, "daily", "Scheduled.")]
        )
        for stage in (RunStage.PLANNING, RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING):
            runs.advance_stage(conn, run_id, stage)
        runs.finish_run(conn, run_id, slot)
    first = api.post(f"/{run_id}/rerun")
    second = api.post(f"/{run_id}/rerun")
    assert first.status_code == second.status_code == 201
    assert (
        first.json()["runtime"]
        == second.json()["runtime"]
        == api.get(f"/{run_id}").json()["runtime"]
    )
    # The scheduler inserting the slot again still finds it taken (no second slot run).
    with db.write() as conn:
        again = triggers.create_slot_runs(
            conn, slot, [triggers.SlotRun(automation, slot, "daily", "Scheduled.")]
        )
    assert again == []


def test_rerun_of_an_unfinished_run_is_refused_naming_its_stage(
    api: Api, seed: Seeder, alice: Account, db: Database
) -> None:
    automation = seed.automation(alice)
    for stage in (RunStage.QUEUED_FOR_PLANNING, RunStage.EXECUTING):
        run = seed.run(automation, stage=stage)
        before = snapshot(db)
        check_error(
            api.post(f"/{run.id}/rerun"),
            422,
            "processing-failure/resource-locked",
            f"Run {run.id} is {stage.value}",
        )
        assert snapshot(db) == before


def test_rerun_of_a_disabled_automation_is_refused(
    api: Api, seed: Seeder, alice: Account, db: Database
) -> None:
    automation = seed.automation(alice)
    run = seed.run(automation, outcome=(1, 0))
    with db.write() as conn:
        current = automations.get_automation(conn, automation)
        assert current is not None
        automations.update_automation(conn, current, {"disabled": True}, current.created_at + 1)
    before = snapshot(db)
    check_error(
        api.post(f"/{run.id}/rerun"),
        422,
        "processing-failure/automation-cannot-be-run-manually",
        "disabled",
    )
    assert snapshot(db) == before


def test_the_store_functions_other_surfaces_call(
    seed: Seeder, alice: Account, db: Database
) -> None:
    """`store.run_control` as bulk actions and the web UI call it: the same rules."""
    automation = seed.automation(alice)
    queued = seed.run(automation, stage=RunStage.QUEUED_FOR_PLANNING)
    failed = seed.run(automation, outcome=(1, 2))
    with db.write() as conn:
        canceled = run_control.request_cancel(conn, queued.id, by="ops", now=queued.created_at + 5)
        rerun = run_control.create_rerun(
            conn, failed.id, by="ops", now=failed.created_at + 5, failed_only=True
        )
    assert (canceled.status.value, canceled.cancel_requested_by) == ("canceled", "ops")
    assert (rerun.rerun_of_run_id, rerun.runtime) == (failed.id, failed.runtime)
    with db.read() as conn:
        assert run_control.rerun_scope(conn, rerun.id) is not None
    with pytest.raises(Exception, match="already finished with status canceled"), db.write() as c:
        run_control.request_cancel(c, queued.id, by="ops", now=queued.created_at + 6)


# --------------------------------------------------------------- find_node


def test_find_node_shows_each_node_of_a_run(api: Api, seed: Seeder, alice: Account) -> None:
    automation = seed.automation(alice)
    done = seed.run(automation, outcome=(3, 2))
    nodes = {
        node: api.get(f"/{done.id}/node", params={"node_id": node, "id": done.id}).json()
        for node in ("planning", "execution", "failed_operations")
    }
    assert nodes["planning"]["status"] == "success"
    assert nodes["execution"]["status"] == "partial_failure"
    assert (
        nodes["execution"]["successful_operations"],
        nodes["execution"]["failed_operations"],
    ) == (3, 2)
    assert (
        nodes["failed_operations"]["status"],
        nodes["failed_operations"]["failed_operations"],
    ) == (
        "failure",
        2,
    )
    assert {n["run_stage"] for n in nodes.values()} == {"finished"}
    # Files.com's edges and outlets: planning -> execution -> failed_operations.
    assert [n["inputs"] for n in nodes.values()] == [
        [],
        [{"node_id": "planning", "outlet": "operations"}],
        [{"node_id": "execution", "outlet": "failed"}],
    ]
    assert nodes["execution"]["outputs"]["succeeded"] == {"count": 3, "item_kind": "operation"}
    assert nodes["failed_operations"]["outputs"]["failed"]["count"] == 2
    assert nodes["planning"]["input_items"] == {"trigger": []}  # a plain manual run
    assert all("output_items" not in n for n in nodes.values())
    queued = seed.run(automation, stage=RunStage.QUEUED_FOR_PLANNING)
    plan = api.get(f"/{queued.id}/node", params={"node_id": "planning"}).json()
    execution = api.get(f"/{queued.id}/node", params={"node_id": "execution"}).json()
    assert (plan["status"], execution["status"]) == ("queued", "pending")


def test_find_node_outputs_count_the_plan_and_what_a_cancel_left_undone(
    api: Api, seed: Seeder, alice: Account
) -> None:
    now = 1_700_000_000_000_000
    run = seed.run(seed.automation(alice), stage=RunStage.EXECUTING)
    with seed.db.write() as conn:
        conn.execute(run_inputs.insert().values(run_id=run.id, kind="webhook", payload='{"n": 1}'))
        engine_store.insert_operations(
            conn,
            run.id,
            [
                {"seq": i, "kind": kind, "source": f"in/{i}", "destination": f"out/{i}"}
                for i, kind in enumerate(["copy", "refuse", "copy", "copy"], 1)
            ],
        )
        for seq, state in ((1, "done"), (2, "failed")):
            conn.execute(
                update(run_operations)
                .where(run_operations.c.run_id == run.id, run_operations.c.seq == seq)
                .values(state=state, finished_at=now)
            )
            runs.record_operation(conn, run.id, state == "done", now)
        run_control.request_cancel(conn, run.id, by="alice", now=now)
        run_control.finish_canceled(conn, run.id, now, "the test stopped it")
    nodes = {
        node: api.get(f"/{run.id}/node", params={"node_id": node}).json()
        for node in ("planning", "execution", "failed_operations")
    }
    assert nodes["planning"]["outputs"] == {"operations": {"count": 4, "item_kind": "operation"}}
    assert nodes["planning"]["input_items"] == {"trigger": [{"n": 1}]}
    failed = {
        "count": 1,
        "item_kind": "operation",
        "errors": {"refused": 1, "operation-failed": 0},
    }
    assert nodes["execution"]["status"] == "canceled"
    assert nodes["execution"]["outputs"] == {
        "succeeded": {"count": 1, "item_kind": "operation"},
        "failed": failed,
        "not_performed": {"count": 2, "item_kind": "operation"},
    }
    assert nodes["failed_operations"]["outputs"] == {"failed": failed}
