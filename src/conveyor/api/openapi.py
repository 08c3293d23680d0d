"""OpenAPI descriptions of the endpoints whose handlers skip validation models.

Handlers parse parameters themselves (Files.com's bracketed `sort_by[...]`
and `filter[...]` forms) and encode with orjson, so the schema is written
out here and attached to the routes.
"""

from __future__ import annotations

from typing import Any

from conveyor.domain.automations import (
    INTERVALS,
    MAX_DESTINATIONS,
    MAX_PATH_LENGTH,
    RETRY_ATTEMPTS,
    RETRY_INTERVAL_MINUTES,
    TRIGGER_ACTIONS,
    AutomationType,
    Trigger,
)
from conveyor.domain.runs import RunStatus

# OpenAPI 3.1 (what FastAPI serves) says "may be null" with a type list.
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}

AUTOMATION_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
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
    ],
    "properties": {
        "id": {"type": "integer", "format": "int64", "description": "ID."},
        "automation_id": {
            "type": "integer",
            "format": "int64",
            "description": "ID of the associated Automation.",
        },
        "completed_at": {**DATE_TIME, "description": "Completion/failure date/time."},
        "created_at": {
            "type": "string",
            "format": "date-time",
            "description": "Automation run start date/time.",
        },
        "runtime": {
            "type": "string",
            "format": "date-time",
            "description": "The logical time the run is for (schedule slot or trigger time).",
        },
        "status": {"type": "string", "enum": [status.value for status in RunStatus]},
        "run_stage": {
            "type": "string",
            "enum": [
                "queued_for_planning",
                "planning",
                "queued_for_execution",
                "executing",
                "finished",
            ],
        },
        "successful_operations": {"type": "integer", "format": "int64"},
        "failed_operations": {"type": "integer", "format": "int64"},
        "status_messages_url": {
            "type": "string",
            "format": "uri",
            "description": "Signed, expiring link to the status-messages log.",
        },
        "retry_at": {
            **DATE_TIME,
            "description": "When this failed run will be retried (Files.com, 2025).",
        },
        "retried_at": {**DATE_TIME, "description": "When this run was retried (Files.com, 2025)."},
        "retried_in_run_id": {
            "type": ["integer", "null"],
            "format": "int64",
            "description": "The run that is or will be retrying this run (Files.com, 2025).",
        },
        "retry_of_run_id": {
            "type": ["integer", "null"],
            "format": "int64",
            "description": "The original run this run retries (Files.com, 2025).",
        },
        "cancel_requested_at": {
            **DATE_TIME,
            "description": "When a cancel of this run was requested (Files.com, 2026).",
        },
        "rerun_of_run_id": {
            "type": ["integer", "null"],
            "format": "int64",
            "description": "The run this run reruns (Files.com, 2026).",
        },
        "rerun_from_node_id": {
            "type": ["string", "null"],
            "enum": ["planning", "execution", "failed_operations", None],
            "description": "The node of the original a rerun starts from (Files.com, 2026).",
        },
    },
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "http-code", "instance", "title", "type"],
    "properties": {
        "error": {"type": "string"},
        "http-code": {"type": "integer"},
        "instance": {"type": "string"},
        "title": {"type": "string"},
        "type": {"type": "string"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(ERROR_SCHEMA, "Bad request"),
    "401": _json(ERROR_SCHEMA, "Not authenticated"),
    "404": _json(ERROR_SCHEMA, "Not found"),
    "429": _json(ERROR_SCHEMA, "Rate limited"),
}
API_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}]


def _query(
    name: str,
    schema: dict[str, Any],
    description: str,
    required: bool = False,
    style: str | None = None,
) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if style:
        param.update(style=style, explode=True)
    return param


CURSOR_HEADERS: dict[str, Any] = {
    "X-Files-Cursor-Next": {
        "schema": {"type": "string"},
        "description": "Cursor of the next page, if any",
    },
    "X-Files-Cursor": {
        "schema": {"type": "string"},
        "description": "The same cursor as X-Files-Cursor-Next (the header the JavaScript "
        "SDK follows), if any",
    },
    "X-Files-Cursor-Prev": {
        "schema": {"type": "string"},
        "description": "Cursor of the previous page, if any",
    },
}
PAGE_PARAMETER = _query(
    "page",
    {"type": "integer", "minimum": 1},
    "The number of the page the cursor leads to, as the JavaScript SDK sends it "
    "(1 without a cursor); any other number is refused: the list pages by cursor.",
)


def paging_parameters(
    max_per_page: int = 10000, per_page: str = "Records per page (default 1,000, max 10,000)."
) -> list[dict[str, Any]]:
    """cursor, page and per_page: the parameters every keyset list takes."""
    return [
        _query("cursor", {"type": "string"}, "Used for pagination."),
        PAGE_PARAMETER,
        _query("per_page", {"type": "integer", "minimum": 1, "maximum": max_per_page}, per_page),
    ]


def list_doc(
    summary: str, items: dict[str, Any], page: str, parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    """A list route's documentation: a page of `items` with the cursor headers (`page`
    describes it), the error answers, the API key, and its query `parameters`."""
    return {
        "summary": summary,
        "responses": {
            "200": {
                **_json({"type": "array", "items": items}, page),
                "headers": CURSOR_HEADERS,
            },
            **ERRORS,
        },
        "openapi_extra": {"security": API_KEY, "parameters": parameters},
    }


LIST_RUNS_DOC = list_doc(
    "List Automation Runs",
    AUTOMATION_RUN_SCHEMA,
    "A page of runs",
    [
        _query(
            "automation_id",
            {"type": "integer", "format": "int64", "minimum": 1},
            "Required - ID of the associated Automation.",
            required=True,
        ),
        *paging_parameters(),
        _query(
            "user_id",
            {"type": "integer", "format": "int64", "minimum": 0},
            "List as this user: an admin's choice; anyone else may name only "
            "themselves (0: the caller). A user who may not see the automation "
            "gets 404.",
        ),
        _query(
            "sort_by",
            {
                "type": "object",
                "additionalProperties": {"type": "string", "enum": ["asc", "desc"]},
            },
            "sort_by[FIELD]=asc|desc; FIELD is automation_id, created_at or status.",
            style="deepObject",
        ),
        _query(
            "filter",
            {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "automation_id": {"type": "integer"},
                },
            },
            "filter[FIELD]=VALUE on status and/or automation_id.",
            style="deepObject",
        ),
    ],
)


def _range_filters(field: str, what: str) -> list[dict[str, Any]]:
    """Files.com's filter_gt/gteq/lt/lteq[FIELD] query parameters on a date-time field."""
    schema = {"type": "object", "properties": {field: {"type": "string", "format": "date-time"}}}
    words = (("gt", "after"), ("gteq", "at or after"), ("lt", "before"), ("lteq", "at or before"))
    return [
        _query(
            f"filter_{op}",
            schema,
            f"filter_{op}[{field}]=DATE-TIME: {what} {word} it.",
            style="deepObject",
        )
        for op, word in words
    ]


AUTOMATION_LIST_EXTRA: dict[str, Any] = {
    "parameters": [
        *paging_parameters(),
        _query(
            "sort_by",
            {"type": "object", "additionalProperties": {"type": "string", "enum": ["asc", "desc"]}},
            "sort_by[FIELD]=asc|desc; FIELD is name, automation, last_modified_at or disabled.",
            style="deepObject",
        ),
        _query(
            "filter",
            {
                "type": "object",
                "properties": {"disabled": {"type": "boolean"}, "automation": {"type": "string"}},
            },
            "filter[FIELD]=VALUE on disabled and/or automation.",
            style="deepObject",
        ),
        *_range_filters("last_modified_at", "automations last modified"),
    ],
}

AUTOMATION_LOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "automation_id",
        "automation_run_id",
        "path",
        "dest_path",
        "operation",
        "status",
        "error_type",
        "message",
        "created_at",
        "timestamp",
    ],
    "properties": {
        "automation_id": {"type": "integer", "format": "int64"},
        "automation_run_id": {"type": "integer", "format": "int64"},
        "path": {
            "type": ["string", "null"],
            "description": "The file handled (the folder, for create_folder)",
        },
        "dest_path": {
            "type": ["string", "null"],
            "description": "Where a copy or move wrote the file",
        },
        "operation": {
            "type": "string",
            "enum": ["create_folder", "copy", "move", "delete", "refuse"],
        },
        "status": {"type": "string", "enum": ["success", "skipped", "failure", "abandoned"]},
        "error_type": {
            "type": ["string", "null"],
            "enum": ["refused", "operation-failed", "abandoned", None],
        },
        "message": {"type": ["string", "null"], "description": "The outcome, as logged"},
        "created_at": {
            "type": "string",
            "format": "date-time",
            "description": "When it finished",
        },
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "description": "Deprecated by Files.com: the same as created_at",
        },
    },
}

AUTOMATION_LOG_LIST_DOC: dict[str, Any] = {
    **list_doc(
        "List Automation Logs",
        AUTOMATION_LOG_SCHEMA,
        "A page of entries",
        [
            *paging_parameters(1000, "Records per page (max 1,000)."),
            _query(
                "filter",
                {
                    "type": "object",
                    "properties": {
                        "automation_id": {"type": "integer"},
                        "automation_run_id": {"type": "integer"},
                        "path": {"type": "string"},
                        "dest_path": {"type": "string"},
                        "operation": {"type": "string"},
                        "status": {"type": "string"},
                        "error_type": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
                "filter[FIELD]=VALUE, exact match.",
                style="deepObject",
            ),
            *_range_filters("created_at", "entries created"),
        ],
    ),
    "description": "One entry per operation a run performed, newest first; only entries "
    "of runs the caller may see.",
}

SHOW_RUN_DOC: dict[str, Any] = {
    "summary": "Show Automation Run",
    "responses": {"200": _json(AUTOMATION_RUN_SCHEMA, "The run"), **ERRORS},
    "openapi_extra": {"security": API_KEY},
}

STATUS_MESSAGES_DOC: dict[str, Any] = {
    "summary": "Status messages of a run (signed URL, no API key)",
    "responses": {
        "200": {
            "description": "The log, one line per message",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "403": _json(ERROR_SCHEMA, "Invalid or expired signature"),
        "404": _json(ERROR_SCHEMA, "No such run"),
    },
    "openapi_extra": {
        "parameters": [
            _query("expires", {"type": "integer"}, "Expiry, Unix seconds", required=True),
            _query("signature", {"type": "string"}, "Signature", required=True),
        ]
    },
}

SECURITY_SCHEMES = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-FilesAPI-Key"}}


# The body of Create and Update Automation: Files.com's fields as Conveyor reads them
# (conveyor.domain.automations.validate_fields; lists may also be comma-separated
# strings, and other Files.com fields are accepted and ignored).
_TEXT = {"type": "string", "maxLength": MAX_PATH_LENGTH}
AUTOMATION_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "automation": {"type": "string", "enum": [t.value for t in AutomationType]},
        "trigger": {"type": "string", "enum": [t.value for t in Trigger]},
        **{
            name: _TEXT
            for name in (
                "name",
                "description",
                "path",
                "source",
                "destination_replace_from",
                "destination_replace_to",
                "exclude_pattern",
                "path_time_zone",
                "schedule_time_zone",
            )
        },
        "interval": {"type": "string", "enum": list(INTERVALS)},
        "recurring_day": {"type": "integer", "minimum": 0, "maximum": 366},
        # Files.com's ranges; null turns automatic retries off (send both or neither).
        "retry_on_failure_number_of_attempts": {
            "type": ["integer", "null"],
            "minimum": RETRY_ATTEMPTS[0],
            "maximum": RETRY_ATTEMPTS[1],
        },
        "retry_on_failure_interval_in_minutes": {
            "type": ["integer", "null"],
            "minimum": RETRY_INTERVAL_MINUTES[0],
            "maximum": RETRY_INTERVAL_MINUTES[1],
        },
        **{
            name: {"type": "boolean"}
            for name in (
                "disabled",
                "overwrite_files",
                "always_overwrite_size_matching_files",
                "flatten_destination_structure",
            )
        },
        "destinations": {"type": "array", "items": _TEXT, "maxItems": MAX_DESTINATIONS},
        "schedule_days_of_week": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": 6},
        },
        "schedule_times_of_day": {
            "type": "array",
            "items": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
        },
        "trigger_actions": {
            "type": "array",
            "items": {"type": "string", "enum": list(TRIGGER_ACTIONS)},
        },
    },
}
AUTOMATION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": AUTOMATION_BODY_SCHEMA}},
    }
}
# A webhook stores whatever it is sent (up to the body limit).
WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


# Run control (conveyor.api.run_control; docs/api.md, Cancel and rerun).
_RUN_ID_BODY = {"id": {"type": "integer", "description": "The run's id again (the SDKs send it)"}}
CANCEL_RUN_DOC: dict[str, Any] = {
    "summary": "Cancel Automation Run",
    "responses": {"200": _json(AUTOMATION_RUN_SCHEMA, "The run after the request"), **ERRORS},
    "openapi_extra": {"security": API_KEY},
}
RERUN_DOC: dict[str, Any] = {
    "summary": "Re-run Automation from Node",
    "responses": {"201": _json(AUTOMATION_RUN_SCHEMA, "The new run"), **ERRORS},
    "openapi_extra": {
        "security": API_KEY,
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            **_RUN_ID_BODY,
                            "node_id": {
                                "type": "string",
                                "enum": ["planning", "execution", "failed_operations"],
                                "description": "The node of the original the rerun starts from",
                            },
                            "failed_only": {
                                "type": "boolean",
                                "description": "Conveyor: the same as node_id failed_operations",
                            },
                        },
                        "additionalProperties": False,
                    }
                }
            },
        },
    },
}
NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "node_id": {"type": "string"},
        "node_type": {"type": "string"},
        "status": {"type": "string"},
        "run_stage": {"type": "string"},
        "reused": {"type": "boolean"},
        "successful_operations": {"type": "integer"},
        "failed_operations": {"type": "integer"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "completed_at": {"type": ["string", "null"], "format": "date-time"},
        "duration_ms": {"type": ["integer", "null"]},
    },
}
FIND_NODE_DOC: dict[str, Any] = {
    "summary": "Show Automation Run Node",
    "responses": {"200": _json(NODE_SCHEMA, "The node"), **ERRORS},
    "openapi_extra": {
        "security": API_KEY,
        "parameters": [
            _query(
                "node_id",
                {"type": "string", "enum": ["planning", "execution", "failed_operations"]},
                "The node",
                required=True,
            )
        ],
    },
}
