"""`conveyor automations next-runs ID`: an automation's next planned runs, from the server.

Calls Conveyor's extension endpoint `GET /api/rest/v1/automations/{id}/next_runs`
(docs/triggers.md) with the same `--url`/`--api-key` and output formats as
the other client commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli.client import DEFAULT_URL, ApiKeyOption, FormatOption, UrlOption
from conveyor.cli.output import OutputFormat, client_errors, write_records
from conveyor.sdk.http import HttpSession, RetryPolicy

NEXT_RUN_FIELDS = ("runtime", "local_time")


def next_runs(
    automation_id: Annotated[int, typer.Argument(metavar="ID", help="The automation's id.")],
    count: Annotated[int, typer.Option(min=1, max=100, help="How many slots to list.")] = 10,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """List the upcoming schedule slots of a daily or custom_schedule automation.

    `runtime` is the run's runtime in UTC, `local_time` the same instant in the
    schedule's time zone. A disabled or unscheduled automation has none.
    """
    try:
        session = HttpSession(url, api_key, timeout=30.0, retry=RetryPolicy())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from None
    try:
        with client_errors():
            response = session.request(
                "GET", f"/automations/{automation_id}/next_runs", {"count": count}
            )
            slots = session.decode(response)
    finally:
        session.close()
    write_records(slots, NEXT_RUN_FIELDS, fmt)
    if not slots and fmt is OutputFormat.TABLE:
        typer.echo("No planned runs: the automation is not scheduled or is disabled.", err=True)


def register(app: typer.Typer) -> None:
    """Add `next-runs` to the `automations` group, creating the group if no one else has."""
    for group in app.registered_groups:
        if group.name == "automations" and group.typer_instance is not None:
            group.typer_instance.command("next-runs")(next_runs)
            return
    automations_app = typer.Typer(help="Automations on a Conveyor server.", no_args_is_help=True)
    automations_app.command("next-runs")(next_runs)
    app.add_typer(automations_app, name="automations")
