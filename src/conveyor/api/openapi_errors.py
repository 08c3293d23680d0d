"""Completes the served OpenAPI document with the answers every operation can really give.

Conveyor renders every error as Files.com JSON (SPEC 2.3) with 400 for bad
input, so FastAPI's generated `422 Validation Error` never happens and is
removed; each API operation documents the Files.com error responses and,
unless it is reached without a key, the API-key requirement. Checked by
Schemathesis against the served document (tests/ops/test_openapi.py).
"""

from __future__ import annotations

from typing import Any

from conveyor.api.openapi import API_KEY, ERROR_SCHEMA

# Operations reached without an API key: their URL carries the credential.
NO_API_KEY = ("/api/rest/v1/webhooks/", "/api/rest/v1/automation_runs/{run_id}/status_messages")
# Each names the Files.com types Conveyor sends with that status; every type names a
# class both official SDKs have (docs/api.md, tests/compat/test_error_classes.py).
ERROR_ANSWERS = {
    "400": "Bad request: type `bad-request/NAME` (request-params-required, "
    "request-params-invalid, invalid-sort-field, does-not-support-sorting, "
    "multiple-sort-params-not-allowed, invalid-filter-field, invalid-filter-param-value, "
    "invalid-cursor, invalid-cursor-type-for-sort, invalid-path, method-not-allowed) "
    "or `bad-request`",
    "401": "Not authenticated, before anything else is checked: type "
    "`not-authenticated/authentication-required` (no key) or "
    "`not-authenticated/invalid-credentials` (unknown or revoked key)",
    "404": "Not found, or not visible to the caller: type `not-found`",
    "429": "Rate limited: type `rate-limited/too-many-requests`; see Retry-After",
    "503": "The database is unavailable (docs/operations.md, Outages): type "
    "`service-unavailable/automations-unavailable`; see Retry-After",
}
# Operations that can refuse what they were asked with a processing failure.
PROCESSING_FAILURES = {
    "/api/rest/v1/automations/{automation_id}/manual_run": "The automation cannot be run "
    "(it is disabled): type `processing-failure/automation-cannot-be-run-manually`",
    "/api/rest/v1/automation_runs/{run_id}/cancel": "The run already finished: type "
    "`processing-failure/already-completed`",
    "/api/rest/v1/automation_runs/{run_id}/rerun": "The run has not finished (type "
    "`processing-failure/resource-locked`), or its automation was deleted or disabled "
    "(type `processing-failure/automation-cannot-be-run-manually`)",
}
KEYLESS_ANSWERS = {code: ERROR_ANSWERS[code] for code in ("400", "404", "503")}
# Operations that answer 403 (Files.com's not-authorized types): admin-only permission
# routes, and automations a non-admin may not read or write with (docs/permissions.md).
FORBIDDEN = {
    ("/api/rest/v1/permissions", "get"),
    ("/api/rest/v1/permissions", "post"),
    ("/api/rest/v1/permissions/{permission_id}", "delete"),
    ("/api/rest/v1/automations", "post"),
    ("/api/rest/v1/automations/{automation_id}", "patch"),
}
# Keyless operations that still have a token bucket (one per automation's webhook).
RATE_LIMITED_KEYLESS = ("/api/rest/v1/webhooks/",)


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers and key requirements of /api/ operations, in place; returns it."""
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        keyless = path.startswith(NO_API_KEY)
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if (path, method) in FORBIDDEN:
                operation["responses"].setdefault("403", _error("Not authorized"))
            responses = operation["responses"]
            responses.pop("422", None)
            answers = KEYLESS_ANSWERS if keyless else ERROR_ANSWERS
            if path.startswith(RATE_LIMITED_KEYLESS):
                answers = {**answers, "429": ERROR_ANSWERS["429"]}
            if path in PROCESSING_FAILURES:
                answers = {**answers, "422": PROCESSING_FAILURES[path]}
            for code, description in answers.items():
                responses.setdefault(code, _error(description))
            if not keyless:
                operation.setdefault("security", API_KEY)
    return schema
