"""Rows to Files.com JSON, without validation models on the hot path.

Runs are encoded straight from database rows with orjson; the OpenAPI schema
still describes them (conveyor.api.openapi).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from conveyor.clock import to_rfc3339
from conveyor.domain.signing import UrlSigner


class RunEncoder:
    """Encodes run rows (in `store.runs.RUN_COLUMNS` order) for one response."""

    def __init__(self, base_url: str, signer: UrlSigner, expires: int) -> None:
        self._prefix = f"{base_url}/api/rest/v1/automation_runs/"
        self._suffix = f"/status_messages?expires={expires}&signature="
        self._signer = signer
        self._expires = expires

    def status_messages_url(self, run_id: int) -> str:
        return f"{self._prefix}{run_id}{self._suffix}{self._signer.sign(run_id, self._expires)}"

    def run(self, row: Any) -> dict[str, Any]:
        run_id, automation_id, completed_at, created_at, runtime, status, stage, ok, failed = row
        return {
            "id": run_id,
            "automation_id": automation_id,
            "completed_at": to_rfc3339(completed_at),
            "created_at": to_rfc3339(created_at),
            "runtime": to_rfc3339(runtime),
            "status": status,
            "run_stage": stage,
            "successful_operations": ok,
            "failed_operations": failed,
            "status_messages_url": self.status_messages_url(run_id),
        }

    def runs(self, rows: Iterable[Any]) -> bytes:
        return orjson.dumps([self.run(row) for row in rows])
