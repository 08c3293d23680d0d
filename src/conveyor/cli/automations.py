"""`conveyor automations create|list|get|update|delete|run`: automations on a server, through
`conveyor.sdk`.

`create` and `update` take one option per Files.com field (`--destination`
and the other list fields repeat), or a whole body with `--json '{...}'`,
`--json @FILE` or `--json @-` (stdin); options given with `--json` replace
its fields. Output, errors and exit codes are those of the runs commands.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from conveyor import sdk
from conveyor.cli.client import (
    DEFAULT_URL,
    AllPagesOption,
    ApiKeyOption,
    CursorOption,
    FormatOption,
    UrlOption,
    list_params,
    make_client,
)
from conveyor.cli.output import (
    EXIT_USAGE,
    OutputFormat,
    client_errors,
    write_page,
    write_record,
)

__all__ = ["AUTOMATION_TABLE_COLUMNS", "automations_app", "body_from_options", "register"]

# The list's table: what tells automations apart; JSON and CSV carry every field.
AUTOMATION_TABLE_COLUMNS = (
    "id",
    "name",
    "automation",
    "trigger",
    "disabled",
    "source",
    "destinations",
    "human_readable_schedule",
    "last_modified_at",
)
DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")

automations_app = typer.Typer(help="Automations on a Conveyor server.", no_args_is_help=True)

IdArgument = Annotated[int, typer.Argument(metavar="ID", help="The automation's id.")]
Text = str | None
Texts = list[str] | None
Flag = bool | None


def _option(*names: str, help: str) -> Any:
    return typer.Option(*names, help=help, show_default=False)


def body_from_options(
    automation: Annotated[
        Text,
        _option("--automation", help="Type: create_folder, copy_file, move_file or delete_file."),
    ] = None,
    name: Annotated[Text, _option("--name", help="Name.")] = None,
    description: Annotated[Text, _option("--description", help="Description.")] = None,
    path: Annotated[Text, _option("--path", help="Folder the automation works in.")] = None,
    source: Annotated[
        Text, _option("--source", help="Glob of the files to act on, e.g. 'in/*.csv'.")
    ] = None,
    destinations: Annotated[
        Texts,
        _option(
            "--destination",
            help="A destination (repeat for several); ending in / means a folder; "
            "may hold date patterns like %Y-%m-%d.",
        ),
    ] = None,
    destination_replace_from: Annotated[
        Text, _option("--destination-replace-from", help="Text to replace in destination names.")
    ] = None,
    destination_replace_to: Annotated[
        Text, _option("--destination-replace-to", help="Its replacement.")
    ] = None,
    exclude_pattern: Annotated[
        Text, _option("--exclude-pattern", help="Glob of files to leave alone.")
    ] = None,
    flatten_destination_structure: Annotated[
        Flag,
        _option(
            "--flatten-destination-structure/--no-flatten-destination-structure",
            help="Put every file directly in the destination folder.",
        ),
    ] = None,
    overwrite_files: Annotated[
        Flag,
        _option("--overwrite-files/--no-overwrite-files", help="Replace existing files."),
    ] = None,
    always_overwrite_size_matching_files: Annotated[
        Flag,
        _option(
            "--always-overwrite-size-matching-files/--no-always-overwrite-size-matching-files",
            help="Replace existing files even when their size matches.",
        ),
    ] = None,
    path_time_zone: Annotated[
        Text, _option("--path-time-zone", help="Time zone of the date patterns in paths.")
    ] = None,
    trigger: Annotated[
        Text,
        _option("--trigger", help="manual (default), daily, custom_schedule, webhook or action."),
    ] = None,
    interval: Annotated[
        Text,
        _option("--interval", help="For daily: day, week, month, quarter, year (or *_end)."),
    ] = None,
    recurring_day: Annotated[
        int | None, _option("--recurring-day", help="For daily: day of the interval.")
    ] = None,
    days_of_week: Annotated[
        Texts,
        _option(
            "--day-of-week",
            help="For custom_schedule: 0 (Sunday) to 6 (Saturday) or a day name; repeat.",
        ),
    ] = None,
    times_of_day: Annotated[
        Texts, _option("--time-of-day", help="For custom_schedule: HH:MM (24-hour); repeat.")
    ] = None,
    time_zone: Annotated[
        Text,
        _option("--time-zone", help="Schedule time zone, e.g. 'Europe/Paris' or 'London'."),
    ] = None,
    trigger_actions: Annotated[
        Texts,
        _option(
            "--trigger-action",
            help="For action: create, update, destroy, move, copy or read; repeat.",
        ),
    ] = None,
    disabled: Annotated[
        Flag, _option("--disabled/--enabled", help="Disable or enable the automation.")
    ] = None,
    retry_attempts: Annotated[
        int | None,
        _option(
            "--retry-on-failure-number-of-attempts",
            help="Retry a run that ends failure or partial_failure at most this many times "
            "(1-10); needs --retry-on-failure-interval-in-minutes.",
        ),
    ] = None,
    retry_interval: Annotated[
        int | None,
        _option(
            "--retry-on-failure-interval-in-minutes",
            help="Minutes from a failed run's end to its retry (5-1440).",
        ),
    ] = None,
    no_retries: Annotated[
        bool,
        _option("--no-retry-on-failure", help="Turn automatic retries off (both settings null)."),
    ] = False,
    json_body: Annotated[
        Text,
        _option(
            "--json",
            help="A whole body: a JSON object, @FILE or @- (stdin); options given too win.",
        ),
    ] = None,
) -> dict[str, Any]:
    """The request body: --json's object, then every field option given, by Files.com name."""
    body = _read_json(json_body) if json_body is not None else {}
    fields: dict[str, Any] = {
        "automation": automation,
        "name": name,
        "description": description,
        "path": path,
        "source": source,
        "destinations": destinations or None,
        "destination_replace_from": destination_replace_from,
        "destination_replace_to": destination_replace_to,
        "exclude_pattern": exclude_pattern,
        "flatten_destination_structure": flatten_destination_structure,
        "overwrite_files": overwrite_files,
        "always_overwrite_size_matching_files": always_overwrite_size_matching_files,
        "path_time_zone": path_time_zone,
        "trigger": trigger,
        "interval": interval,
        "recurring_day": recurring_day,
        "schedule_days_of_week": _days(days_of_week) if days_of_week else None,
        "schedule_times_of_day": times_of_day or None,
        "schedule_time_zone": time_zone,
        "trigger_actions": trigger_actions or None,
        "disabled": disabled,
        "retry_on_failure_number_of_attempts": retry_attempts,
        "retry_on_failure_interval_in_minutes": retry_interval,
    }
    body.update({key: value for key, value in fields.items() if value is not None})
    if no_retries:
        if retry_attempts is not None or retry_interval is not None:
            raise typer.BadParameter(
                "--no-retry-on-failure cannot be combined with the retry settings",
                param_hint="--no-retry-on-failure",
            )
        body["retry_on_failure_number_of_attempts"] = None
        body["retry_on_failure_interval_in_minutes"] = None
    return body


def _read_json(raw: str) -> dict[str, Any]:
    source = "--json"
    text: str | bytes = raw
    if raw.startswith("@"):
        source = raw[1:] or "-"
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {source}: {exc.strerror}", param_hint="--json"
            ) from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{source} is not valid JSON: {exc}", param_hint="--json"
        ) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{source} must hold a JSON object", param_hint="--json")
    return value


def _days(values: Iterable[str]) -> list[int]:
    days = []
    for value in values:
        text = value.strip().lower()
        if text.isdigit():
            days.append(int(text))  # the server checks the range, with its own message
            continue
        matches = [n for n, day in enumerate(DAY_NAMES) if len(text) >= 3 and day.startswith(text)]
        if len(matches) != 1:
            raise typer.BadParameter(
                f"{value!r} is not a day: use 0 (Sunday) to 6 (Saturday) or a name like mon",
                param_hint="--day-of-week",
            )
        days.append(matches[0])
    return days


def takes_body_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the options of `body_from_options` in place of its `body` parameter.

    Typer reads a command's options from its signature; create and update
    share one list of field options this way instead of spelling it twice.
    The command is called with the body those options build.
    """
    own = inspect.signature(command, eval_str=True)
    fields = inspect.signature(body_from_options, eval_str=True)
    kept = [param for param in own.parameters.values() if param.name != "body"]
    required = [param for param in kept if param.default is inspect.Parameter.empty]
    optional = [param for param in kept if param.default is not inspect.Parameter.empty]

    @functools.wraps(command)
    def wrapper(**arguments: Any) -> None:
        options = {name: arguments.pop(name) for name in fields.parameters}
        command(body=body_from_options(**options), **arguments)

    parameters = [*required, *fields.parameters.values(), *optional]
    wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {param.name: param.annotation for param in parameters}
    return wrapper


def _table_ready(record: Mapping[str, Any]) -> dict[str, Any]:
    # In a table a list reads better as "a, b" than as a JSON array.
    return {
        key: ", ".join(str(item) for item in value) if isinstance(value, list) else value
        for key, value in record.items()
    }


def _record(automation: sdk.Automation, fmt: OutputFormat) -> dict[str, Any]:
    record = automation.to_json()
    return _table_ready(record) if fmt is OutputFormat.TABLE else record


def _write_automation(automation: sdk.Automation, fmt: OutputFormat) -> None:
    write_record(_record(automation, fmt), sdk.AUTOMATION_FIELDS, fmt)


@automations_app.command("create")
@takes_body_options
def create(
    body: dict[str, Any],
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Create an automation and print it.

    Example: conveyor automations create --automation copy_file --source 'in/*.csv'
    --destination out/
    """
    with make_client(url, api_key) as client, client_errors():
        _write_automation(client.automation.create(body), fmt)


@automations_app.command("update")
@takes_body_options
def update(
    automation_id: IdArgument,
    body: dict[str, Any],
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Change the given fields of an automation and print it; the others keep their values.

    To empty a list field, send it in --json: --json '{"destinations": []}'.
    """
    if not body:
        typer.echo(
            "conveyor: nothing to change: give at least one field option or --json", err=True
        )
        raise typer.Exit(EXIT_USAGE)
    with make_client(url, api_key) as client, client_errors():
        _write_automation(client.automation.update(automation_id, body), fmt)


@automations_app.command("list")
def list_automations(
    automation: Annotated[
        str | None, typer.Option("--automation", help="Only automations of this type.")
    ] = None,
    disabled: Annotated[
        bool | None,
        typer.Option("--disabled/--enabled", help="Only disabled, or only enabled, automations."),
    ] = None,
    sort_by: Annotated[
        str | None,
        typer.Option(
            "--sort-by",
            help="FIELD:asc|desc, FIELD one of name, automation, last_modified_at, disabled "
            "(default: by id).",
        ),
    ] = None,
    per_page: Annotated[
        int | None, typer.Option(help="Automations per page, 1..10000 (server default 1000).")
    ] = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """List the automations your key may see.

    Without --all, one page is printed and the next page's cursor goes to stderr.
    """
    filters: dict[str, Any] = {}
    if automation:
        filters["automation"] = automation
    if disabled is not None:
        filters["disabled"] = disabled
    with make_client(url, api_key) as client, client_errors():
        page = client.automation.list(list_params(per_page, cursor, sort_by, filters))
        write_page(
            page,
            all_pages,
            functools.partial(_record, fmt=fmt),
            sdk.AUTOMATION_FIELDS,
            fmt,
            AUTOMATION_TABLE_COLUMNS,
            "automations",
        )


@automations_app.command("get")
def get(
    automation_id: IdArgument,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Show one automation with all its fields."""
    with make_client(url, api_key) as client, client_errors():
        _write_automation(client.automation.find(automation_id), fmt)


@automations_app.command("delete")
def delete(
    automation_id: IdArgument,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete an automation; prints nothing. Its runs stay readable."""
    with make_client(url, api_key) as client, client_errors():
        client.automation.delete(automation_id)


@automations_app.command("run")
def run(
    automation_id: IdArgument,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Run an automation now and print the created run.

    Follow it with: conveyor automation-runs log RUN_ID --follow
    """
    with make_client(url, api_key) as client, client_errors():
        created = client.automation.manual_run(automation_id)
        write_record(created.to_json(), sdk.AUTOMATION_RUN_FIELDS, fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(automations_app, name="automations")
