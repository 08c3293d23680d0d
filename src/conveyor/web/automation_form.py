"""Creating, editing, enabling, disabling and deleting automations from the browser.

The forms post URL-encoded fields named as the API's body fields. They are
turned into the body the API would receive and checked by the API's own
validation (`domain.automations.validate_fields`), then stored by the same
store functions as `api/automations.py`: the UI has no rules of its own.
A refused form comes back with what was typed and the API's message next to
the field it names. "Preview schedule" validates the form and shows the next
five slots (`domain.schedules`) without saving anything.

Every form carries the session's CSRF token; the create form also carries a
one-time token (`store.form_tokens`), so a form sent twice creates one
automation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.automations import (
    EDITABLE_FIELDS,
    INTERVALS,
    TRIGGER_ACTIONS,
    Automation,
    AutomationType,
    Trigger,
    validate_fields,
)
from conveyor.domain.permissions import PERMISSION_ERRORS
from conveyor.domain.schedules import DAY_NAMES, local_iso, schedule_of, upcoming_slots
from conveyor.store import automations as automations_store
from conveyor.store import form_tokens
from conveyor.store import permissions as permissions_store
from conveyor.store.automations import visible_automation
from conveyor.store.web_sessions import WebSession
from conveyor.web import session as cookies
from conveyor.web.automations_page import parse_id
from conveyor.web.security import check_token, read_form_pairs
from conveyor.web.templating import render

router = APIRouter(include_in_schema=False)

PREVIEW_SLOTS = 5
TEXT_FIELDS = (
    "name",
    "description",
    "automation",
    "trigger",
    "path",
    "source",
    "destination_replace_from",
    "destination_replace_to",
    "exclude_pattern",
    "path_time_zone",
    "schedule_times_of_day",
    "schedule_time_zone",
    "recurring_days",
    "holiday_region",
)
BOOL_FIELDS = (
    "overwrite_files",
    "always_overwrite_size_matching_files",
    "flatten_destination_structure",
    "always_serialize_jobs",
)
MULTI_FIELDS = ("schedule_days_of_week", "trigger_actions")
# Whole numbers where an empty box means "not set" (null in the API body); the
# newest-N limit is sent as Files.com's `value: {"limit": N}`.
OPTIONAL_NUMBER_FIELDS = (
    "value_limit",
    "recurring_day",
    "retry_on_failure_number_of_attempts",
    "retry_on_failure_interval_in_minutes",
)
# Which form sections apply to which automation type / trigger (the script hides the
# others; without it every section shows, each saying what it is for).
TYPE_SECTIONS = {
    "source": ("copy_file", "move_file", "delete_file"),
    "destinations": ("create_folder", "copy_file", "move_file"),
    "copying": ("copy_file", "move_file"),
}
TRIGGER_SECTIONS = {
    "daily": ("daily",),
    "custom": ("custom_schedule",),
    "times": ("daily", "custom_schedule"),
    "actions": ("action",),
}
# Messages that name a field by another word than its form field's name.
_FIELD_ALIASES = {"destination": "destinations"}
_FIELD_WORD = re.compile(r"[a-z_]+")


def error_field(message: str) -> str | None:
    """The form field an API message is about: the first field name it mentions
    ("Parameter missing: source (...)", "recurring_day for interval week must ...")."""
    if message.startswith("value"):  # value.limit, value must be an object, value.x
        return "value_limit"
    for word in _FIELD_WORD.findall(message):
        name = _FIELD_ALIASES.get(word, word)
        if name in EDITABLE_FIELDS:
            return str(name)
    return None


def body_from_form(pairs: Sequence[tuple[str, str]], creating: bool) -> dict[str, Any]:
    """The API body the form stands for. Text is trimmed; an empty interval,
    recurring_day or retry setting is "not set"; destinations are one per line; an unticked
    checkbox is false."""
    single = dict(pairs)
    body: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in single:
            body[name] = single[name].strip()
    for name in ("interval", *OPTIONAL_NUMBER_FIELDS):
        if name in single:
            body[name] = single[name].strip() or None
    if "value_limit" in body:
        limit = body.pop("value_limit")
        body["value"] = None if limit is None else {"limit": limit}
    if "destinations" in single:
        body["destinations"] = [
            line.strip() for line in single["destinations"].splitlines() if line.strip()
        ]
    for name in MULTI_FIELDS:
        body[name] = [value for key, value in pairs if key == name]
    for name in BOOL_FIELDS:
        body[name] = single.get(name) == "true"
    if creating:
        body["disabled"] = single.get("disabled") == "true"
    return body


@dataclass(frozen=True, slots=True)
class FormValues:
    """What the form shows in its fields (strings and lists of strings)."""

    values: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name, "")

    def has(self, name: str, value: str) -> bool:
        return value in self.values.get(name, ())


def values_of(automation: Automation | None) -> FormValues:
    if automation is None:
        return FormValues({"automation": "create_folder", "trigger": "manual"})
    return FormValues(
        {
            **{name: getattr(automation, name) or "" for name in TEXT_FIELDS},
            "automation": automation.automation.value,
            "trigger": automation.trigger.value,
            "schedule_times_of_day": ", ".join(automation.schedule_times_of_day),
            "recurring_days": ", ".join(str(day) for day in automation.recurring_days),
            "interval": automation.interval or "",
            **{
                name: "" if getattr(automation, name) is None else getattr(automation, name)
                for name in OPTIONAL_NUMBER_FIELDS
            },
            "destinations": "\n".join(automation.destinations),
            "schedule_days_of_week": [str(d) for d in automation.schedule_days_of_week],
            "trigger_actions": list(automation.trigger_actions),
            **{name: getattr(automation, name) for name in BOOL_FIELDS},
            "disabled": automation.disabled,
        }
    )


def values_from_body(body: dict[str, Any]) -> FormValues:
    """What was typed, to show again with an error."""
    shown: dict[str, Any] = {name: body.get(name) or "" for name in TEXT_FIELDS}
    shown["interval"] = body.get("interval") or ""
    for name in OPTIONAL_NUMBER_FIELDS:
        shown[name] = body.get(name) or ""
    shown["value_limit"] = (body.get("value") or {}).get("limit") or ""
    shown["destinations"] = "\n".join(body.get("destinations") or ())
    for name in MULTI_FIELDS:
        shown[name] = list(body.get(name) or ())
    for name in (*BOOL_FIELDS, "disabled"):
        shown[name] = bool(body.get(name))
    return FormValues(shown)


@dataclass(frozen=True, slots=True)
class Slot:
    at: int
    local: str


def preview_slots(values: dict[str, Any], now: int) -> tuple[str | None, list[Slot]]:
    """The validated values' schedule zone and next slots (none for an unscheduled trigger)."""
    draft = Automation(
        id=0,
        user_id=0,
        automation=AutomationType(values["automation"]),
        trigger=Trigger(values["trigger"]),
        interval=values.get("interval"),
        recurring_day=values.get("recurring_day"),
        schedule_days_of_week=tuple(values.get("schedule_days_of_week") or ()),
        schedule_times_of_day=tuple(values.get("schedule_times_of_day") or ()),
        schedule_time_zone=values.get("schedule_time_zone") or "",
    )
    schedule = schedule_of(draft)
    if schedule is None:
        return None, []
    slots = upcoming_slots(schedule, now, PREVIEW_SLOTS)
    return schedule.zone_name, [Slot(at, local_iso(at, schedule.zone)) for at in slots]


def _form_page(
    request: Request,
    session: WebSession,
    *,
    automation: Automation | None,
    shown: FormValues,
    form_token: str | None,
    error: str | None = None,
    preview: tuple[str | None, list[Slot]] | None = None,
    status_code: int = 200,
) -> Response:
    field = error_field(error) if error else None
    editing = automation is not None
    return render(
        "automation_form.html",
        status_code=status_code,
        title=f"Edit {automation.name or f'automation {automation.id}'}"
        if automation is not None
        else "New automation",
        user=session.user,
        csrf_token=session.csrf_token,
        now=ctx(request).clock.now(),
        automation=automation,
        editing=editing,
        form=shown,
        form_token=form_token,
        error=error,
        error_at=field,
        types=[t.value for t in AutomationType],
        triggers=[t.value for t in Trigger],
        intervals=INTERVALS,
        actions=TRIGGER_ACTIONS,
        days=list(enumerate(DAY_NAMES)),
        type_sections=TYPE_SECTIONS,
        trigger_sections=TRIGGER_SECTIONS,
        preview=preview,
    )


@router.get("/automations/new")
def new_automation(request: Request) -> Response:
    context = ctx(request)
    with context.db.read() as conn:
        session = cookies.require_session(conn, request, context)
    token = form_tokens.issue(context.clock.now())
    return _form_page(request, session, automation=None, shown=values_of(None), form_token=token)


def _check_form_token(token: str, now: int) -> None:
    issued = form_tokens.issued_at(token)
    if issued is None or not now - form_tokens.MAX_AGE_US <= issued <= now + 60_000_000:
        raise errors.NotAuthorized(
            "This form has expired or was not issued by this server. "
            "Open the form again and resubmit."
        )


@router.post("/automations/new")
async def create_automation(request: Request) -> Response:
    return await _save(request, None)


@router.get("/automations/{automation_id}/edit")
def edit_automation(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(automation_id, "automation")
    with context.db.read() as conn:
        session = cookies.require_session(conn, request, context)
        automation = visible_automation(conn, target, session.user)
    return _form_page(
        request, session, automation=automation, shown=values_of(automation), form_token=None
    )


@router.post("/automations/{automation_id}/edit")
async def update_automation(automation_id: str, request: Request) -> Response:
    return await _save(request, parse_id(automation_id, "automation"))


async def _save(request: Request, target: int | None) -> Response:
    """Create (`target` None) or update an automation from its form, or preview the
    schedule. Validation (`domain.automations.validate_fields`) and the folder-permission
    check (`store.permissions.check_automation_at_save`) are the API's, the latter in
    the writing transaction; a refusal shows the form again with what was typed and the
    message next to the field it names, and nothing is saved."""
    context = ctx(request)
    pairs = await read_form_pairs(request)
    single = dict(pairs)
    creating = target is None
    with context.db.read() as conn:
        session = cookies.require_session(conn, request, context)
        check_token(single.get("csrf_token"), session.csrf_token)
        current = None if target is None else visible_automation(conn, target, session.user)
    now = context.clock.now()
    form_token = single.get("form_token", "") if creating else None
    if form_token is not None:
        _check_form_token(form_token, now)
    body = body_from_form(pairs, creating=creating)

    def again(status_code: int = 200, **shown: Any) -> Response:
        return _form_page(
            request,
            session,
            automation=current,
            shown=values_from_body(body),
            form_token=form_token,
            status_code=status_code,
            **shown,
        )

    def work(conn: Any) -> str:
        fresh = cookies.require_session(conn, request, context)
        check_token(single.get("csrf_token"), fresh.csrf_token)
        if target is None:
            assert form_token is not None
            earlier = form_tokens.claim(conn, form_token, now)
            if earlier is not None:
                return earlier or "/automations"
            new_id = automations_store.create_automation(conn, fresh.user.id, now, **values)
            created = automations_store.get_automation(conn, new_id)
            assert created is not None
            permissions_store.check_automation_at_save(conn, created)  # raising rolls back
            done = f"/automations/{new_id}?created=1"
            form_tokens.record(conn, form_token, done)
            return done
        latest = visible_automation(conn, target, fresh.user)
        # Validated again against the row as it is now, in the writing transaction.
        saved = automations_store.update_automation(
            conn, latest, validate_fields(body, latest), now
        )
        permissions_store.check_automation_at_save(conn, saved, latest)  # raising rolls back
        return f"/automations/{target}?saved=1"

    try:
        values = validate_fields(body, current)
        if single.get("action") == "preview":
            merged = {name: getattr(current, name) for name in EDITABLE_FIELDS} if current else {}
            return again(preview=preview_slots(merged | values, now))
        try:
            done = await run_in_threadpool(context.db.run_write, work)
        except IntegrityError:
            if not creating:
                raise
            # A concurrent submit of the same form claimed its token first.
            done = await run_in_threadpool(context.db.run_write, work)
    except errors.BadRequest as exc:
        return again(error=exc.message, status_code=400)
    except PERMISSION_ERRORS as exc:
        return again(error=exc.message, status_code=403)
    return RedirectResponse(done, status_code=303)


async def _state_change(request: Request, automation_id: str, disabled: bool) -> Response:
    context = ctx(request)
    target = parse_id(automation_id, "automation")
    form = dict(await read_form_pairs(request))

    def work(conn: Any) -> None:
        session = cookies.require_session(conn, request, context)
        check_token(form.get("csrf_token"), session.csrf_token)
        current = visible_automation(conn, target, session.user)
        values = validate_fields({"disabled": disabled}, current)
        automations_store.update_automation(conn, current, values, context.clock.now())

    await run_in_threadpool(context.db.run_write, work)
    notice = "disabled" if disabled else "enabled"
    return RedirectResponse(f"/automations/{target}?{notice}=1", status_code=303)


@router.post("/automations/{automation_id}/disable")
async def disable_automation(automation_id: str, request: Request) -> Response:
    return await _state_change(request, automation_id, True)


@router.post("/automations/{automation_id}/enable")
async def enable_automation(automation_id: str, request: Request) -> Response:
    return await _state_change(request, automation_id, False)


def _confirm(request: Request, automation_id: str, template: str, verb: str) -> Response:
    """A page saying what the action does, with the form that does it."""
    context = ctx(request)
    target = parse_id(automation_id, "automation")
    with context.db.read() as conn:
        session = cookies.require_session(conn, request, context)
        automation = visible_automation(conn, target, session.user)
    return render(
        template,
        title=f"{verb} {automation.name or f'automation {automation.id}'}?",
        user=session.user,
        csrf_token=session.csrf_token,
        now=context.clock.now(),
        automation=automation,
    )


@router.get("/automations/{automation_id}/disable")
def confirm_disable(automation_id: str, request: Request) -> Response:
    return _confirm(request, automation_id, "confirm_disable.html", "Disable")


@router.get("/automations/{automation_id}/delete")
def confirm_delete(automation_id: str, request: Request) -> Response:
    return _confirm(request, automation_id, "confirm_delete.html", "Delete")


@router.post("/automations/{automation_id}/delete")
async def delete_automation(automation_id: str, request: Request) -> Response:
    """Delete as the API's DELETE does (store.automations.delete_automation)."""
    context = ctx(request)
    target = parse_id(automation_id, "automation")
    form = dict(await read_form_pairs(request))

    def work(conn: Any) -> None:
        session = cookies.require_session(conn, request, context)
        check_token(form.get("csrf_token"), session.csrf_token)
        visible_automation(conn, target, session.user)
        automations_store.delete_automation(conn, target, context.clock.now())

    await run_in_threadpool(context.db.run_write, work)
    return RedirectResponse(f"/automations?deleted={target}", status_code=303)
