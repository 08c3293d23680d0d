"""Cancel, rerun and the nodes of a run (Files.com's AutomationRun actions).

`POST /automation_runs/{id}/cancel`, `POST /automation_runs/{id}/rerun` and
`GET /automation_runs/{id}/node`, as the official SDKs call them
(`automation_run.cancel(id)`, `rerun(id, {"node_id": ...})`, `find_node(id,
{"node_id": ...})`). The writes are `conveyor.store.run_control`'s, shared
with the bulk actions and the web UI; this module only parses, checks that
the caller may see the run (404 otherwise) and encodes. docs/api.md.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.api.auth import caller
from conveyor.api.body import MAX_BODY_BYTES, read_limited
from conveyor.api.openapi import CANCEL_RUN_DOC, FIND_NODE_DOC, RERUN_DOC
from conveyor.api.runs import encoder_for
from conveyor.clock import to_rfc3339
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import check_sent_id, parse_id, query_pairs
from conveyor.domain.runs import NODE_IDS, NodeState, RerunNode, node_state, parse_rerun_node
from conveyor.store import engine as engine_store
from conveyor.store import run_control
from conveyor.store import runs as runs_store
from conveyor.store.prepared import run_steps
from conveyor.store.users import User

router = APIRouter(prefix="/api/rest/v1")

JSON = "application/json"


async def _params(request: Request, allowed: tuple[str, ...], action: str) -> dict[str, Any]:
    """The parameters sent in the query string and the JSON body (the official SDKs put
    a POST's in the body); one sent in both places must agree. Anything but `id` and
    `allowed` is refused by name."""
    params: dict[str, Any] = dict(query_pairs(request.scope.get("query_string", b"")))
    raw = await read_limited(request, MAX_BODY_BYTES, "The request body")
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.RequestParamsInvalid("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise errors.RequestParamsInvalid("The request body must be a JSON object.")
        for name, value in body.items():
            if name in params and str(params[name]).lower() != str(value).lower():
                raise errors.RequestParamsInvalid(
                    f"{name[:60]!r} was sent twice with different values (query and body)."
                )
            params[name] = value
    for name in params:
        if name != "id" and name not in allowed:
            takes = ", ".join(("id", *allowed))
            raise errors.RequestParamsInvalid(
                f"{name[:60]!r} is not a parameter of {action} (it takes {takes}); Conveyor "
                "refuses what it does not support rather than ignore it."
            )
    return params


def _visible(conn: Connection, request: Request, run_id: int, sent_id: object) -> User:
    """The caller, once the run is known to be visible to it (404 otherwise)."""
    user = caller(request)
    check_sent_id(run_id, sent_id)
    if run_steps(conn, runs_store.find_visible_run(conn.dialect, run_id, user)) is None:
        raise errors.NotFound(f"Automation Run {run_id} not found.")
    return user


def _respond(request: Request, row: Any, status: int = 200) -> Response:
    body = orjson.dumps(encoder_for(ctx(request), request).run(row))
    return Response(body, status_code=status, media_type=JSON)


@router.post("/automation_runs/{run_id}/cancel", **CANCEL_RUN_DOC)
async def cancel_automation_run(run_id: str, request: Request) -> Response:
    """Cancel a queued run at once, or a running one at its next operation boundary."""
    context = ctx(request)
    target = parse_id(run_id)
    params = await _params(request, (), "Cancel Automation Run")

    def work(conn: Connection) -> Any:
        user = _visible(conn, request, target, params.get("id"))
        run_control.request_cancel(conn, target, by=user.name, now=context.clock.now())
        return runs_store.run_row(conn, target)

    row = await run_in_threadpool(context.db.run_write, work)
    return _respond(request, row)


@router.post("/automation_runs/{run_id}/rerun", status_code=201, **RERUN_DOC)
async def rerun_automation_run(run_id: str, request: Request) -> Response:
    """A new run rerunning a finished one from a node (`node_id`, or `failed_only`)."""
    context = ctx(request)
    target = parse_id(run_id)
    params = await _params(request, ("node_id", "failed_only"), "Rerun Automation Run")
    node = parse_rerun_node(params.get("node_id"), params.get("failed_only"))

    def work(conn: Connection) -> Any:
        user = _visible(conn, request, target, params.get("id"))
        rerun = run_control.create_rerun(
            conn, target, by=user.name, now=context.clock.now(), node=node
        )
        return runs_store.run_row(conn, rerun.id)

    row = await run_in_threadpool(context.db.run_write, work)
    context.on_run_created(row.id)
    return _respond(request, row, 201)


@router.get("/automation_runs/{run_id}/node", **FIND_NODE_DOC)
def find_automation_run_node(run_id: str, request: Request) -> Response:
    """One node of the run (Files.com's AutomationExecutionNode)."""
    context = ctx(request)
    target = parse_id(run_id)
    params = dict(query_pairs(request.scope.get("query_string", b"")))
    with context.db.read() as conn:
        _visible(conn, request, target, params.get("id"))
        for name in params:
            if name not in ("id", "node_id"):
                raise errors.RequestParamsInvalid(
                    f"{name[:60]!r} is not a parameter of Find Automation Run Node (it takes "
                    "id, node_id)."
                )
        node_id = params.get("node_id")
        if not node_id:
            raise errors.RequestParamsRequired(
                f"node_id is required: one of the nodes of a Conveyor run ({NODE_IDS})."
            )
        if node_id not in RerunNode._value2member_map_:
            raise errors.RequestParamsInvalid(
                f"node_id {node_id[:60]!r} is not a node of a Conveyor run; the nodes are "
                f"{NODE_IDS}."
            )
        run = runs_store.get_run(conn, target)
        times = engine_store.lease_info(conn, target)
    assert run is not None and times is not None
    state = node_state(
        run,
        RerunNode(node_id),
        planning_at=times.planning_at,
        queued_for_execution_at=times.queued_for_execution_at,
        executing_at=times.executing_at,
    )
    return Response(orjson.dumps(encode_node(state)), media_type=JSON)


def encode_node(state: NodeState) -> dict[str, Any]:
    duration = None
    if state.started_at is not None and state.completed_at is not None:
        duration = (state.completed_at - state.started_at) // 1000
    return {
        "node_id": state.node_id,
        "node_type": state.node_type,
        "status": state.status,
        "run_stage": state.run_stage,
        # A rerun plans again: it never reuses a node's output as it was.
        "reused": False,
        "successful_operations": state.successful_operations,
        "failed_operations": state.failed_operations,
        "started_at": to_rfc3339(state.started_at),
        "completed_at": to_rfc3339(state.completed_at),
        "duration_ms": duration,
    }
