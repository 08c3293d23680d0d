"""Client commands: talk to a Conveyor server over its API through `conveyor.sdk`.

The server and key come from `--url`/`--api-key` or CONVEYOR_URL/CONVEYOR_API_KEY.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

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


@runs_app.command("list")
def list_runs(
    automation_id: Annotated[
        int, typer.Option("--automation-id", help="The automation whose runs to list.")
    ],
    status: Annotated[
        str | None,
        typer.Option(help="Only runs with this status (success, failure, ...)."),
    ] = None,
    sort_by: Annotated[
        str | None,
        typer.Option(
            "--sort-by",
            help="FIELD:asc|desc, FIELD one of created_at, status, automation_id "
            "(default created_at:desc).",
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
    """List an automation's runs, newest first unless sorted otherwise.

    Without --all, one page is printed and the next page's cursor goes to stderr.
    """
    params = {
        "automation_id": automation_id,
        **list_params(per_page, cursor, sort_by, {"status": status} if status else {}),
    }
    with make_client(url, api_key) as client, client_errors():
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
