"""Fuzzing every operation of the OpenAPI document, with generated bodies on the write
routes, in-process (ASGI) on both databases: no input may get a 5xx.

Cases come from Hypothesis strategies that schemathesis derives from the served
schemas: positive (fitting the schema: valid types, then the domain's own checks
decide) and negative (breaking it: wrong types, bad strings, huge numbers).
About half the cases name a record that exists (an automation, a run, a webhook
secret), so the checks behind a 404 are reached too. Derandomized: the same
requests every run. At least MIN_REQUESTS per database.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from conveyor.app import create_app
from conveyor.config import Settings
from conveyor.store import automations as automation_store
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

OPENAPI = "/api/rest/v1/openapi.json"
WRITE_EXAMPLES = 200  # per write operation and generation mode
READ_EXAMPLES = 15  # per read operation and generation mode
MIN_REQUESTS = 2500  # per database: 5,000 per suite run at least


def test_no_generated_request_gets_a_5xx(settings: Settings, db: Database, seed: Seeder) -> None:
    # /readyz answers 503 without an engine heartbeat: documented, and not what this tests.
    app = create_app(replace(settings, ready_requires_workers=False), db, clock=seed.clock)
    alice = seed.account("alice")
    automations = [seed.automation(alice) for _ in range(3)]
    hook = seed.automation(alice)
    with db.write() as conn:
        automation_store.update_automation(
            conn,
            automation_store.get_automation(conn, hook),  # type: ignore[arg-type]
            {"trigger": "webhook"},
            seed.clock.now(),
        )
        secret = automation_store.get_automation(conn, hook).webhook_secret  # type: ignore[union-attr]
    runs = [seed.run(automations[0], messages=["copied a.txt"]).id for _ in range(2)]
    real: dict[str, Any] = {"automation_id": automations[1], "run_id": runs[0], "secret": secret}
    headers = {"X-FilesAPI-Key": alice.key}
    schema = schemathesis.openapi.from_asgi(OPENAPI, app)

    sent = 0
    server_errors: list[str] = []

    def fuzz(operation: Any, mode: GenerationMode, examples: int) -> None:
        @hypothesis.seed(20261207)
        @hypothesis_settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode), existing=st.booleans())
        def check(case: schemathesis.Case, existing: bool) -> None:
            nonlocal sent
            if existing and case.path_parameters:
                for name in case.path_parameters:
                    if name in real:
                        case.path_parameters[name] = real[name]
            sent += 1
            where = f"{case.operation.label} ({mode.value})"
            try:
                response = case.call(headers=headers)
            except Exception as exc:  # the in-process client re-raises what the app raised
                server_errors.append(f"{where}: {exc!r}"[:1500])
                return
            if response.status_code >= 500:
                server_errors.append(
                    f"{where}: {response.status_code} for {case.as_curl_command()}: "
                    f"{response.text[:300]}"[:1500]
                )

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # Nothing in this operation can break its schema (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE, operation.label

    for result in schema.get_all_operations():
        operation = result.ok()
        writes = operation.method.upper() in ("POST", "PATCH", "PUT", "DELETE")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, WRITE_EXAMPLES if writes else READ_EXAMPLES)
    print(f"fuzz: {sent} requests, {len(server_errors)} answered 5xx")
    assert sent >= MIN_REQUESTS, sent
    assert not server_errors, f"{len(server_errors)} of {sent}:\n" + "\n".join(server_errors[:10])
