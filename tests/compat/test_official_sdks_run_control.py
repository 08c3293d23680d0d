"""Cancel, rerun and find_node through the official SDKs, unchanged, against a live server
(real HTTP on 127.0.0.1, both databases).

The Python SDK (2.0.19) has `automation_run.cancel(id)`, `rerun(id, {"node_id"})` and
`find_node(id, {"node_id"})`. The JavaScript SDK (1.2.314) has no method for
them yet, so it is driven through its own `Api.sendRequest`, which sends the
request and maps error answers exactly as its model methods do.
"""

from __future__ import annotations

from types import ModuleType

import files_sdk.error as sdk_error
import pytest
from files_sdk.models.automation_execution_node import AutomationExecutionNode
from files_sdk.models.automation_run import AutomationRun as SdkRun
from js_sdk import error_class, run_js, value

from conveyor.domain.runs import RunStage
from conveyor.testing.seed import Account, Seeder
from conveyor.testing.server import ServerThread


@pytest.fixture
def alice(seed: Seeder) -> Account:
    return seed.account("alice")


def test_python_sdk_cancel_rerun_and_find_node(
    files: ModuleType, seed: Seeder, alice: Account
) -> None:
    files.set_api_key(alice.key)
    automation = seed.automation(alice)
    queued = seed.run(automation, stage=RunStage.QUEUED_FOR_PLANNING)
    executing = seed.run(automation, stage=RunStage.EXECUTING)
    failed = seed.run(automation, outcome=(2, 1))

    canceled = files.automation_run.cancel(queued.id)
    assert isinstance(canceled, SdkRun)
    assert (canceled.status, canceled.id) == ("canceled", queued.id)
    assert canceled.cancel_requested_at is not None and canceled.completed_at is not None
    asked = files.automation_run.cancel(executing.id)
    assert (asked.status, asked.completed_at) == ("running", None)
    assert asked.cancel_requested_at is not None
    # The record's own method too (it sends the id again in the body).
    with pytest.raises(sdk_error.AlreadyCompletedError, match="status canceled"):
        files.automation_run.find(queued.id).cancel()

    rerun = files.automation_run.rerun(failed.id, {"node_id": "failed_operations"})
    assert isinstance(rerun, SdkRun)
    assert (rerun.rerun_of_run_id, rerun.rerun_from_node_id) == (failed.id, "failed_operations")
    assert rerun.status == "running" and rerun.id not in (queued.id, executing.id, failed.id)
    again = files.automation_run.find(failed.id).rerun({"node_id": "planning"})
    assert again["rerun_of_run_id"] == failed.id  # the record method answers the raw dict

    node = files.automation_run.find_node(failed.id, {"node_id": "execution"})
    assert isinstance(node, AutomationExecutionNode)
    assert (node.node_id, node.status, node.successful_operations, node.failed_operations) == (
        "execution",
        "partial_failure",
        2,
        1,
    )
    assert node.inputs == [{"node_id": "planning", "outlet": "operations"}]
    assert node.outputs is not None and node.outputs["succeeded"]["count"] == 2
    assert node.output_items is None  # not sent: docs/api.md, "The nodes of a run"
    plan = files.automation_run.find_node(failed.id, {"node_id": "planning"})
    assert (plan.inputs, plan.input_items) == ([], {"trigger": []})

    with pytest.raises(sdk_error.RequestParamsInvalidError, match="node_id"):
        files.automation_run.rerun(failed.id, {"node_id": "step-3"})
    with pytest.raises(sdk_error.ResourceLockedError, match="executing"):
        files.automation_run.rerun(executing.id, {"node_id": "planning"})
    with pytest.raises(sdk_error.NotFoundError):
        files.automation_run.cancel(999_999)


def test_javascript_sdk_cancel_and_rerun(
    server: ServerThread, seed: Seeder, alice: Account
) -> None:
    automation = seed.automation(alice)
    queued = seed.run(automation, stage=RunStage.QUEUED_FOR_PLANNING)
    failed = seed.run(automation, outcome=(0, 3))

    def send(path: str, params: dict[str, object] | None = None) -> dict[str, object]:
        return {"send": {"path": path, "verb": "POST", "params": params}, "model": "AutomationRun"}

    answers = run_js(
        server.url,
        alice.key,
        send(f"/automation_runs/{queued.id}/cancel"),
        send(f"/automation_runs/{queued.id}/cancel"),
        send(f"/automation_runs/{failed.id}/rerun", {"node_id": "failed_operations"}),
        send(f"/automation_runs/{failed.id}/rerun", {"failed_only": True}),
        send(f"/automation_runs/{failed.id}/rerun", {"node_id": "nope"}),
        send("/automation_runs/999999/rerun"),
        {"model": "AutomationRun", "method": "find", "args": [queued.id]},
    )
    canceled = value(answers[0])
    assert (canceled["id"], canceled["status"]) == (queued.id, "canceled")
    assert error_class(answers[1]) == "ProcessingFailure_AlreadyCompletedError"
    first, second = value(answers[2]), value(answers[3])
    assert first["rerun_of_run_id"] == second["rerun_of_run_id"] == failed.id
    assert first["rerun_from_node_id"] == second["rerun_from_node_id"] == "failed_operations"
    assert first["id"] != second["id"]
    assert error_class(answers[4]) == "BadRequest_RequestParamsInvalidError"
    assert error_class(answers[5]) == "NotFoundError"
    assert value(answers[6])["status"] == "canceled"
