"""List queries: parse and validate sort, filter, per_page and signed cursors.

The wire form is Files.com's: `sort_by[FIELD]=asc|desc`, `filter[FIELD]=VALUE`,
`per_page`, `cursor`; a repeated key counts with its last value, and a key
the list does not read is refused with a 400 naming it (`refuse_unknown`).
Pagination is keyset: a cursor holds the sort key and id of the record a
page ended (or began) at, and is bound by an HMAC to the query it came from,
so it cannot be forged or replayed against another list.

A cursor also holds the number of the page it leads to (the first page is 1),
because the official JavaScript SDK, following `X-Files-Cursor`, sends
`page=N` with the cursor: `page` is accepted when it is that number (or 1
without a cursor) and refused otherwise, never ignored (`check_page`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from conveyor.clock import from_datetime
from conveyor.domain import errors
from conveyor.domain.runs import RunStatus

MAX_PER_PAGE = 10_000
MAX_INT64 = 2**63 - 1
MAX_PARAM_LENGTH = 4096
# Files.com's range filters, `filter_gt[FIELD]=VALUE` and so on: accepted on the
# fields a list names (date-times: `last_modified_at`, `created_at`), refused
# with a 400 everywhere else (and `filter_prefix` everywhere), never ignored.
RANGE_FILTER_PARAMS = ("filter_gt", "filter_gteq", "filter_lt", "filter_lteq", "filter_prefix")


@dataclass(frozen=True, slots=True)
class RangeFilter:
    """`filter_{op}[field]=VALUE` of a date-time field; `value` in microseconds."""

    field: str
    op: str  # "gt", "gteq", "lt" or "lteq"
    value: int

    @property
    def wire(self) -> list[Any]:
        return [self.field, self.op, self.value]


@dataclass(frozen=True, slots=True)
class Sort:
    """One sort field (None: the id alone) and its direction; ties break by id."""

    field: str | None
    descending: bool

    @property
    def wire(self) -> str:
        return f"{self.field or 'id'}:{'desc' if self.descending else 'asc'}"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: after (`next`) or before (`prev`) the keyed record."""

    direction: str  # "next" or "prev"
    key: Any  # the sort field's value of the anchor record (None when sorting by id)
    id: int
    page: int = 1  # the number of the page the cursor leads to (first page: 1)


@dataclass(frozen=True, slots=True)
class RunListQuery:
    automation_id: int
    per_page: int
    sort: Sort
    status: RunStatus | None
    cursor: Cursor | None
    # Narrowing the web UI's runs table offers (not API parameters: the API's
    # parser never sets them): the run's trigger, created_at in [from, before).
    trigger: str | None = None
    created_from: int | None = None
    created_before: int | None = None

    @property
    def narrowed(self) -> bool:
        return not (
            self.trigger is None and self.created_from is None and self.created_before is None
        )

    # `user_id`: list as this user (an admin's choice; 0 or absent: the caller).
    user_id: int | None = None

    @property
    def scope(self) -> list[Any]:
        """What a cursor is bound to besides the sort: the list it walks."""
        if self.narrowed:
            extra = [self.trigger, self.created_from, self.created_before]
            return ["automation_runs", self.automation_id, self.status, *extra]
        return ["automation_runs", self.automation_id, self.status]


# ----------------------------------------------------------------- parameters


def query_pairs(raw_query: bytes) -> list[tuple[str, str]]:
    """Decode a raw query string strictly: bad UTF-8 or escapes are a 400."""
    from urllib.parse import parse_qsl

    try:
        text = raw_query.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.RequestParamsInvalid(
            "The query string is not valid UTF-8 after percent-decoding."
        ) from None


def collect(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Split pairs into plain params and bracketed groups (`sort_by[x]`).

    A repeated key keeps its last value, as Files.com reads it. Values longer
    than MAX_PARAM_LENGTH are refused.
    """
    plain: dict[str, str] = {}
    groups: dict[str, dict[str, str]] = {}
    for key, value in pairs:
        if len(value) > MAX_PARAM_LENGTH or len(key) > MAX_PARAM_LENGTH:
            raise errors.RequestParamsInvalid(
                f"Parameter {key[:40]!r} is longer than {MAX_PARAM_LENGTH} characters."
            )
        open_at = key.find("[")
        if open_at > 0 and key.endswith("]"):
            groups.setdefault(key[:open_at], {})[key[open_at + 1 : -1]] = value
        else:
            plain[key] = value
    return plain, groups


def refuse_unknown(
    plain: dict[str, str],
    groups: dict[str, dict[str, str]],
    params: Collection[str],
    group_names: Collection[str],
) -> None:
    """Accept or refuse: a parameter this list does not read is a 400 naming it."""
    unknown = sorted(key[:40] for key in set(plain) - set(params)) + sorted(
        f"{name[:40]}[...]" for name in set(groups) - set(group_names)
    )
    if unknown:
        supported = sorted(params) + sorted(f"{name}[...]" for name in group_names)
        raise errors.RequestParamsInvalid(
            f"Unknown parameter: {', '.join(unknown)}. This list takes {', '.join(supported)}."
        )


def parse_int(
    name: str, raw: str | None, *, required: bool, minimum: int = 1, maximum: int = MAX_INT64
) -> int | None:
    if raw is None or raw == "":
        if required:
            raise errors.RequestParamsRequired(f"Parameter missing: {name}")
        return None
    text = raw.strip()
    # One optional minus sign: int() would refuse "--5" with an error of its own.
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise errors.RequestParamsInvalid(f"Parameter {name} must be an integer, got {raw[:40]!r}.")
    value = int(text)
    if value < minimum or value > maximum:
        raise errors.RequestParamsInvalid(
            f"Parameter {name} must be between {minimum} and {maximum}, got {value}."
        )
    return value


def parse_id(raw: str) -> int:
    """A record id from the URL path: a required positive integer."""
    value = parse_int("id", raw, required=True)
    assert value is not None
    return value


def check_sent_id(path_id: int, sent: object) -> None:
    """The official SDKs send a record's id again as a parameter (`?id=` on a GET, `"id"`
    in a body) beside the one in the path: accepted when it is that id, refused otherwise."""
    if sent is None:
        return
    text = str(sent).strip() if isinstance(sent, str | int) and not isinstance(sent, bool) else ""
    if not (text.isascii() and text.isdigit() and int(text) == path_id):
        raise errors.RequestParamsInvalid(
            f"Parameter id must be the id in the path ({path_id}), got {str(sent)[:40]!r}."
        )


def parse_per_page(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    value = parse_int("per_page", raw, required=True, maximum=MAX_PER_PAGE)
    assert value is not None
    return value


def parse_sort(
    group: dict[str, str] | None, plain: dict[str, str], fields: Sequence[str], default: Sort
) -> Sort:
    if "sort_by" in plain:
        raise errors.InvalidSortField(
            "sort_by must be given as sort_by[FIELD]=asc|desc; valid fields are "
            + ", ".join(fields)
            + "."
        )
    if not group:
        return default
    if len(group) > 1:
        raise errors.MultipleSortParamsNotAllowed(
            "Only one sort field is allowed, got " + ", ".join(sorted(group)) + "."
        )
    ((field, direction),) = group.items()
    if field not in fields:
        raise errors.InvalidSortField(
            f"Cannot sort by {field[:40]!r}; valid fields are " + ", ".join(fields) + "."
        )
    direction = direction.strip().lower()
    if direction not in ("asc", "desc"):
        raise errors.InvalidSortField(
            f"Sort direction for {field} must be asc or desc, got {direction[:40]!r}."
        )
    return Sort(field=field, descending=direction == "desc")


def check_filter_fields(
    group: dict[str, str] | None,
    plain: dict[str, str],
    groups: dict[str, dict[str, str]],
    fields: Sequence[str],
    range_fields: Sequence[str] = (),
) -> dict[str, str]:
    """The `filter[...]` group, its fields checked; refuses a range filter
    (`filter_gt` ...) other than on `range_fields` (`parse_range_filters` reads those)."""
    if "filter" in plain:
        raise errors.InvalidFilterField(
            "filter must be given as filter[FIELD]=VALUE; valid fields are "
            + ", ".join(fields)
            + "."
        )
    supported = "filter[" + "], filter[".join(fields) + "]"
    if range_fields:
        supported += " and filter_gt, filter_gteq, filter_lt, filter_lteq on " + ", ".join(
            range_fields
        )
    for name in RANGE_FILTER_PARAMS:
        wrong = name in plain or (
            name in groups
            and (name == "filter_prefix" or any(f not in range_fields for f in groups[name]))
        )
        if wrong:
            raise errors.InvalidFilterField(
                f"{name} is not supported here as sent; valid filters are {supported}."
            )
    group = group or {}
    for field in group:
        if field not in fields:
            raise errors.InvalidFilterField(
                f"Cannot filter by {field[:40]!r}; valid fields are " + ", ".join(fields) + "."
            )
    return group


def parse_time(name: str, raw: str) -> int:
    """An ISO 8601 date-time with a UTC offset (`Z` or `+HH:MM`), in microseconds."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise errors.InvalidFilterParamValue(
            f"{name} must be a date-time with a time zone, such as 2024-02-16T12:46:41Z; "
            f"got {raw[:40]!r}."
        )
    return from_datetime(value)


def parse_range_filters(
    groups: dict[str, dict[str, str]], range_fields: Sequence[str]
) -> tuple[RangeFilter, ...]:
    """The `filter_gt`/`gteq`/`lt`/`lteq` of date-time `range_fields`, as checked by
    `check_filter_fields`; a malformed date-time is a 400."""
    found = []
    for op in ("gt", "gteq", "lt", "lteq"):
        for field, raw in sorted(groups.get(f"filter_{op}", {}).items()):
            if field in range_fields:
                found.append(RangeFilter(field, op, parse_time(f"filter_{op}[{field}]", raw)))
    return tuple(found)


def check_page(raw: str | None, cursor: Cursor | None) -> int:
    """The number of the page asked for: the cursor's (1 without one). A `page`
    parameter must name that same page; Conveyor pages by cursor only."""
    current = cursor.page if cursor is not None else 1
    if raw is None:
        return current
    page = parse_int("page", raw, required=True)
    if page != current:
        if cursor is None:
            raise errors.RequestParamsInvalid(
                f"Parameter page must be 1 without a cursor, got {page}: this list pages by "
                "cursor; send the X-Files-Cursor-Next (or X-Files-Cursor) value of the "
                "previous page as cursor."
            )
        raise errors.RequestParamsInvalid(
            f"Parameter page must be {current} with this cursor (the page it leads to), "
            f"got {page}; or leave page out."
        )
    return current


RUN_SORT_FIELDS = ("automation_id", "created_at", "status")
RUN_FILTER_FIELDS = ("status", "automation_id")
RUN_DEFAULT_SORT = Sort(field="created_at", descending=True)
RUN_LIST_PARAMS = ("automation_id", "per_page", "cursor", "page", "user_id")
RUN_LIST_GROUPS = ("sort_by", "filter")


def parse_run_list_query(
    pairs: Iterable[tuple[str, str]], codec: CursorCodec, default_per_page: int = 1000
) -> RunListQuery:
    """Validate a List Automation Runs query (SPEC 2.1) into a RunListQuery."""
    plain, groups = collect(pairs)
    automation_id = parse_int("automation_id", plain.get("automation_id"), required=True)
    assert automation_id is not None
    per_page = parse_per_page(plain.get("per_page"), default_per_page)
    sort = parse_sort(groups.get("sort_by"), plain, RUN_SORT_FIELDS, RUN_DEFAULT_SORT)
    if sort.field == "automation_id":
        # Every record of the list has the same automation_id: the order is the id's.
        sort = Sort(field=None, descending=sort.descending)
    filters = check_filter_fields(groups.get("filter"), plain, groups, RUN_FILTER_FIELDS)
    refuse_unknown(plain, groups, RUN_LIST_PARAMS, RUN_LIST_GROUPS)
    status: RunStatus | None = None
    if "status" in filters:
        try:
            status = RunStatus(filters["status"])
        except ValueError:
            raise errors.InvalidFilterParamValue(
                f"filter[status] must be one of {', '.join(s.value for s in RunStatus)}, "
                f"got {filters['status'][:40]!r}."
            ) from None
    if "automation_id" in filters:
        raw = filters["automation_id"].strip()
        if not (raw.isascii() and raw.isdigit()) or int(raw) != automation_id:
            raise errors.InvalidFilterParamValue(
                "filter[automation_id] must equal automation_id "
                f"({automation_id}), got {filters['automation_id'][:40]!r}."
            )
    user_id = parse_int("user_id", plain.get("user_id"), required=False, minimum=0) or None
    query = RunListQuery(automation_id, per_page, sort, status, None, user_id=user_id)
    token = plain.get("cursor")
    if token:
        cursor = codec.decode(token, query.scope, sort, key_type=RUN_KEY_TYPES[sort.field])
        query = replace(query, cursor=cursor)
    check_page(plain.get("page"), query.cursor)
    return query


RUN_KEY_TYPES: dict[str | None, type | None] = {None: None, "created_at": int, "status": str}


# -------------------------------------------------------------------- cursors


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and checks cursors with a key derived from the server secret."""

    VERSION = 2

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"conveyor-cursor\x00" + secret).digest()

    def _sign(self, payload: bytes) -> bytes:
        # hmac.digest: the one-call form (in C), the same HMAC-SHA256 as hmac.new.
        return hmac.digest(self._key, payload, "sha256")[:16]

    def encode(self, scope: list[Any], sort: Sort, cursor: Cursor, page: int = 1) -> str:
        """The token for `cursor`, leading to page number `page`."""
        payload = orjson.dumps(
            [self.VERSION, scope, sort.wire, cursor.direction[0], cursor.key, cursor.id, page]
        )
        return _b64(payload) + "." + _b64(self._sign(payload))

    def decode(self, token: str, scope: list[Any], sort: Sort, key_type: type | None) -> Cursor:
        invalid = errors.InvalidCursor(
            "The cursor is not valid for this list; start again without a cursor."
        )
        if len(token) > 1024 or token.count(".") != 1:
            raise invalid
        body, signature = token.split(".")
        try:
            payload = _unb64(body)
            given = _unb64(signature)
        except (binascii.Error, ValueError):
            raise invalid from None
        # The decoder ignores stray characters, extra padding and a last character's
        # unused bits; only the canonical spelling is the token this server issued.
        if _b64(payload) != body or _b64(given) != signature:
            raise invalid
        if not hmac.compare_digest(given, self._sign(payload)):
            raise invalid
        try:
            version, c_scope, c_sort, direction, key, run_id, page = orjson.loads(payload)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            raise invalid from None
        if version != self.VERSION or c_scope != scope or direction not in ("n", "p"):
            raise invalid
        if c_sort != sort.wire:
            raise errors.InvalidCursorTypeForSort(
                f"This cursor was made for sort {c_sort}, not {sort.wire}; "
                "send the same sort_by as the request that returned it."
            )
        if not isinstance(run_id, int) or isinstance(run_id, bool):
            raise invalid
        if not isinstance(page, int) or isinstance(page, bool) or page < 1:
            raise invalid
        if key_type is None:
            if key is not None:
                raise invalid
        elif not isinstance(key, key_type) or (isinstance(key, bool) and key_type is not bool):
            raise invalid
        return Cursor("next" if direction == "n" else "prev", key, run_id, page)


def page_tokens(
    codec: CursorCodec,
    scope: list[Any],
    sort: Sort,
    current: Cursor | None,
    next_cursor: Cursor | None,
    prev_cursor: Cursor | None,
) -> tuple[str | None, str | None]:
    """The cursor tokens leading to the next and the previous page from a page reached
    with `current` (None: the first page); each carries the number of the page it
    leads to (`check_page`). The API sends them as headers (`cursor_headers`), the
    web UI as its pages' links."""
    page = current.page if current is not None else 1
    next_token = None if next_cursor is None else codec.encode(scope, sort, next_cursor, page + 1)
    prev_token = (
        None if prev_cursor is None else codec.encode(scope, sort, prev_cursor, max(1, page - 1))
    )
    return next_token, prev_token


def cursor_headers(tokens: tuple[str | None, str | None]) -> dict[str, str]:
    """The cursor headers of a list answer, as Files.com sends them, from the next
    and previous page's tokens (`page_tokens`).

    `X-Files-Cursor-Next` and `X-Files-Cursor-Prev` lead to the next and previous
    page; `X-Files-Cursor` repeats the next one, the header the official
    JavaScript SDK's auto-pagination follows (the Python SDK reads `-Next` first).
    """
    next_token, prev_token = tokens
    headers = {}
    if next_token is not None:
        headers["X-Files-Cursor-Next"] = next_token
        headers["X-Files-Cursor"] = next_token
    if prev_token is not None:
        headers["X-Files-Cursor-Prev"] = prev_token
    return headers


# ------------------------------------------------------------ all runs (Conveyor)


@dataclass(frozen=True, slots=True)
class AllRunsQuery:
    """The operator's view of runs across automations (`GET /api/conveyor/v1/automation_runs`).

    Empty `statuses`/`triggers`: any. `ranges` bound `created_at` (microseconds).
    The order is `created_at` then id, ascending or descending (`sort`).
    """

    per_page: int
    sort: Sort
    statuses: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    automation_id: int | None = None
    ranges: tuple[RangeFilter, ...] = ()
    cursor: Cursor | None = None

    @property
    def scope(self) -> list[Any]:
        """What a cursor is bound to besides the sort: the filter it walks."""
        return [
            "all_runs",
            list(self.statuses),
            list(self.triggers),
            self.automation_id,
            [r.wire for r in self.ranges],
        ]

    @property
    def filter_wire(self) -> dict[str, Any]:
        """The filter alone (no paging), canonical: what a bulk request's key is bound to."""
        return {
            "statuses": list(self.statuses),
            "triggers": list(self.triggers),
            "automation_id": self.automation_id,
            "ranges": [r.wire for r in self.ranges],
        }


ALL_RUNS_FILTER_FIELDS = ("status", "trigger", "automation_id")
ALL_RUNS_RANGE_FIELDS = ("created_at",)
ALL_RUNS_SORT_FIELDS = ("created_at",)
ALL_RUNS_LIST_PARAMS = ("per_page", "cursor", "page")
ALL_RUNS_GROUPS = ("sort_by", "filter", "filter_gt", "filter_gteq", "filter_lt", "filter_lteq")


def _values(name: str, raw: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """A comma-separated list of allowed values, sorted and without repeats."""
    found = []
    for part in raw.split(","):
        value = part.strip()
        if value not in allowed:
            raise errors.InvalidFilterParamValue(
                f"filter[{name}] takes a comma-separated list of {', '.join(allowed)}; "
                f"got {part[:40]!r}."
            )
        found.append(value)
    return tuple(sorted(set(found)))


def parse_all_runs_filter(
    plain: dict[str, str], groups: dict[str, dict[str, str]], triggers: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...], int | None, tuple[RangeFilter, ...]]:
    """The filter of the all-runs view and of bulk actions: `filter[status]` and
    `filter[trigger]` (comma-separated lists), `filter[automation_id]`, and
    `filter_gt|gteq|lt|lteq[created_at]`; (statuses, triggers, automation id, ranges)."""
    filters = check_filter_fields(
        groups.get("filter"), plain, groups, ALL_RUNS_FILTER_FIELDS, ALL_RUNS_RANGE_FIELDS
    )
    statuses: tuple[str, ...] = ()
    if "status" in filters:
        statuses = _values("status", filters["status"], [s.value for s in RunStatus])
    kinds: tuple[str, ...] = ()
    if "trigger" in filters:
        kinds = _values("trigger", filters["trigger"], triggers)
    automation_id = None
    if "automation_id" in filters:
        automation_id = parse_int("filter[automation_id]", filters["automation_id"], required=True)
    return statuses, kinds, automation_id, parse_range_filters(groups, ALL_RUNS_RANGE_FIELDS)


def parse_all_runs_query(
    pairs: Iterable[tuple[str, str]],
    codec: CursorCodec,
    triggers: Sequence[str],
    default_per_page: int = 1000,
) -> AllRunsQuery:
    """Validate an all-runs query; `triggers` are the trigger kinds a run may have."""
    plain, groups = collect(pairs)
    refuse_unknown(plain, groups, ALL_RUNS_LIST_PARAMS, ALL_RUNS_GROUPS)
    per_page = parse_per_page(plain.get("per_page"), default_per_page)
    sort = parse_sort(groups.get("sort_by"), plain, ALL_RUNS_SORT_FIELDS, RUN_DEFAULT_SORT)
    statuses, kinds, automation_id, ranges = parse_all_runs_filter(plain, groups, triggers)
    query = AllRunsQuery(per_page, sort, statuses, kinds, automation_id, ranges)
    token = plain.get("cursor")
    if token:
        query = replace(query, cursor=codec.decode(token, query.scope, sort, key_type=int))
    check_page(plain.get("page"), query.cursor)
    return query
