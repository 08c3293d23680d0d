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
    "AUTOMATION_FIELDS",
    "AUTOMATION_RUN_FIELDS",
    "PERMISSION_FIELDS",
    "Automation",
    "AutomationRun",
    "Permission",
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
    # Run control, after the seed's fields (Files.com added them in 2025-2026).
    "retry_at",
    "retried_at",
    "retried_in_run_id",
    "retry_of_run_id",
    "cancel_requested_at",
    "rerun_of_run_id",
    "rerun_from_node_id",
)


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _fromisoformat(value)


@dataclass(frozen=True, slots=True)
class AutomationRun:
    """One execution of an automation.

    `status` is one of ``running``, ``success``, ``partial_failure``,
    ``failure``; `run_stage` one of ``queued_for_planning``, ``planning``,
    ``queued_for_execution``, ``executing``, ``finished``. `runtime` is the
    logical time the run is for (a date-time, not a duration).
    `status_messages_url` is a signed link that expires. The run-control fields
    (retry lineage, cancel, rerun) are None when unset, and when a server older
    than run control does not send them.
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
    retry_at: datetime | None = None
    retried_at: datetime | None = None
    retried_in_run_id: int | None = None
    retry_of_run_id: int | None = None
    cancel_requested_at: datetime | None = None
    rerun_of_run_id: int | None = None
    rerun_from_node_id: str | None = None

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
            _optional_time(data.get("retry_at")),
            _optional_time(data.get("retried_at")),
            data.get("retried_in_run_id"),
            data.get("retry_of_run_id"),
            _optional_time(data.get("cancel_requested_at")),
            data.get("rerun_of_run_id"),
            data.get("rerun_from_node_id"),
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
            "retry_at": format_datetime(self.retry_at),
            "retried_at": format_datetime(self.retried_at),
            "retried_in_run_id": self.retried_in_run_id,
            "retry_of_run_id": self.retry_of_run_id,
            "cancel_requested_at": format_datetime(self.cancel_requested_at),
            "rerun_of_run_id": self.rerun_of_run_id,
            "rerun_from_node_id": self.rerun_from_node_id,
        }


# The fields of an automation in the order the API sends them.
AUTOMATION_FIELDS = (
    "id",
    "automation",
    "name",
    "description",
    "disabled",
    "deleted",
    "path",
    "source",
    "destinations",
    "destination_replace_from",
    "destination_replace_to",
    "exclude_pattern",
    "flatten_destination_structure",
    "overwrite_files",
    "always_overwrite_size_matching_files",
    "path_time_zone",
    "trigger",
    "interval",
    "recurring_day",
    "schedule_days_of_week",
    "schedule_times_of_day",
    "schedule_time_zone",
    "human_readable_schedule",
    "trigger_actions",
    "recurring_days",
    "holiday_region",
    "always_serialize_jobs",
    "retry_on_failure_number_of_attempts",
    "retry_on_failure_interval_in_minutes",
    "value",
    "webhook_url",
    "user_id",
    "last_modified_at",
)


@dataclass(frozen=True, slots=True)
class Automation:
    """An automation, with the Files.com field names.

    `automation` is its type (``create_folder``, ``copy_file``, ``move_file``,
    ``delete_file``); `trigger` one of ``manual``, ``daily``,
    ``custom_schedule``, ``webhook``, ``action``. List fields are tuples, so
    the record stays immutable; `to_json()` gives them back as lists.
    `schedule_days_of_week` counts 0 (Sunday) to 6 (Saturday);
    `schedule_times_of_day` are ``HH:MM``. `recurring_days` are the days of a
    daily trigger's period it runs on; `holiday_region` a region whose public
    holidays it skips; `value` is ``{"limit": N}`` when a copy or move takes
    only the newest N files. `retry_on_failure_number_of_attempts` (1-10) and
    `retry_on_failure_interval_in_minutes` (5-1440) retry a run that ends
    ``failure`` or ``partial_failure`` (both None: no retries). `webhook_url` is set for webhook
    triggers only, and `last_modified_at` changes with every change of
    behaviour (not for name or description).
    """

    id: int
    automation: str
    name: str | None
    description: str | None
    disabled: bool
    deleted: bool
    path: str | None
    source: str | None
    destinations: tuple[str, ...]
    destination_replace_from: str | None
    destination_replace_to: str | None
    exclude_pattern: str | None
    flatten_destination_structure: bool
    overwrite_files: bool
    always_overwrite_size_matching_files: bool
    path_time_zone: str | None
    trigger: str
    interval: str | None
    recurring_day: int | None
    schedule_days_of_week: tuple[int, ...]
    schedule_times_of_day: tuple[str, ...]
    schedule_time_zone: str | None
    human_readable_schedule: str | None
    trigger_actions: tuple[str, ...]
    recurring_days: tuple[int, ...]
    holiday_region: str | None
    always_serialize_jobs: bool
    retry_on_failure_number_of_attempts: int | None
    retry_on_failure_interval_in_minutes: int | None
    value: dict[str, Any] | None
    webhook_url: str | None
    user_id: int
    last_modified_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Automation:
        """Build from one decoded JSON object; raises KeyError/TypeError/ValueError if malformed."""
        values = {name: data[name] for name in AUTOMATION_FIELDS}
        for name in _AUTOMATION_LISTS:
            found = values[name]
            if not isinstance(found, list):
                raise TypeError(f"{name} is not a list")
            values[name] = tuple(found)
        values["last_modified_at"] = parse_datetime(values["last_modified_at"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The record as the API sends it (field order and date-time form included)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in AUTOMATION_FIELDS}
        for name in _AUTOMATION_LISTS:
            data[name] = list(data[name])
        data["last_modified_at"] = format_datetime(self.last_modified_at)
        return data


_AUTOMATION_LISTS = (
    "destinations",
    "schedule_days_of_week",
    "schedule_times_of_day",
    "trigger_actions",
    "recurring_days",
)


PERMISSION_FIELDS = (
    "id",
    "path",
    "user_id",
    "username",
    "group_id",
    "group_name",
    "permission",
    "recursive",
)


@dataclass(frozen=True, slots=True)
class Permission:
    """A folder permission, with Files.com's field names.

    `path` "" is the storage root; `permission` is ``full``, ``readonly``,
    ``writeonly`` or ``list``; `recursive` says whether it covers subfolders.
    Conveyor has no groups, so `group_id` and `group_name` are always None.
    """

    id: int
    path: str
    user_id: int
    username: str | None
    group_id: int | None
    group_name: str | None
    permission: str
    recursive: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Permission:
        """Build from one decoded JSON object; raises KeyError/TypeError if malformed."""
        return cls(**{name: data[name] for name in PERMISSION_FIELDS})

    def to_json(self) -> dict[str, Any]:
        """The record as the API sends it."""
        return {name: getattr(self, name) for name in PERMISSION_FIELDS}
