"""Output of the client commands: records as a table (Rich), JSON or CSV, and errors as
one line on stderr with an exit code per kind of failure (docs/cli.md lists them).
"""

from __future__ import annotations

import csv
import enum
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from conveyor import sdk

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_AUTH",
    "EXIT_BAD_REQUEST",
    "EXIT_CONNECTION",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "OutputFormat",
    "client_errors",
    "error_line",
    "exit_code",
    "write_page",
    "write_record",
    "write_records",
]

EXIT_API_ERROR = 1  # any other error answer: 5xx, rate limited after retries
EXIT_USAGE = 2  # a flag or argument the command itself refuses (Click's code)
EXIT_BAD_REQUEST = 3  # 400: a refused parameter, sort, filter or cursor; 422: a refused action
EXIT_AUTH = 4  # 401/403: no key, unknown or revoked key, not allowed
EXIT_NOT_FOUND = 5  # 404
EXIT_CONNECTION = 6  # no usable answer: server down, timeout, not a Conveyor server


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def cell(value: Any) -> str:
    """A JSON value as text for a table cell or CSV field; null is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _print_table(table: Table) -> None:
    out = sys.stdout
    # Piped output is not cut to 80 columns: a table row stays one line.
    console = Console(file=out, width=None if out.isatty() else 100_000, highlight=False)
    with console.capture() as captured:
        console.print(table)
    # Rich pads every cell to its column's width; trailing blanks only get in the way.
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _json_line(value: Any) -> str:
    return orjson.dumps(value).decode()


def write_records(
    records: Iterable[Mapping[str, Any]],
    fields: Sequence[str],
    fmt: OutputFormat,
    columns: Sequence[str] | None = None,
) -> None:
    """Write API records: JSON as one array of the records as the API sent them, CSV with a
    header of `fields`, a table of `columns` (default `fields`). JSON and CSV stream."""
    out = sys.stdout
    if fmt is OutputFormat.JSON:
        out.write("[")
        for index, record in enumerate(records):
            out.write(("," if index else "") + _json_line(record))
        out.write("]\n")
    elif fmt is OutputFormat.CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        for record in records:
            writer.writerow([cell(record.get(name)) for name in fields])
    else:
        shown = columns or fields
        rows = [[cell(record.get(name)) for name in shown] for record in records]
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for index, name in enumerate(shown):
            numeric = bool(rows) and all(row[index].isdigit() for row in rows)
            table.add_column(name, justify="right" if numeric else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        _print_table(table)


def write_page(
    page: sdk.ListObj[Any],
    all_pages: bool,
    to_record: Callable[[Any], Mapping[str, Any]],
    fields: Sequence[str],
    fmt: OutputFormat,
    columns: Sequence[str],
    noun: str,
) -> None:
    """Write a list command's records: the whole walk with `all_pages`, else this page and,
    on stderr, the cursor that continues it."""
    found = page.auto_paging_iter() if all_pages else iter(page)
    write_records((to_record(item) for item in found), fields, fmt, columns)
    if not all_pages and page.next_cursor:
        typer.echo(f"More {noun} follow: add --cursor {page.next_cursor}", err=True)


def write_record(record: Mapping[str, Any], fields: Sequence[str], fmt: OutputFormat) -> None:
    """Write one API record: JSON object, CSV header and row, or a field/value table."""
    if fmt is OutputFormat.JSON:
        sys.stdout.write(_json_line(record) + "\n")
    elif fmt is OutputFormat.CSV:
        write_records([record], fields, fmt)
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, show_header=False)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", no_wrap=True)
        for name in fields:
            table.add_row(name, cell(record.get(name)))
        _print_table(table)


def exit_code(error: sdk.Error) -> int:
    if isinstance(error, sdk.APIConnectionError):
        return EXIT_CONNECTION
    if isinstance(error, sdk.BadRequestError) or (
        isinstance(error, sdk.ProcessingFailureError) and error.http_status == 422
    ):
        return EXIT_BAD_REQUEST
    if isinstance(error, sdk.NotAuthenticatedError | sdk.NotAuthorizedError):
        return EXIT_AUTH
    if isinstance(error, sdk.NotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_API_ERROR


def error_line(error: sdk.Error) -> str:
    """`conveyor: TYPE: message (request id ID)`, on one line."""
    message = " ".join(error.message.split())
    if isinstance(error, sdk.APIError):
        kind = error.error_type or f"HTTP {error.http_status}"
        request = f" (request id {error.instance})" if error.instance else ""
        return f"conveyor: {kind}: {message}{request}"
    return f"conveyor: connection error: {message}"


@contextmanager
def client_errors() -> Iterator[None]:
    """Turn SDK errors into their one-line message and exit code; never a traceback."""
    try:
        yield
    except sdk.Error as error:
        sys.stdout.flush()
        typer.echo(error_line(error), err=True)
        raise typer.Exit(exit_code(error)) from None
