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

    def runs(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """A page of runs as JSON: `rows` are RunRows, or the driver's rows in the
        same order (`store.runs.list_visible_runs`)."""
        return orjson.dumps(self._records(rows))

    def _records(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        # This runs once per listed run, so everything is in locals, and each row is
        # unpacked into RunRow's field names, in its order (tests/unit/test_encode.py
        # checks that each field lands where it belongs), rather than read by
        # attribute: a page's rows may then be the driver's own tuples, which the
        # cyclic garbage collector stops tracking, where RunRow objects, one per run,
        # stay tracked and are traversed by each collection (docs/architecture.md,
        # "API: the request path", has the measurement). `created_at` and
        # `completed_at` are formatted as `to_rfc3339` does (cached hour prefix, then
        # the minutes-and-seconds table), without its call per value.
        signatures = self._signer.signatures(self._expires, [row[0] for row in rows])
        at = 0
        prefix, suffix, rfc3339 = self._prefix, self._suffix, to_rfc3339
        cached_hour, hour_text, minutes_seconds = HOUR_PREFIXES.get, hour_prefix, MINUTES_SECONDS
        records: list[dict[str, Any]] = []
        append = records.append
        for (
            run_id,
            automation_id,
            completed_at,
            created_at,
            runtime,
            status,
            run_stage,
            successful_operations,
            failed_operations,
            _trigger,
            cancel_requested_at,
            _cancel_requested_by,
            rerun_of_run_id,
            rerun_from_node_id,
            retry_of_run_id,
            retried_in_run_id,
            retry_at,
            retried_at,
        ) in rows:
            seconds = created_at // 1_000_000
            hour = seconds // 3600
            created = (cached_hour(hour) or hour_text(hour)) + minutes_seconds[seconds % 3600]
            completed = None
            if completed_at is not None:
                seconds = completed_at // 1_000_000
                hour = seconds // 3600
                completed = (cached_hour(hour) or hour_text(hour)) + minutes_seconds[seconds % 3600]
            append(
                {
                    "id": run_id,
                    "automation_id": automation_id,
                    "completed_at": completed,
                    "created_at": created,
                    # A run not scheduled for a slot runs at its creation time.
                    "runtime": created if runtime == created_at else rfc3339(runtime),
                    "status": status,
                    "run_stage": run_stage,
                    "successful_operations": successful_operations,
                    "failed_operations": failed_operations,
                    "status_messages_url": (
                        f"{prefix}{run_id}{suffix}{signatures[at : at + HEX_LENGTH]}"
                    ),
                    # Run control (Files.com; docs/api.md says which version added each).
                    "retry_at": None if retry_at is None else rfc3339(retry_at),
                    "retried_at": None if retried_at is None else rfc3339(retried_at),
                    "retried_in_run_id": retried_in_run_id,
                    "retry_of_run_id": retry_of_run_id,
                    "cancel_requested_at": (
                        None if cancel_requested_at is None else rfc3339(cancel_requested_at)
                    ),
                    "rerun_of_run_id": rerun_of_run_id,
                    "rerun_from_node_id": rerun_from_node_id,
                }
            )
            at += HEX_LENGTH
        return records
