"""Client commands: talk to a Conveyor server over its API through `conveyor.sdk`.

The server and key come from `--url`/`--api-key` or CONVEYOR_URL/CONVEYOR_API_KEY.
"""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import orjson
import typer

from conveyor import sdk
from conveyor.cli.output import (
    EXIT_AUTH,
    OutputFormat,
    client_errors,
    write_page,
    write_record,
)
from conveyor.sdk.run_log import (
    DEFAULT_FOLLOW_INTERVAL,
    MAX_FOLLOW_INTERVAL,
    MIN_FOLLOW_INTERVAL,
)

__all__ = [
    "DEFAULT_URL",
    "AllPagesOption",
    "ApiKeyOption",
    "CursorOption",
    "FormatOption",
    "UrlOption",
    "make_client",
    "register",
]

DEFAULT_URL = "http://127.0.0.1:8080"

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="CONVEYOR_URL", help="Conveyor server URL (CONVEYOR_URL)."),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="CONVEYOR_API_KEY",
        help="API key (CONVEYOR_API_KEY).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="Output format: table, json or csv.")
]
# The paging options every list command takes.
CursorOption = Annotated[
    str | None, typer.Option(help="Continue from a cursor a previous page printed.")
]
AllPagesOption = Annotated[bool, typer.Option("--all", help="Walk every page to the end.")]

# The table leaves out status_messages_url (long, and expiring); JSON and CSV carry it.
RUN_TABLE_COLUMNS = (
    "id",
    "automation_id",
    "status",
    "run_stage",
    "successful_operations",
    "failed_operations",
    "created_at",
    "runtime",
    "completed_at",
)


MISSING_KEY = (
    "conveyor: no API key: set CONVEYOR_API_KEY or pass --api-key "
    "(an admin creates one on the server with `conveyor api-keys create --user NAME`)"
)


def make_client(url: str, api_key: str | None) -> sdk.Client:
    """The SDK client for a client command; a missing key is refused before any request."""
    if not api_key:
        typer.echo(MISSING_KEY, err=True)
        raise typer.Exit(EXIT_AUTH)
    try:
        return sdk.Client(url, api_key)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from None


def parse_sort(text: str) -> dict[str, str]:
    """`FIELD` or `FIELD:asc|desc` as the API's sort_by object; the server checks the names."""
    field, _, direction = text.partition(":")
    return {field: direction or "asc"}


def list_params(
    per_page: int | None, cursor: str | None, sort_by: str | None, filters: dict[str, Any]
) -> dict[str, Any]:
    """The paging, sort and filter parameters a list command sends; unset ones are left out."""
    params: dict[str, Any] = {}
    if per_page is not None:
        params["per_page"] = per_page
    if cursor:
        params["cursor"] = cursor
    if sort_by:
        params["sort_by"] = parse_sort(sort_by)
    if filters:
        params["filter"] = filters
    return params


runs_app = typer.Typer(help="Automation runs on a Conveyor server.", no_args_is_help=True)


StatusOption = Annotated[
    str | None,
    typer.Option(
        help="Only runs with this status; several comma-separated (failure,partial_failure)."
    ),
]
TriggerOption = Annotated[
    str | None,
    typer.Option(
        help="Without --automation-id: only runs started by these triggers, comma-separated "
        "(manual, daily, custom_schedule, webhook, action)."
    ),
]
CreatedFromOption = Annotated[
    str | None,
    typer.Option(
        "--created-from",
        help="Without --automation-id: only runs created at or after this date-time "
        "(2026-01-31T00:00:00Z).",
    ),
]
CreatedBeforeOption = Annotated[
    str | None,
    typer.Option(
        "--created-before",
        help="Without --automation-id: only runs created before this date-time.",
    ),
]


def all_runs_params(
    automation_id: int | None,
    status: str | None,
    trigger: str | None,
    created_from: str | None,
    created_before: str | None,
) -> dict[str, Any]:
    """The all-runs filter (GET /api/conveyor/v1/automation_runs) of the options given."""
    filters: dict[str, Any] = {}
    if status:
        filters["status"] = status
    if trigger:
        filters["trigger"] = trigger
    if automation_id is not None:
        filters["automation_id"] = automation_id
    params: dict[str, Any] = {"filter": filters} if filters else {}
    if created_from:
        params["filter_gteq"] = {"created_at": created_from}
    if created_before:
        params["filter_lt"] = {"created_at": created_before}
    return params


@runs_app.command("list")
def list_runs(
    automation_id: Annotated[
        int | None,
        typer.Option(
            "--automation-id",
            help="The automation whose runs to list; without it, the runs of every "
            "automation you may see (Conveyor's all-runs view).",
        ),
    ] = None,
    status: StatusOption = None,
    trigger: TriggerOption = None,
    created_from: CreatedFromOption = None,
    created_before: CreatedBeforeOption = None,
    sort_by: Annotated[
        str | None,
        typer.Option(
            "--sort-by",
            help="FIELD:asc|desc, FIELD one of created_at, status, automation_id "
            "(default created_at:desc); without --automation-id only created_at.",
        ),
    ] = None,
    per_page: Annotated[
        int | None, typer.Option(help="Runs per page, 1..10000 (server default 1000).")
    ] = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """List runs, newest first unless sorted otherwise: an automation's (--automation-id),
    or those of every automation you may see, filtered by status, trigger and time.

    Without --all, one page is printed and the next page's cursor goes to stderr.
    """
    with make_client(url, api_key) as client, client_errors():
        if automation_id is None:
            params = {
                **list_params(per_page, cursor, sort_by, {}),
                **all_runs_params(None, status, trigger, created_from, created_before),
            }
            page = client.automation_run.all_runs(params)
        else:
            for name, value in (
                ("--trigger", trigger),
                ("--created-from", created_from),
                ("--created-before", created_before),
            ):
                if value:
                    raise typer.BadParameter(
                        "only without --automation-id (the all-runs view)", param_hint=name
                    )
            params = {
                "automation_id": automation_id,
                **list_params(per_page, cursor, sort_by, {"status": status} if status else {}),
            }
            page = client.automation_run.list(params)
        write_page(
            page,
            all_pages,
            sdk.AutomationRun.to_json,
            sdk.AUTOMATION_RUN_FIELDS,
            fmt,
            RUN_TABLE_COLUMNS,
            "runs",
        )


DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Change nothing: print how many runs match and their ids."),
]
IdempotencyKeyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Repeat an earlier bulk request safely: the same key answers the same "
        "without acting twice (default: a new key each time).",
    ),
]
AutomationFilterOption = Annotated[
    int | None, typer.Option("--automation-id", help="Only runs of this automation.")
]


def _write_bulk(answer: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        typer.echo(orjson.dumps(answer).decode())
        return
    ids = ", ".join(str(i) for i in answer.get("run_ids", [])) or "none"
    verb = {"cancel": "cancel", "rerun": "rerun"}[answer["action"]]
    if answer["dry_run"]:
        shown = len(answer.get("run_ids", []))
        more = f" (the first {shown})" if shown < answer["count"] else ""
        typer.echo(f"would {verb} {answer['count']} runs{more}: {ids}")
        return
    typer.echo(f"{verb}: {len(answer['run_ids'])} of {answer['count']} matching runs: {ids}")
    if answer.get("rerun_ids"):
        typer.echo("new runs: " + ", ".join(str(i) for i in answer["rerun_ids"]))
    for skipped in answer.get("skipped", []):
        typer.echo(f"skipped run {skipped['id']}: {skipped['reason']}")


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


_BULK_FILTER = ("automation_id", "status", "trigger", "created_from", "created_before")


def _bulk_command(action: str, summary: str, *extra: inspect.Parameter) -> None:
    """Add `bulk-<action>` to the runs commands: the all-runs filter's options, then
    `extra` (passed to the SDK's `bulk_<action>` by name, as --dry-run and
    --idempotency-key are), then the output and server options. Both bulk commands
    are this one body; Typer reads their options from the signature set here."""

    def command(**options: Any) -> None:
        params = all_runs_params(*(options.pop(name) for name in _BULK_FILTER))
        fmt, url, api_key = options.pop("fmt"), options.pop("url"), options.pop("api_key")
        with make_client(url, api_key) as client, client_errors():
            answer = getattr(client.automation_run, f"bulk_{action}")(params, **options)
        _write_bulk(answer, fmt)

    command.__doc__ = summary
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            _option("automation_id", AutomationFilterOption, None),
            _option("status", StatusOption, None),
            _option("trigger", TriggerOption, None),
            _option("created_from", CreatedFromOption, None),
            _option("created_before", CreatedBeforeOption, None),
            *extra,
            _option("dry_run", DryRunOption, False),
            _option("idempotency_key", IdempotencyKeyOption, None),
            _option("fmt", FormatOption, OutputFormat.TABLE),
            _option("url", UrlOption, DEFAULT_URL),
            _option("api_key", ApiKeyOption, None),
        ]
    )
    runs_app.command(f"bulk-{action}")(command)


_bulk_command(
    "cancel", "Cancel every unfinished run that matches the filter (try --dry-run first)."
)
_bulk_command(
    "rerun",
    "Rerun every finished run that matches the filter (try --dry-run first).",
    _option(
        "failed_only",
        Annotated[
            bool,
            typer.Option("--failed-only", help="Each rerun plans only the operations that failed."),
        ],
        False,
    ),
)


@runs_app.command("get")
def get_run(
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run's id.")],
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Show one run with all its fields."""
    with make_client(url, api_key) as client, client_errors():
        run = client.automation_run.find(run_id)
        write_record(run.to_json(), sdk.AUTOMATION_RUN_FIELDS, fmt)


@runs_app.command("log")
def run_log(
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run's id.")],
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new lines until the run is finished."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=MIN_FOLLOW_INTERVAL,
            max=MAX_FOLLOW_INTERVAL,
            help="Seconds between polls with --follow.",
        ),
    ] = DEFAULT_FOLLOW_INTERVAL,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Print a run's status messages, one `TIME [LEVEL] message` line each.

    With --follow, print each new line once as the run writes it and exit 0
    when the run is finished (whatever its status).
    """
    out = sys.stdout
    with make_client(url, api_key) as client, client_errors():
        if not follow:
            out.write(client.automation_run.log(run_id))
            return
        for line in client.automation_run.follow(run_id, interval):
            out.write(line + "\n")
            out.flush()  # a reader at the other end of a pipe sees each line as it comes


@runs_app.command("cancel")
def cancel_run(
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run's id.")],
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a run and print it.

    A queued run is canceled at once. A running one shows `cancel_requested_at`
    and stops at its next operation boundary (`conveyor automation-runs log ID
    --follow` shows when). A finished run is refused, naming its status.
    """
    with make_client(url, api_key) as client, client_errors():
        run = client.automation_run.cancel(run_id)
        write_record(run.to_json(), sdk.AUTOMATION_RUN_FIELDS, fmt)


@runs_app.command("rerun")
def rerun_run(
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The finished run's id.")],
    failed_only: Annotated[
        bool,
        typer.Option(
            "--failed-only", help="Plan only the operations that failed in the original run."
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Rerun a finished run and print the new run.

    The new run has the original's automation, runtime and trigger inputs, and
    its id in `rerun_of_run_id`.
    """
    with make_client(url, api_key) as client, client_errors():
        run = client.automation_run.rerun(run_id, failed_only=failed_only or None)
        write_record(run.to_json(), sdk.AUTOMATION_RUN_FIELDS, fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="automation-runs")
