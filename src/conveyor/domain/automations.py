"""What an automation is: types, triggers, path rules, and validation of its fields.

Pure Python, no I/O. `validate_fields` turns a Files.com-style create/update
body into clean values or raises the Files.com error a client should see.
Schedule arithmetic lives in `conveyor.domain.schedules`.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from conveyor.domain import destinations as destinations_module
from conveyor.domain import errors


class AutomationType(enum.StrEnum):
    CREATE_FOLDER = "create_folder"
    COPY_FILE = "copy_file"
    MOVE_FILE = "move_file"
    DELETE_FILE = "delete_file"


class Trigger(enum.StrEnum):
    MANUAL = "manual"
    DAILY = "daily"
    CUSTOM_SCHEDULE = "custom_schedule"
    WEBHOOK = "webhook"
    ACTION = "action"


INTERVALS = (
    "day",
    "week",
    "week_end",
    "month",
    "month_end",
    "quarter",
    "quarter_end",
    "year",
    "year_end",
)
TRIGGER_ACTIONS = ("create", "update", "destroy", "move", "copy", "read")
MAX_PATH_LENGTH = 5000
MAX_PATH_DEPTH = 256  # folder levels in a path, destination or glob
MAX_NAME_LENGTH = 255  # the name column's width (store.schema)
MAX_DESTINATIONS = 100
# Files.com's allowed ranges (inclusive): at most 10 retries, 5 minutes to one day apart.
RETRY_ATTEMPTS = (1, 10)
RETRY_INTERVAL_MINUTES = (5, 1440)
_RETRY_FIELDS = ("retry_on_failure_number_of_attempts", "retry_on_failure_interval_in_minutes")
# ASCII digits only, and nothing after the minutes (fullmatch: `$` would allow a final
# newline, and `\d` other scripts' digits).
_TIME_OF_DAY = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
MAX_TIME_ZONE_LENGTH = 64  # the longest IANA or Files.com zone name is 32 characters

# Files.com (Rails) zone names people use most, mapped to IANA names; any
# IANA name is accepted as well.
FILES_COM_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "Etc/UTC": "UTC",
    "International Date Line West": "Etc/GMT+12",
    "Midway Island": "Pacific/Midway",
    "American Samoa": "Pacific/Pago_Pago",
    "Hawaii": "Pacific/Honolulu",
    "Alaska": "America/Juneau",
    "Pacific Time (US & Canada)": "America/Los_Angeles",
    "Tijuana": "America/Tijuana",
    "Mountain Time (US & Canada)": "America/Denver",
    "Arizona": "America/Phoenix",
    "Chihuahua": "America/Chihuahua",
    "Mazatlan": "America/Mazatlan",
    "Central Time (US & Canada)": "America/Chicago",
    "Saskatchewan": "America/Regina",
    "Guadalajara": "America/Mexico_City",
    "Mexico City": "America/Mexico_City",
    "Monterrey": "America/Monterrey",
    "Central America": "America/Guatemala",
    "Eastern Time (US & Canada)": "America/New_York",
    "Indiana (East)": "America/Indiana/Indianapolis",
    "Bogota": "America/Bogota",
    "Lima": "America/Lima",
    "Quito": "America/Lima",
    "Atlantic Time (Canada)": "America/Halifax",
    "Caracas": "America/Caracas",
    "La Paz": "America/La_Paz",
    "Santiago": "America/Santiago",
    "Newfoundland": "America/St_Johns",
    "Brasilia": "America/Sao_Paulo",
    "Buenos Aires": "America/Argentina/Buenos_Aires",
    "Montevideo": "America/Montevideo",
    "Georgetown": "America/Guyana",
    "Greenland": "America/Godthab",
    "Mid-Atlantic": "Atlantic/South_Georgia",
    "Azores": "Atlantic/Azores",
    "Cape Verde Is.": "Atlantic/Cape_Verde",
    "Dublin": "Europe/Dublin",
    "Edinburgh": "Europe/London",
    "Lisbon": "Europe/Lisbon",
    "London": "Europe/London",
    "Casablanca": "Africa/Casablanca",
    "Monrovia": "Africa/Monrovia",
    "Belgrade": "Europe/Belgrade",
    "Bratislava": "Europe/Bratislava",
    "Budapest": "Europe/Budapest",
    "Ljubljana": "Europe/Ljubljana",
    "Prague": "Europe/Prague",
    "Sarajevo": "Europe/Sarajevo",
    "Skopje": "Europe/Skopje",
    "Warsaw": "Europe/Warsaw",
    "Zagreb": "Europe/Zagreb",
    "Brussels": "Europe/Brussels",
    "Copenhagen": "Europe/Copenhagen",
    "Madrid": "Europe/Madrid",
    "Paris": "Europe/Paris",
    "Amsterdam": "Europe/Amsterdam",
    "Berlin": "Europe/Berlin",
    "Bern": "Europe/Zurich",
    "Zurich": "Europe/Zurich",
    "Rome": "Europe/Rome",
    "Stockholm": "Europe/Stockholm",
    "Vienna": "Europe/Vienna",
    "West Central Africa": "Africa/Algiers",
    "Bucharest": "Europe/Bucharest",
    "Cairo": "Africa/Cairo",
    "Helsinki": "Europe/Helsinki",
    "Kyiv": "Europe/Kiev",
    "Riga": "Europe/Riga",
    "Sofia": "Europe/Sofia",
    "Tallinn": "Europe/Tallinn",
    "Vilnius": "Europe/Vilnius",
    "Athens": "Europe/Athens",
    "Istanbul": "Europe/Istanbul",
    "Minsk": "Europe/Minsk",
    "Jerusalem": "Asia/Jerusalem",
    "Harare": "Africa/Harare",
    "Pretoria": "Africa/Johannesburg",
    "Kaliningrad": "Europe/Kaliningrad",
    "Moscow": "Europe/Moscow",
    "St. Petersburg": "Europe/Moscow",
    "Volgograd": "Europe/Volgograd",
    "Samara": "Europe/Samara",
    "Kuwait": "Asia/Kuwait",
    "Riyadh": "Asia/Riyadh",
    "Nairobi": "Africa/Nairobi",
    "Baghdad": "Asia/Baghdad",
    "Tehran": "Asia/Tehran",
    "Abu Dhabi": "Asia/Muscat",
    "Muscat": "Asia/Muscat",
    "Baku": "Asia/Baku",
    "Tbilisi": "Asia/Tbilisi",
    "Yerevan": "Asia/Yerevan",
    "Kabul": "Asia/Kabul",
    "Ekaterinburg": "Asia/Yekaterinburg",
    "Islamabad": "Asia/Karachi",
    "Karachi": "Asia/Karachi",
    "Tashkent": "Asia/Tashkent",
    "Chennai": "Asia/Kolkata",
    "Kolkata": "Asia/Kolkata",
    "Mumbai": "Asia/Kolkata",
    "New Delhi": "Asia/Kolkata",
    "Kathmandu": "Asia/Kathmandu",
    "Astana": "Asia/Dhaka",
    "Dhaka": "Asia/Dhaka",
    "Sri Jayawardenepura": "Asia/Colombo",
    "Almaty": "Asia/Almaty",
    "Novosibirsk": "Asia/Novosibirsk",
    "Rangoon": "Asia/Rangoon",
    "Bangkok": "Asia/Bangkok",
    "Hanoi": "Asia/Bangkok",
    "Jakarta": "Asia/Jakarta",
    "Krasnoyarsk": "Asia/Krasnoyarsk",
    "Beijing": "Asia/Shanghai",
    "Chongqing": "Asia/Chongqing",
    "Hong Kong": "Asia/Hong_Kong",
    "Urumqi": "Asia/Urumqi",
    "Kuala Lumpur": "Asia/Kuala_Lumpur",
    "Singapore": "Asia/Singapore",
    "Taipei": "Asia/Taipei",
    "Perth": "Australia/Perth",
    "Irkutsk": "Asia/Irkutsk",
    "Ulaanbaatar": "Asia/Ulaanbaatar",
    "Seoul": "Asia/Seoul",
    "Osaka": "Asia/Tokyo",
    "Sapporo": "Asia/Tokyo",
    "Tokyo": "Asia/Tokyo",
    "Yakutsk": "Asia/Yakutsk",
    "Darwin": "Australia/Darwin",
    "Adelaide": "Australia/Adelaide",
    "Canberra": "Australia/Melbourne",
    "Melbourne": "Australia/Melbourne",
    "Sydney": "Australia/Sydney",
    "Brisbane": "Australia/Brisbane",
    "Hobart": "Australia/Hobart",
    "Vladivostok": "Asia/Vladivostok",
    "Guam": "Pacific/Guam",
    "Port Moresby": "Pacific/Port_Moresby",
    "Magadan": "Asia/Magadan",
    "Srednekolymsk": "Asia/Srednekolymsk",
    "Solomon Is.": "Pacific/Guadalcanal",
    "New Caledonia": "Pacific/Noumea",
    "Fiji": "Pacific/Fiji",
    "Kamchatka": "Asia/Kamchatka",
    "Marshall Is.": "Pacific/Majuro",
    "Auckland": "Pacific/Auckland",
    "Wellington": "Pacific/Auckland",
    "Nuku'alofa": "Pacific/Tongatapu",
    "Tokelau Is.": "Pacific/Fakaofo",
    "Chatham Is.": "Pacific/Chatham",
    "Samoa": "Pacific/Apia",
}


def resolve_time_zone(name: str, field: str = "schedule_time_zone") -> ZoneInfo:
    """A Files.com zone name ("Eastern Time (US & Canada)") or an IANA name; an
    unknown one is refused naming `field`."""
    iana = FILES_COM_ZONES.get(name, name)
    try:
        if len(iana) > MAX_TIME_ZONE_LENGTH or not iana.isascii():
            raise ValueError(iana)
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise errors.RequestParamsInvalid(
            f"{field} {name[:60]!r} is not a known time zone; use an IANA name "
            "such as 'America/New_York' or a Files.com name such as "
            "'Eastern Time (US & Canada)'."
        ) from None


@dataclass(frozen=True, slots=True)
class Automation:
    """An automation as stored. Times are microseconds since the epoch, UTC."""

    id: int
    user_id: int
    automation: AutomationType
    trigger: Trigger
    name: str = ""
    description: str = ""
    disabled: bool = False
    deleted: bool = False
    path: str = ""
    source: str = ""
    destinations: tuple[str, ...] = ()
    destination_replace_from: str = ""
    destination_replace_to: str = ""
    overwrite_files: bool = False
    always_overwrite_size_matching_files: bool = False
    flatten_destination_structure: bool = False
    exclude_pattern: str = ""
    path_time_zone: str = ""
    interval: str | None = None
    recurring_day: int | None = None
    schedule_days_of_week: tuple[int, ...] = ()
    schedule_times_of_day: tuple[str, ...] = ()
    schedule_time_zone: str = ""
    trigger_actions: tuple[str, ...] = ()
    recurring_days: tuple[int, ...] = ()
    holiday_region: str = ""
    always_serialize_jobs: bool = False
    # Files.com's automatic retries of a run that ends failure or partial_failure:
    # both set (within RETRY_ATTEMPTS / RETRY_INTERVAL_MINUTES) or both None (off).
    retry_on_failure_number_of_attempts: int | None = None
    retry_on_failure_interval_in_minutes: int | None = None
    value_limit: int | None = None  # Files.com `value: {"limit": N}`: the newest N files only
    webhook_secret: str | None = None
    created_at: int = 0
    last_modified_at: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ paths


def check_path(
    value: str,
    what: str,
    *,
    allow_empty: bool = False,
    allow_trailing_slash: bool = False,
    allow_glob: bool = False,
) -> str:
    """Files.com path rules (SPEC 2.4): slash-delimited, relative, no empty or `..` segments.

    A destination may end in `/` (a folder destination, as in Files.com).
    Nothing that passes can name a place outside the storage root.
    """
    if value == "":
        if allow_empty:
            return value
        raise errors.InvalidPath(f"{what} must not be empty.")
    body = value[:-1] if allow_trailing_slash and value.endswith("/") else value
    problem = None
    if len(value) > MAX_PATH_LENGTH:
        problem = f"is longer than {MAX_PATH_LENGTH} characters"
    elif value.count("/") >= MAX_PATH_DEPTH + (1 if value.endswith("/") else 0):
        problem = f"is more than {MAX_PATH_DEPTH} levels deep"
    elif "\x00" in value or "\\" in value:
        problem = "contains a NUL byte or a backslash"
    elif body.startswith("/"):
        problem = "must not start with a slash"
    elif body.endswith("/") or body == "":
        problem = "must not end with a slash" if not allow_trailing_slash else "is empty"
    elif any(segment in ("", ".", "..") for segment in body.split("/")):
        problem = "must not contain empty, '.' or '..' segments"
    elif not allow_glob and any(ch in body for ch in "*?["):
        problem = "must not contain glob characters"
    if problem is not None:
        raise errors.InvalidPath(f"{what} {value[:80]!r} {problem}.")
    return value


def path_root(path: str) -> str:
    """The folders of `path` before its first segment with a glob character ("" = the root)."""
    literal = []
    for segment in path.split("/") if path else ():
        if any(ch in segment for ch in "*?["):
            break
        literal.append(segment)
    return "/".join(literal)


# ------------------------------------------------------------- validation

_STRING_FIELDS = (
    "name",
    "description",
    "path",
    "source",
    "destination_replace_from",
    "destination_replace_to",
    "exclude_pattern",
    "path_time_zone",
    "interval",
    "schedule_time_zone",
    "automation",
    "trigger",
    "holiday_region",
)
_BOOL_FIELDS = (
    "disabled",
    "overwrite_files",
    "always_overwrite_size_matching_files",
    "flatten_destination_structure",
    "always_serialize_jobs",
)
_INT_LIST_FIELDS = ("schedule_days_of_week", "recurring_days")
_LIST_FIELDS = (
    "destinations",
    "schedule_days_of_week",
    "schedule_times_of_day",
    "trigger_actions",
    "recurring_days",
)
EDITABLE_FIELDS = frozenset(
    _STRING_FIELDS + _BOOL_FIELDS + _LIST_FIELDS + _RETRY_FIELDS + ("recurring_day", "value_limit")
)
# Fields whose change is a change of behaviour (Files.com: last_modified_at
# "does not change for name or description updates").
COSMETIC_FIELDS = frozenset({"name", "description"})

# Files.com documents these Automation fields; Conveyor does not support them
# and refuses them rather than ignoring them (docs/api.md keeps the table).
UNSUPPORTED_FIELDS: dict[str, str] = {
    "sync_ids": "Conveyor has no Syncs",
    "user_ids": "Conveyor has no Request File automations (the users to request files from)",
    "group_ids": "Conveyor has no Request File automations (the groups to request files from)",
    "schedule_id": "Conveyor has no reusable Schedules; use schedule_days_of_week, "
    "schedule_times_of_day and schedule_time_zone",
    "schedule": "send schedule_days_of_week, schedule_times_of_day and schedule_time_zone instead",
    "definition": "Conveyor has no Automation v2 graphs",
    "import_urls": "Conveyor has no Import File automations",
    "ignore_locked_folders": "Conveyor has no Lock Folders behavior",
    "legacy_folder_matching": "Files.com deprecated it and Conveyor acts on files only",
    "workspace_id": "Conveyor has no workspaces",
}
# Fields the API sends back that a client may send again unchanged (the
# official SDK's save() sends every attribute it holds): accepted only when
# equal to what the automation has.
READ_ONLY_FIELDS = frozenset(
    {"id", "user_id", "deleted", "last_modified_at", "human_readable_schedule", "webhook_url"}
)


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _STRING_FIELDS:
        if not isinstance(value, str):
            raise errors.RequestParamsInvalid(f"{name} must be a string.")
        if "\x00" in value:
            raise errors.RequestParamsInvalid(f"{name} must not contain a NUL character.")
        if name == "name" and len(value) > MAX_NAME_LENGTH:
            raise errors.RequestParamsInvalid(
                f"name must be at most {MAX_NAME_LENGTH} characters, got {len(value)}."
            )
        return value
    if name in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise errors.RequestParamsInvalid(f"{name} must be a boolean.")
    if name == "recurring_day":
        return _integer(name, value)
    if name in _RETRY_FIELDS:
        number = _integer(name, value)
        low, high = RETRY_ATTEMPTS if name == _RETRY_FIELDS[0] else RETRY_INTERVAL_MINUTES
        if not low <= number <= high:
            raise errors.RequestParamsInvalid(
                f"{name} must be between {low} and {high} (Files.com's range), got {number}; "
                "send null to turn automatic retries off."
            )
        return number
    if name in _LIST_FIELDS:
        if isinstance(value, str):  # Files.com accepts comma-delimited strings for lists
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise errors.RequestParamsInvalid(f"{name} must be a list.")
        if name in _INT_LIST_FIELDS:
            return tuple(_integer(name, item, list_of=True) for item in value)
        if not all(isinstance(item, str) and "\x00" not in item for item in value):
            raise errors.RequestParamsInvalid(f"{name} must be a list of strings (without NUL).")
        return tuple(value)
    return value


def _integer(name: str, value: Any, *, list_of: bool = False) -> int:
    what = f"{name} must list integers" if list_of else f"{name} must be an integer"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.RequestParamsInvalid(f"{what}.")
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or not text.isascii() or len(text) > 12:
        raise errors.RequestParamsInvalid(f"{what}.")
    return int(text)


def _value_limit(value: Any) -> int | None:
    """Files.com's `value` hash: Conveyor supports its `limit` (copy/move the newest N)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.RequestParamsInvalid('value must be an object such as {"limit": 10}.')
    unknown = sorted(set(value) - {"limit"})
    if unknown:
        raise errors.RequestParamsInvalid(
            f"value.{unknown[0][:40]} is not supported; Conveyor supports value.limit only."
        )
    limit = value.get("limit")
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | str):
        raise errors.RequestParamsInvalid("value.limit must be a positive integer.")
    text = str(limit).strip()
    if not text.isdigit() or not text.isascii() or len(text) > 9 or int(text) < 1:
        raise errors.RequestParamsInvalid(
            f"value.limit must be a positive integer (the newest N files), got {str(limit)[:20]!r}."
        )
    return int(text)


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    for name in body:
        if name in EDITABLE_FIELDS or name in ("value", "destination"):
            continue
        if name in UNSUPPORTED_FIELDS:
            raise errors.RequestParamsInvalid(
                f"{name} is not supported: {UNSUPPORTED_FIELDS[name]}."
            )
        if name in READ_ONLY_FIELDS:
            if body[name] is None:
                continue
            raise errors.RequestParamsInvalid(f"{name} is read-only and cannot be set.")
        if name == "value_limit":
            raise errors.RequestParamsInvalid(
                'value_limit is not a Files.com field; send value: {"limit": N}.'
            )
        raise errors.RequestParamsInvalid(
            f"{name[:60]!r} is not a field of an Automation; Conveyor refuses what it does not "
            "support rather than ignore it."
        )


def validate_fields(body: Mapping[str, Any], current: Automation | None = None) -> dict[str, Any]:
    """Validate a create (current=None) or update body; return the values to store.

    Every field is either honoured or refused (`RequestParamsInvalid` naming
    it): Files.com fields Conveyor does not support and fields Files.com does
    not have are refused, never ignored. The result, merged over `current`,
    is a valid automation.
    """
    _refuse_unsupported(body)
    values: dict[str, Any] = {}
    for name in EDITABLE_FIELDS - {"value_limit"}:
        if name in body:
            values[name] = _coerce(name, body[name])
    if "destination" in body:  # Files.com's deprecated single destination
        if "destinations" in body:
            raise errors.RequestParamsInvalid(
                "Send destinations or the deprecated destination, not both."
            )
        single = body["destination"]
        if single is not None and not isinstance(single, str):
            raise errors.RequestParamsInvalid("destination must be a string.")
        values["destinations"] = (single,) if single else ()
    if "value" in body:
        values["value_limit"] = _value_limit(body["value"])
    if values.get("schedule_times_of_day"):
        values["schedule_times_of_day"] = tuple(
            _time_of_day(text) for text in values["schedule_times_of_day"]
        )
    merged: dict[str, Any] = {}
    if current is not None:
        merged = {name: getattr(current, name) for name in EDITABLE_FIELDS}
    merged.update({k: v for k, v in values.items()})

    kind = merged.get("automation")
    if not kind:
        raise errors.RequestParamsRequired("Parameter missing: automation")
    try:
        kind = AutomationType(kind)
    except ValueError:
        raise errors.RequestParamsInvalid(
            f"automation {str(kind)[:40]!r} is not supported; supported types are "
            + ", ".join(t.value for t in AutomationType)
            + "."
        ) from None
    trigger_raw = merged.get("trigger") or "manual"
    try:
        trigger = Trigger(trigger_raw)
    except ValueError:
        raise errors.RequestParamsInvalid(
            f"trigger {str(trigger_raw)[:40]!r} is not supported; supported triggers are "
            + ", ".join(t.value for t in Trigger)
            + "."
        ) from None
    values["automation"] = kind.value
    values["trigger"] = trigger.value

    path = merged.get("path") or ""
    check_path(path, "path", allow_empty=True, allow_glob=True)
    source = merged.get("source") or ""
    destinations = tuple(merged.get("destinations") or ())
    if len(destinations) > MAX_DESTINATIONS:
        raise errors.RequestParamsInvalid(f"at most {MAX_DESTINATIONS} destinations are allowed.")
    for dest in destinations:
        check_destination(dest, kind, trigger)
    if merged.get("destination_replace_to"):
        _check_tokens(merged["destination_replace_to"], "destination_replace_to", kind, trigger)
    if kind is AutomationType.CREATE_FOLDER:
        if not destinations:
            raise errors.RequestParamsRequired(
                "Parameter missing: destinations (the folders create_folder creates)"
            )
    else:
        if not source:
            raise errors.RequestParamsRequired(
                f"Parameter missing: source (the glob of files {kind.value} acts on)"
            )
        check_path(source, "source", allow_glob=True)
        if kind in (AutomationType.COPY_FILE, AutomationType.MOVE_FILE) and not destinations:
            raise errors.RequestParamsRequired(
                f"Parameter missing: destinations (where {kind.value} puts files)"
            )
    if merged.get("value_limit") is not None and kind not in (
        AutomationType.COPY_FILE,
        AutomationType.MOVE_FILE,
    ):
        raise errors.RequestParamsInvalid(
            f"value.limit applies to copy_file and move_file, not {kind.value}."
        )
    if merged.get("exclude_pattern"):
        check_path(merged["exclude_pattern"], "exclude_pattern", allow_glob=True)
    if merged.get("path_time_zone"):
        resolve_time_zone(merged["path_time_zone"], "path_time_zone")
    if merged.get("holiday_region"):
        holiday_calendar(merged["holiday_region"])
        if trigger not in (Trigger.DAILY, Trigger.CUSTOM_SCHEDULE):
            raise errors.RequestParamsInvalid(
                "holiday_region applies to the daily and custom_schedule triggers only."
            )

    _validate_trigger(trigger, merged, values)
    _check_retries(merged)
    if "destinations" in values:
        values["destinations"] = destinations
    return values


def _check_retries(merged: Mapping[str, Any]) -> None:
    """Retries need both settings: how many and how long apart (or neither: off)."""
    attempts, interval = (merged.get(name) for name in _RETRY_FIELDS)
    if (attempts is None) != (interval is None):
        missing, given = _RETRY_FIELDS if attempts is None else _RETRY_FIELDS[::-1]
        raise errors.RequestParamsInvalid(
            f"{missing} is required with {given}: automatic retries need both "
            "(send both as null to turn them off)."
        )


def _time_of_day(text: str) -> str:
    """`H:MM` or `HH:MM` (Files.com's own example uses "7:30"), stored as `HH:MM`."""
    match = _TIME_OF_DAY.fullmatch(text)
    if not match:
        raise errors.RequestParamsInvalid(
            f"schedule_times_of_day entry {text[:20]!r} must be H:MM or HH:MM (24-hour)."
        )
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _check_tokens(
    text: str, what: str, kind: AutomationType, trigger: Trigger
) -> tuple[destinations_module.Piece, ...]:
    pieces = destinations_module.parse(text, what)
    triggers = destinations_module.uses(pieces, "trigger")
    if triggers and (kind is AutomationType.CREATE_FOLDER or trigger is not Trigger.ACTION):
        raise errors.RequestParamsInvalid(
            f"{what} {text[:80]!r} uses %{triggers[0]}, the triggering file: it needs trigger "
            "'action' and an automation that acts on files."
        )
    params = destinations_module.uses(pieces, "param")
    if params and trigger not in (Trigger.WEBHOOK, Trigger.MANUAL):
        raise errors.RequestParamsInvalid(
            f"{what} {text[:80]!r} uses %u-{params[0]}, a webhook parameter: it needs trigger "
            "'webhook' (or 'manual', whose runs can be given values)."
        )
    parts = destinations_module.uses(pieces, "part")
    if parts and kind is AutomationType.CREATE_FOLDER:
        raise errors.RequestParamsInvalid(
            f"{what} {text[:80]!r} uses %p{parts[0]}, a folder of the source file's path: "
            "create_folder has no source file."
        )
    return pieces


def check_destination(dest: str, kind: AutomationType, trigger: Trigger) -> None:
    """A destination as Files.com writes it: absolute, or relative (`./`, `../`), with tokens."""
    if not isinstance(dest, str):
        raise errors.RequestParamsInvalid("destinations must be a list of strings.")
    ups, rest = destinations_module.split_relative(dest)
    if ups is None or rest:
        check_path(rest, "destination", allow_trailing_slash=True)
    _check_tokens(dest, "destination", kind, trigger)


@functools.lru_cache(maxsize=256)
def holiday_calendar(region: str) -> Any:
    """The public holidays of a Files.com holiday region (`us`, `us_dc`, `gb`, `de_by` ...).

    The region is a country code, optionally followed by `_` and a
    subdivision code, read by the `holidays` library; unknown ones are a
    RequestParamsInvalid.
    """
    country, _, subdivision = region.partition("_")
    supported = holidays.list_supported_countries()
    code = country.upper()
    sub = subdivision.upper() or None
    if code not in supported or (sub is not None and sub not in supported[code]):
        raise errors.RequestParamsInvalid(
            f"holiday_region {region[:40]!r} is not a known region; use a country code such as "
            "'us' or 'gb', optionally with a subdivision such as 'us_dc' or 'de_by'."
        )
    return holidays.country_holidays(code, subdiv=sub)


def _validate_trigger(trigger: Trigger, merged: dict[str, Any], values: dict[str, Any]) -> None:
    interval = merged.get("interval")
    if trigger is Trigger.DAILY:
        interval = interval or "day"
        if interval not in INTERVALS:
            raise errors.RequestParamsInvalid(
                f"interval {str(interval)[:40]!r} is not valid; use one of "
                + ", ".join(INTERVALS)
                + "."
            )
        values["interval"] = interval
        limits = {"week": (0, 6), "month": (1, 31), "quarter": (1, 92), "year": (1, 366)}
        low, high = limits.get(interval.removesuffix("_end"), (0, 0))
        single = merged.get("recurring_day")
        days = [("recurring_day", single)] if single is not None else []
        days += [("recurring_days", day) for day in merged.get("recurring_days") or ()]
        for name, day in days:
            if interval in ("day", "week_end", "month_end", "quarter_end", "year_end") and day:
                raise errors.RequestParamsInvalid(f"{name} does not apply to interval {interval}.")
            if not low <= day <= high:
                raise errors.RequestParamsInvalid(
                    f"{name} for interval {interval} must be between {low} and {high}."
                )
    elif merged.get("recurring_days"):
        raise errors.RequestParamsInvalid(
            "recurring_days applies to the daily trigger only (send recurring_days: [] "
            "with another trigger)."
        )
    elif interval is not None and "interval" in values and values["interval"] not in INTERVALS:
        raise errors.RequestParamsInvalid("interval must be one of " + ", ".join(INTERVALS) + ".")
    for day in merged.get("schedule_days_of_week") or ():
        if not 0 <= day <= 6:
            raise errors.RequestParamsInvalid(
                "schedule_days_of_week must list integers 0 (Sunday) to 6 (Saturday)."
            )
    for time_of_day in merged.get("schedule_times_of_day") or ():
        _time_of_day(time_of_day)
    if merged.get("schedule_time_zone"):
        resolve_time_zone(merged["schedule_time_zone"])
    if trigger is Trigger.CUSTOM_SCHEDULE:
        if not merged.get("schedule_days_of_week"):
            raise errors.RequestParamsRequired(
                "Parameter missing: schedule_days_of_week (custom_schedule needs the days)"
            )
        if not merged.get("schedule_times_of_day"):
            raise errors.RequestParamsRequired(
                "Parameter missing: schedule_times_of_day (custom_schedule needs the times)"
            )
    actions = merged.get("trigger_actions") or ()
    for action in actions:
        if action not in TRIGGER_ACTIONS:
            raise errors.RequestParamsInvalid(
                f"trigger_actions entry {action[:40]!r} is not supported; use "
                + ", ".join(TRIGGER_ACTIONS)
                + "."
            )
    if trigger is Trigger.ACTION and not actions:
        raise errors.RequestParamsRequired(
            "Parameter missing: trigger_actions (which file events start the automation)"
        )


def check_can_run_manually(automation: Automation) -> None:
    """A manual run (the API's manual_run, the web UI's "Run now") starts only on an
    enabled automation; AutomationCannotBeRunManually otherwise."""
    if automation.disabled:
        raise errors.AutomationCannotBeRunManually(
            f"Automation {automation.id} is disabled; enable it before running it."
        )
