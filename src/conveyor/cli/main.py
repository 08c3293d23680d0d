"""The `conveyor` command: server commands and client commands in one tree."""

from __future__ import annotations

import typer

from conveyor.cli import automations, automations_schedule, client, ops, permissions, server

app = typer.Typer(
    help="Conveyor: self-hosted file automations with a Files.com-compatible API.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)
ops.register(app)  # db backup/restore join server's `db` group; `config show`
client.register(app)
automations.register(app)
automations_schedule.register(app)  # after automations: joins its `automations` group
permissions.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
