"""Schemathesis against the served OpenAPI document, over every operation, authenticated:
no 5xx, documented status codes, content types and bodies. The document itself validates."""

from __future__ import annotations

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from ops_support import Serve
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conveyor.clock import SystemClock
from conveyor.store import heartbeats
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

OPENAPI = "/api/rest/v1/openapi.json"
EXAMPLES = 40  # per operation; with derandomize the same cases every run
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The schema is the same on both databases: fuzzed once, on SQLite.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def test_the_served_document_validates(serve: Serve) -> None:
    document = httpx.get(f"{serve().url}{OPENAPI}").json()
    validate(document)  # raises on any violation of the OpenAPI specification
    operations = [(path, method) for path, item in document["paths"].items() for method in item]
    assert ("/api/rest/v1/automation_runs", "get") in operations
    assert ("/readyz", "get") in operations
    for path, method in operations:
        responses = document["paths"][path][method]["responses"]
        # Bad input is a 400, never FastAPI's 422 Validation Error; the one 422 is the
        # Files.com processing failure of a manual run that cannot be started.
        if path.endswith("/manual_run"):
            assert "automation-cannot-be-run-manually" in responses["422"]["description"]
        elif path.endswith("/cancel"):
            assert "already-completed" in responses["422"]["description"]
        elif path.endswith("/rerun"):
            assert "resource-locked" in responses["422"]["description"]
        else:
            assert "422" not in responses, f"{method} {path}: Conveyor answers 400, never 422"


def test_every_operation_against_the_schema(serve: Serve, db: Database, seed: Seeder) -> None:
    server = serve(heartbeat_timeout=3600.0)  # the one beat below lasts the whole test
    admin = seed.account("admin", admin=True)
    automation = seed.automation(admin)
    for n in range(3):
        seed.run(automation, outcome=(2, n), messages=["copied a.txt"])
    with db.write() as conn:  # so /readyz may answer 200, as documented
        heartbeats.beat(conn, "test-worker", "worker", "localhost", 1, SystemClock().now())
    schema = schemathesis.openapi.from_url(f"{server.url}{OPENAPI}")
    headers = {"X-FilesAPI-Key": admin.key}
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tested += 1

        @hypothesis.seed(20240216)
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers=headers, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseException as exc:  # a failure group; collected, reported below
                failures.append(f"{case.operation.label}: {exc}"[:2000])

        check()
    assert tested >= 15
    assert not failures, "\n\n".join(failures[:10])
