"""Webhook triggers: `GET` or `POST /api/rest/v1/webhooks/{secret}` creates a run.

The URL is the credential, as in Files.com: no API key is read (so none can
leak through this endpoint), and an unknown, deleted or disabled webhook
answers the same Files.com-shaped 404, so a caller cannot tell which. The
request's method, query and body are stored with the run (`run_inputs`)
and summarised in its log; the secret is never written to the log, whose
signed URL may be shared.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.api import ratelimit
from conveyor.api.body import MAX_BODY_BYTES, read_limited
from conveyor.api.openapi import WEBHOOK_BODY
from conveyor.api.runs import JSON, encoder_for
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.automations import Trigger
from conveyor.store import runs as runs_store
from conveyor.store import triggers as store
from conveyor.store.prepared import run_steps

router = APIRouter(prefix="/api/rest/v1")

# Secrets are hex tokens (store.automations); anything else cannot exist.
_SECRET = re.compile(r"^[0-9a-f]{16,64}$")
# How much of a body the log shows; the whole body is kept with the run.
LOG_BODY_CHARS = 4_000
LOG_QUERY_CHARS = 2_000


def _not_found() -> errors.NotFound:
    return errors.NotFound("Webhook not found.")


def _payload(request: Request, body: bytes) -> dict[str, Any]:
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "method": request.method,
        "query": [[name, value] for name, value in request.query_params.multi_items()],
        "content_type": request.headers.get("content-type"),
        "body_bytes": len(body),
        "body": text if text is not None else base64.b64encode(body).decode("ascii"),
        "body_encoding": "utf-8" if text is not None else "base64",
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def log_lines(payload: dict[str, Any], client: str | None) -> list[str]:
    """What a person reading the run's log learns about the call that started it."""
    source = f" from {client}" if client else ""
    lines = [f"Started by a webhook call: {payload['method']}{source}."]
    if payload["query"]:
        query = "&".join(f"{name}={value}" for name, value in payload["query"])
        lines.append(f"Webhook query: {_clip(query, LOG_QUERY_CHARS)}")
    size = payload["body_bytes"]
    kind = payload["content_type"] or "no content type"
    if size == 0:
        lines.append("Webhook body: empty.")
    elif payload["body_encoding"] == "utf-8":
        lines.append(
            f"Webhook body ({kind}, {size} bytes): {_clip(payload['body'], LOG_BODY_CHARS)}"
        )
    else:
        lines.append(
            f"Webhook body ({kind}, {size} bytes) is not UTF-8 text; "
            "it is stored with the run, base64-encoded."
        )
    return lines


async def _trigger(secret: str, request: Request) -> Response:
    context = ctx(request)
    if not _SECRET.match(secret):
        raise _not_found()
    body = await read_limited(request, MAX_BODY_BYTES, "The webhook body")
    payload = _payload(request, body)
    client = request.client.host if request.client else None

    def work(conn: Connection) -> Any:
        automation = store.find_webhook_automation(conn, secret)
        if automation is None or automation.disabled:
            raise _not_found()
        if context.rate_limiter is not None:
            bucket = ratelimit.webhook_bucket(automation.id)
            run_steps(conn, context.rate_limiter.take_token(bucket, "this webhook"))
        run_id = store.create_triggered_run(
            conn,
            automation.id,
            context.clock.now(),
            trigger=Trigger.WEBHOOK.value,
            kind="webhook",
            payload=payload,
            messages=log_lines(payload, client),
        )
        return runs_store.run_row(conn, run_id)

    row = await run_in_threadpool(context.db.run_write, work)
    context.on_run_created(row.id)
    return Response(
        orjson.dumps(encoder_for(context, request).run(row)), status_code=201, media_type=JSON
    )


@router.post(
    "/webhooks/{secret}",
    summary="Call an automation's webhook (Conveyor: creates a run)",
    status_code=201,
    openapi_extra=WEBHOOK_BODY,
    description=(
        "No API key: the secret URL (the automation's `webhook_url`) is the credential. "
        "Answers 201 with the created run; 404 for an unknown or disabled webhook. "
        f"The body (at most {MAX_BODY_BYTES} bytes) and query are stored with the run."
    ),
)
async def post_webhook(secret: str, request: Request) -> Response:
    return await _trigger(secret, request)


@router.get(
    "/webhooks/{secret}",
    summary="Call an automation's webhook with GET (Conveyor: creates a run)",
    status_code=201,
)
async def get_webhook(secret: str, request: Request) -> Response:
    return await _trigger(secret, request)
