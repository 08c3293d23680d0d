"""Operator commands: `conveyor db backup PATH`, `conveyor db restore PATH`, `conveyor config show`.

Backups are for the embedded SQLite database; for PostgreSQL the command
explains pg_dump and pg_restore, PostgreSQL's own consistent tools.
"""

from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import typer

from conveyor.cli import server
from conveyor.config import Settings

config_app = typer.Typer(help="Configuration commands.", no_args_is_help=True)

# Settings whose value is never printed.
SECRET_FIELDS = frozenset({"secret_key"})
HIDDEN_FIELDS = frozenset({"extra"})


def env_name(field_name: str) -> str:
    """Each setting's one environment variable (docs/configuration.md lists them all)."""
    return "CONVEYOR_" + field_name.upper()


def mask_url(url: str) -> str:
    """A database URL with its password replaced by ***."""
    return re.sub(r"^([a-z0-9+]+://[^:/@]*):[^@]*@", r"\1:***@", url)


def effective_settings(settings: Settings, env: dict[str, str]) -> list[dict[str, Any]]:
    """Every setting: its variable, value as Conveyor uses it (secrets masked), and source."""
    rows = []
    for field in fields(Settings):
        if field.name in HIDDEN_FIELDS:
            continue
        name = env_name(field.name)
        value: Any = getattr(settings, field.name)
        if field.name in SECRET_FIELDS:
            value = None if value is None else "***"
        elif field.name == "database_url":
            value = mask_url(str(value))
        elif isinstance(value, Path):
            value = str(value)
        source = "environment" if env.get(name) else "default"
        rows.append({"name": name, "value": value, "source": source})
    return rows


@config_app.command("show")
def config_show(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of a table."),
) -> None:
    """Print the effective settings (environment or default), with secrets masked."""
    settings = server.load_settings()
    rows = effective_settings(settings, dict(os.environ))
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        value = "(not set)" if row["value"] is None else row["value"]
        if isinstance(value, bool):
            value = str(value).lower()
        typer.echo(f"{row['name']:<{width}}  {value}  [{row['source']}]")


def _postgres_help(settings: Settings, action: str) -> None:
    url = mask_url(settings.database_url.replace("postgresql+psycopg://", "postgresql://"))
    typer.echo(
        f"conveyor db {action} copies the embedded SQLite database; this Conveyor uses "
        "PostgreSQL, whose own tools make consistent copies while it runs:\n"
        f"  backup:  pg_dump --format=custom --file=conveyor.dump '{url}'\n"
        f"  restore: pg_restore --clean --if-exists --no-owner --dbname='{url}' conveyor.dump\n"
        "Stop Conveyor's API and worker processes before a restore "
        "(docs/operations.md, Backups).",
        err=True,
    )
    raise typer.Exit(2)


def db_backup(path: Path = typer.Argument(..., help="The new file to write the copy to.")) -> None:
    """Copy the SQLite database to PATH while Conveyor runs (SQLite's online backup)."""
    from conveyor.store import backup as backups  # Alembic: not loaded for other commands

    settings = server.load_settings()
    if not settings.is_sqlite:
        _postgres_help(settings, "backup")
    typer.echo(f"conveyor: database: {server.describe_database(settings)}", err=True)
    try:
        checked = backups.backup(backups.sqlite_path(settings.database_url), path)
    except backups.BackupError as exc:
        typer.echo(f"conveyor: backup failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"backup written to {path}: {checked.size:,} bytes, {checked.runs:,} runs, "
        f"schema revision {checked.revision}, integrity check ok"
    )


def db_restore(
    path: Path = typer.Argument(..., help="A file made by `conveyor db backup`."),
) -> None:
    """Replace the SQLite database with the backup at PATH; Conveyor must be stopped."""
    from conveyor.store import backup as backups

    settings = server.load_settings()
    if not settings.is_sqlite:
        _postgres_help(settings, "restore")
    typer.echo(f"conveyor: database: {server.describe_database(settings)}", err=True)
    target = backups.sqlite_path(settings.database_url)
    try:
        checked, kept = backups.restore(path, target)
    except backups.BackupError as exc:
        typer.echo(f"conveyor: restore refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"restored {path} to {target}: {checked.runs:,} runs, schema revision {checked.revision}"
    )
    if kept is not None:
        typer.echo(f"the database it replaced is kept as {kept}")


def register(app: typer.Typer) -> None:
    server.db_app.command("backup")(db_backup)
    server.db_app.command("restore")(db_restore)
    app.add_typer(config_app, name="config")
