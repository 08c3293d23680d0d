"""Typed records the SDK returns, decoded from the API's JSON.

Decoding is on the hot path of long walks (a million runs), so it does no
per-record work beyond building the dataclass: date-times are parsed by
`datetime.fromisoformat`, which is C code and reads RFC 3339 ``...Z`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AUTOMATION_RUN_FIELDS",
    "AutomationRun",
    "format_datetime",
    "parse_datetime",
]

_fromisoformat = datetime.fromisoformat


def parse_datetime(value: str | None) -> datetime | None:
    """An RFC 3339 date-time as an aware `datetime` (UTC when the text has no offset)."""
    if value is None:
        return None
    parsed = _fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime | None) -> str | None:
    """The API's form: UTC with a ``Z``, whole seconds unless there is a fraction."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


# The seed's fields in the seed's order: JSON, CSV and tables follow it.
AUTOMATION_RUN_FIELDS = (
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
)


@dataclass(frozen=True, slots=True)
class AutomationRun:
    """One execution of an automation.

    `status` is one of ``running``, ``success``, ``partial_failure``,
    ``failure``; `run_stage` one of ``queued_for_planning``, ``planning``,
    ``queued_for_execution``, ``executing``, ``finished``. `runtime` is the
    logical time the run is for (a date-time, not a duration).
    `status_messages_url` is a signed link that expires.
    """

    id: int
    automation_id: int
    completed_at: datetime | None
    created_at: datetime | None
    runtime: datetime | None
    status: str
    run_stage: str
    successful_operations: int
    failed_operations: int
    status_messages_url: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AutomationRun:
        """Build from one decoded JSON object; raises KeyError/TypeError/ValueError if malformed."""
        parse = _fromisoformat
        completed = data["completed_at"]
        created = data["created_at"]
        runtime = data["runtime"]
        # Inlined parse of the three date-times: the server sends UTC with "Z",
        # which fromisoformat returns aware; parse_datetime covers other forms.
        return cls(
            data["id"],
            data["automation_id"],
            None if completed is None else parse(completed),
            None if created is None else parse(created),
            None if runtime is None else parse(runtime),
            data["status"],
            data["run_stage"],
            data["successful_operations"],
            data["failed_operations"],
            data["status_messages_url"],
        )

    def to_json(self) -> dict[str, Any]:
        """The record as the API sends it (field order and date-time form included)."""
        return {
            "id": self.id,
            "automation_id": self.automation_id,
            "completed_at": format_datetime(self.completed_at),
            "created_at": format_datetime(self.created_at),
            "runtime": format_datetime(self.runtime),
            "status": self.status,
            "run_stage": self.run_stage,
            "successful_operations": self.successful_operations,
            "failed_operations": self.failed_operations,
            "status_messages_url": self.status_messages_url,
        }
