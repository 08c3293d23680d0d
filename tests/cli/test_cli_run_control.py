"""`conveyor automation-runs cancel ID` and `rerun ID [--failed-only]` against the live
server, both databases: the record printed is the API's answer, errors are one line
with their exit code."""

from __future__ import annotations

import orjson
from cli_world import CliWorld, invoke

from conveyor.cli.output import EXIT_BAD_REQUEST, EXIT_NOT_FOUND, EXIT_USAGE


def test_cancel_prints_the_canceled_run(world: CliWorld) -> None:
    queued = world.runs[4]
    result = invoke(["automation-runs", "cancel", str(queued.id), "--format", "json"], world.env())
    assert (result.exit_code, result.stderr) == (0, "")
    printed = orjson.loads(result.stdout)
    assert (printed["status"], printed["run_stage"]) == ("canceled", "finished")
    assert printed == world.api(f"/automation_runs/{queued.id}").json()

    executing = world.runs[3]
    table = invoke(["automation-runs", "cancel", str(executing.id)], world.env())
    assert table.exit_code == 0
    lines = dict(line.split(None, 1) for line in table.stdout.splitlines() if " " in line)
    assert lines["status"].strip() == "running" and lines["cancel_requested_at"].strip()

    again = invoke(["automation-runs", "cancel", str(queued.id)], world.env())
    assert again.exit_code == EXIT_BAD_REQUEST and again.stdout == ""
    assert again.stderr.startswith(
        "conveyor: processing-failure/already-completed: Automation Run 5 already finished "
        "with status canceled"
    )
    missing = invoke(["automation-runs", "cancel", "999"], world.env())
    assert (missing.exit_code, missing.stdout) == (EXIT_NOT_FOUND, "")


def test_rerun_prints_the_new_run(world: CliWorld) -> None:
    failed = world.runs[1]
    result = invoke(
        ["automation-runs", "rerun", str(failed.id), "--failed-only", "--format", "json"],
        world.env(),
    )
    assert (result.exit_code, result.stderr) == (0, "")
    rerun = orjson.loads(result.stdout)
    assert (rerun["rerun_of_run_id"], rerun["rerun_from_node_id"]) == (
        failed.id,
        "failed_operations",
    )
    full = invoke(["automation-runs", "rerun", str(failed.id), "--format", "json"], world.env())
    assert orjson.loads(full.stdout)["rerun_from_node_id"] == "planning"
    # A run without failures has nothing to rerun with --failed-only.
    success = world.runs[0]
    refused = invoke(["automation-runs", "rerun", str(success.id), "--failed-only"], world.env())
    assert refused.exit_code == EXIT_BAD_REQUEST
    assert "no failed operations" in refused.stderr


def test_bulk_commands_pass_their_filter_and_options(world: CliWorld) -> None:
    """bulk-cancel and bulk-rerun share their filter options; each passes its own."""
    automation = ["--automation-id", str(world.automation_id), "--format", "json"]
    preview = invoke(["automation-runs", "bulk-cancel", *automation, "--dry-run"], world.env())
    assert (preview.exit_code, preview.stderr) == (0, "")
    answer = orjson.loads(preview.stdout)
    assert (answer["action"], answer["dry_run"], answer["count"]) == ("cancel", True, 2)
    assert sorted(answer["run_ids"]) == [world.runs[3].id, world.runs[4].id]

    failed = world.runs[1]
    rerun = invoke(
        ["automation-runs", "bulk-rerun", *automation, "--status", "failure", "--failed-only"],
        world.env(),
    )
    assert (rerun.exit_code, rerun.stderr) == (0, "")
    answer = orjson.loads(rerun.stdout)
    assert (answer["action"], answer["dry_run"], answer["run_ids"]) == ("rerun", False, [failed.id])
    [new_id] = answer["rerun_ids"]
    assert world.api(f"/automation_runs/{new_id}").json()["rerun_from_node_id"] == (
        "failed_operations"
    )

    refused = invoke(["automation-runs", "bulk-cancel", "--failed-only"], world.env())
    assert refused.exit_code == EXIT_USAGE and "--failed-only" in refused.stderr
