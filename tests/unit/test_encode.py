"""The run encoder unpacks each row into RunRow's field names, in RunRow's order: every
field of a run must land in its own JSON field, from a RunRow or the driver's tuple."""

from __future__ import annotations

import orjson

from conveyor.api.encode import RunEncoder
from conveyor.clock import to_rfc3339
from conveyor.domain.signing import UrlSigner
from conveyor.store.runs import RunRow

HOUR_US = 3600 * 1_000_000


def test_each_run_field_is_encoded_from_its_own_column() -> None:
    # Every field a value no other field has, so a field read from the wrong place shows.
    row = RunRow(
        id=101,
        automation_id=102,
        completed_at=1_700_000_000_000_000 + 3 * HOUR_US,
        created_at=1_700_000_000_000_000,
        runtime=1_700_000_000_000_000 + HOUR_US,
        status="failure",
        run_stage="finished",
        successful_operations=103,
        failed_operations=104,
        trigger="manual",
        cancel_requested_at=1_700_000_000_000_000 + 5 * HOUR_US,
        cancel_requested_by="alice",
        rerun_of_run_id=105,
        rerun_from_node_id="node-7",
        retry_of_run_id=106,
        retried_in_run_id=107,
        retry_at=1_700_000_000_000_000 + 7 * HOUR_US,
        retried_at=1_700_000_000_000_000 + 9 * HOUR_US,
    )
    encoder = RunEncoder("http://conveyor.test", UrlSigner(b"s" * 32), 1_800_000_000)
    expected = {
        "id": row.id,
        "automation_id": row.automation_id,
        "completed_at": to_rfc3339(row.completed_at),
        "created_at": to_rfc3339(row.created_at),
        "runtime": to_rfc3339(row.runtime),
        "status": row.status,
        "run_stage": row.run_stage,
        "successful_operations": row.successful_operations,
        "failed_operations": row.failed_operations,
        "status_messages_url": encoder.status_messages_url(row.id),
        "retry_at": to_rfc3339(row.retry_at),
        "retried_at": to_rfc3339(row.retried_at),
        "retried_in_run_id": row.retried_in_run_id,
        "retry_of_run_id": row.retry_of_run_id,
        "cancel_requested_at": to_rfc3339(row.cancel_requested_at),
        "rerun_of_run_id": row.rerun_of_run_id,
        "rerun_from_node_id": row.rerun_from_node_id,
    }
    assert encoder.run(row) == expected
    assert orjson.loads(encoder.runs([row, tuple(row)])) == [expected, expected]
