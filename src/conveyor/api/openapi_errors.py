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
ERROR_ANSWERS = {
    "400": "Bad request (Files.com error body)",
    "401": "Not authenticated",
    "404": "Not found",
    "429": "Rate limited; see Retry-After",
    "503": "The database is unavailable (docs/operations.md, Outages); see Retry-After",
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
            for code, description in answers.items():
                responses.setdefault(code, _error(description))
            if not keyless:
                operation.setdefault("security", API_KEY)
    return schema
