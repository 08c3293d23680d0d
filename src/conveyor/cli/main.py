"""The `conveyor` command: server commands and client commands in one tree."""

from __future__ import annotations

import typer

from conveyor.cli import server

app = typer.Typer(
    help="Conveyor: self-hosted file automations with a Files.com-compatible API.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
