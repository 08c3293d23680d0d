"""Rows to Files.com JSON, without validation models on the hot path.

Runs are encoded straight from `store.runs.RunRow`s with orjson; the OpenAPI
schema still describes them (conveyor.api.openapi).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from conveyor.clock import HOUR_PREFIXES, MINUTES_SECONDS, hour_prefix, to_rfc3339
from conveyor.domain.signing import HEX_LENGTH, UrlSigner
from conveyor.store.runs import RunRow


class RunEncoder:
    """Encodes `RunRow`s for one response."""

    def __init__(self, base_url: str, signer: UrlSigner, expires: int) -> None:
        self._prefix = f"{base_url}/api/rest/v1/automation_runs/"
        self._suffix = f"/status_messages?expires={expires}&signature="
        self._signer = signer
        self._expires = expires

    def status_messages_url(self, run_id: int) -> str:
        signature = self._signer.sign(run_id, self._expires)
        return f"{self._prefix}{run_id}{self._suffix}{signature}"

    def run(self, row: RunRow) -> dict[str, Any]:
        return self._records((row,))[0]

    def runs(self, rows: Sequence[RunRow]) -> bytes:
        return orjson.dumps(self._records(rows))

    def _records(self, rows: Sequence[RunRow]) -> list[dict[str, Any]]:
        # All the page's signatures in one call, then one loop with everything in
        # locals: this runs once per listed run. `created_at` and `completed_at`
        # are formatted here as `to_rfc3339` does (cached hour prefix, then the
        # minutes-and-seconds table), without its call per value.
        signatures = self._signer.signatures(self._expires, [row.id for row in rows])
        at = 0
        prefix, suffix, rfc3339 = self._prefix, self._suffix, to_rfc3339
        cached_hour, hour_text, minutes_seconds = HOUR_PREFIXES.get, hour_prefix, MINUTES_SECONDS
        records: list[dict[str, Any]] = []
        append = records.append
        for row in rows:
            created_at = row.created_at
            seconds = created_at // 1_000_000
            hour = seconds // 3600
            created = (cached_hour(hour) or hour_text(hour)) + minutes_seconds[seconds % 3600]
            completed = None
            if row.completed_at is not None:
                seconds = row.completed_at // 1_000_000
                hour = seconds // 3600
                completed = (cached_hour(hour) or hour_text(hour)) + minutes_seconds[seconds % 3600]
            run_id = row.id
            retry_at, retried_at, canceled = row.retry_at, row.retried_at, row.cancel_requested_at
            append(
                {
                    "id": run_id,
                    "automation_id": row.automation_id,
                    "completed_at": completed,
                    "created_at": created,
                    # A run not scheduled for a slot runs at its creation time.
                    "runtime": created if row.runtime == created_at else rfc3339(row.runtime),
                    "status": row.status,
                    "run_stage": row.run_stage,
                    "successful_operations": row.successful_operations,
                    "failed_operations": row.failed_operations,
                    "status_messages_url": (
                        f"{prefix}{run_id}{suffix}{signatures[at : at + HEX_LENGTH]}"
                    ),
                    # Run control (Files.com; docs/api.md says which version added each).
                    "retry_at": None if retry_at is None else rfc3339(retry_at),
                    "retried_at": None if retried_at is None else rfc3339(retried_at),
                    "retried_in_run_id": row.retried_in_run_id,
                    "retry_of_run_id": row.retry_of_run_id,
                    "cancel_requested_at": None if canceled is None else rfc3339(canceled),
                    "rerun_of_run_id": row.rerun_of_run_id,
                    "rerun_from_node_id": row.rerun_from_node_id,
                }
            )
            at += HEX_LENGTH
        return records
