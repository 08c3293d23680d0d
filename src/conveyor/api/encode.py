"""Rows to Files.com JSON, without validation models on the hot path.

Runs are encoded straight from database rows (tuples in `store.runs.RUN_COLUMNS`
order) with orjson; the OpenAPI schema still describes them
(conveyor.api.openapi).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from conveyor.clock import HOUR_PREFIXES, MINUTES_SECONDS, hour_prefix, to_rfc3339
from conveyor.domain.signing import HEX_LENGTH, UrlSigner


class RunEncoder:
    """Encodes run rows (in `store.runs.RUN_COLUMNS` order) for one response."""

    def __init__(self, base_url: str, signer: UrlSigner, expires: int) -> None:
        self._prefix = f"{base_url}/api/rest/v1/automation_runs/"
        self._suffix = f"/status_messages?expires={expires}&signature="
        self._signer = signer
        self._expires = expires

    def status_messages_url(self, run_id: int) -> str:
        signature = self._signer.sign(run_id, self._expires)
        return f"{self._prefix}{run_id}{self._suffix}{signature}"

    def run(self, row: Any) -> dict[str, Any]:
        return self._records((row,))[0]

    def runs(self, rows: Sequence[Any]) -> bytes:
        return orjson.dumps(self._records(rows))

    def _records(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        # All the page's signatures in one call, then one loop with everything in
        # locals: this runs once per listed run. `created_at` and `completed_at`
        # are formatted here as `to_rfc3339` does (cached hour prefix, then the
        # minutes-and-seconds table), without its call per value.
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
            stage,
            ok,
            failed,
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
                    "run_stage": stage,
                    "successful_operations": ok,
                    "failed_operations": failed,
                    "status_messages_url": (
                        f"{prefix}{run_id}{suffix}{signatures[at : at + HEX_LENGTH]}"
                    ),
                }
            )
            at += HEX_LENGTH
        return records
