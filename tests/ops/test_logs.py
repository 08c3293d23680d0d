"""Structured logs: one JSON line per request and per run transition, request ids that match."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest
from ops_support import Serve

from conveyor.domain.runs import RunStage
from conveyor.observability.logs import JsonFormatter
from conveyor.store import runs
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder

API = "/api/rest/v1"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the `conveyor` loggers write, formatted as `conveyor serve` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("conveyor")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def records(stream: io.StringIO, logger: str) -> list[dict[str, object]]:
    parsed = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    return [record for record in parsed if record["logger"] == logger]


def test_one_line_per_request_with_its_id_route_and_user(
    serve: Serve, seed: Seeder, lines: io.StringIO
) -> None:
    server = serve()
    alice = seed.account("alice")
    automation = seed.automation(alice)
    ok = httpx.get(
        f"{server.url}{API}/automation_runs?automation_id={automation}&per_page=5",
        headers={"X-FilesAPI-Key": alice.key},
    )
    failed = httpx.get(
        f"{server.url}{API}/automation_runs/abc", headers={"X-FilesAPI-Key": alice.key}
    )
    anonymous = httpx.get(f"{server.url}{API}/automation_runs/1")
    logged = records(lines, "conveyor.access")
    assert [record["request_id"] for record in logged] == [
        reply.headers["X-Request-Id"] for reply in (ok, failed, anonymous)
    ]
    first, second, third = logged
    assert first["route"] == f"{API}/automation_runs"
    assert (first["status"], first["method"], first["user_id"]) == (200, "GET", alice.user.id)
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] > 0
    assert first["level"] == "info" and str(first["time"]).endswith("Z")
    # The error body's instance is the id a user reports, and the log line has it.
    assert failed.json()["instance"] == second["request_id"]
    assert (second["route"], second["status"]) == (f"{API}/automation_runs/{{run_id}}", 400)
    assert (third["status"], third["user_id"]) == (401, None)
    assert "per_page" not in str(first), "no query strings (cursors) in the log"


def test_access_log_can_be_turned_off(serve: Serve, lines: io.StringIO) -> None:
    server = serve(access_log=False)
    httpx.get(f"{server.url}/healthz")
    assert records(lines, "conveyor.access") == []


def test_one_line_per_run_transition(
    serve: Serve, db: Database, seed: Seeder, lines: io.StringIO
) -> None:
    serve()  # the app installs the run observers
    automation = seed.automation(seed.account("alice"))
    with db.write() as conn:
        run = runs.create_run(conn, automation, 1_000_000, trigger="webhook")
        for stage in (RunStage.PLANNING, RunStage.QUEUED_FOR_EXECUTION, RunStage.EXECUTING):
            runs.advance_stage(conn, run.id, stage)
        runs.record_operation(conn, run.id, True, 2_000_000)
        runs.finish_run(conn, run.id, 3_000_000)
    logged = records(lines, "conveyor.runs")
    assert [(r["run_id"], r["stage"], r["status"]) for r in logged] == [
        (run.id, "queued_for_planning", "running"),
        (run.id, "planning", "running"),
        (run.id, "queued_for_execution", "running"),
        (run.id, "executing", "running"),
        (run.id, "finished", "success"),
    ]
    assert logged[0]["trigger"] == "webhook"
    assert logged[-1]["successful_operations"] == 1
    assert all(r["automation_id"] == automation for r in logged)


def test_exceptions_are_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "conveyor.api",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            exc_info=__import__("sys").exc_info(),
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = orjson.loads(line)
    assert data["message"] == "failed x"
    assert "ValueError: boom" in data["exception"]
