"""Server-side commands: serve, db, api-keys. They talk to the database directly.

The API app, SQLAlchemy, Alembic and the engine are imported inside the
commands that use them: `conveyor` loads this module for every command, and
client commands should not pay a second of imports they never use.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from conveyor.clock import SystemClock
from conveyor.config import ConfigError, Settings

if TYPE_CHECKING:
    from conveyor.context import Service
    from conveyor.store.database import Database

T = TypeVar("T")
log = logging.getLogger("conveyor")


def wait_for_database(work: Callable[[], T], what: str) -> T:
    """`work`, retried with a bounded backoff while the database is unavailable
    (not started yet, restarting, full), each wait logged; other errors end the command."""
    from conveyor.store import outage

    return outage.wait(work, what, log)


def log_waits() -> None:
    """Until the command sets up its logging (once the database is open), log only
    warnings, as JSON on stderr: the waits for an unavailable database."""
    from conveyor.observability import logs

    logs.configure("warning")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        typer.echo(f"conveyor: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def describe_database(settings: Settings) -> str:
    """The database a command uses, as it prints it: a SQLite file's path, or the
    PostgreSQL URL without its credentials."""
    if settings.is_sqlite:
        return f"{sqlite_file(settings)} (SQLite)"
    return f"{_safe_url(settings)} (PostgreSQL)"


def sqlite_file(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///")).expanduser().resolve()


class NoDatabase(Exception):
    """The configured database does not exist yet (or has no Conveyor schema)."""


def open_database(settings: Settings, *, create: bool, wait: str | None = None) -> Database:
    """Open the configured database. Without `create`, one that does not exist yet (a
    missing SQLite file, or a database with no Conveyor schema) is refused with
    NoDatabase and nothing is created: a command run in the wrong folder must not
    quietly start a second, empty database. With `wait` (what is waiting, for the
    log), a database that is unavailable for now (`conveyor.store.outage`) is waited
    for, as `serve` and `worker` do; otherwise it ends the command in one line."""
    from sqlalchemy.exc import OperationalError

    from conveyor.store import migrate
    from conveyor.store.database import Database

    if settings.is_sqlite:
        path = sqlite_file(settings)
        if not create and not path.is_file():
            raise NoDatabase
        # Owner only: it holds the database (the signing secret, key hashes).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        if wait is None:
            revision = migrate.current_revision(db)
        else:
            revision = wait_for_database(lambda: migrate.current_revision(db), wait)
    except OperationalError as exc:
        db.dispose()
        reason = " ".join(str(exc.orig).split())
        typer.echo(f"conveyor: cannot open the database: {reason}", err=True)
        raise typer.Exit(1) from None
    if not create and revision is None:
        db.dispose()
        raise NoDatabase
    return db


def existing_database(settings: Settings, create_hint: str, wait: str | None = None) -> Database:
    """The database a server-side command works on, named on stderr; exit 2 with what to
    do when it does not exist (`create_hint` says how to make one on purpose). `wait`:
    as for `open_database`."""
    typer.echo(f"conveyor: database: {describe_database(settings)}", err=True)
    try:
        return open_database(settings, create=False, wait=wait)
    except NoDatabase:
        home = f" (now {settings.home})" if settings.is_sqlite else ""
        typer.echo(
            "conveyor: there is no Conveyor database there yet. Run this command where the "
            f"server runs, or point CONVEYOR_HOME{home} or CONVEYOR_DATABASE_URL at the "
            f"server's database; {create_hint}",
            err=True,
        )
        raise typer.Exit(2) from None


def first_start_key(db: Database) -> str | None:
    """On a database with no users, create the admin user and return its first key."""
    from sqlalchemy import func, select

    from conveyor.store import users
    from conveyor.store.schema import users as users_table

    with db.write() as conn:
        if conn.execute(select(func.count()).select_from(users_table)).scalar_one():
            return None
        now = SystemClock().now()
        admin = users.ensure_user(conn, "admin", True, now)
        return users.create_api_key(conn, admin.id, now)


def serve(
    host: str = typer.Option(None, help="Address to listen on (CONVEYOR_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (CONVEYOR_PORT, 8080)."),
) -> None:
    """Run the API (and, when present, the web UI, workers and scheduler) in one process."""
    import uvicorn

    from conveyor.api.errors import FilesComHttpProtocol
    from conveyor.app import create_app
    from conveyor.engine.retention import retention_service
    from conveyor.observability.process import setup as setup_process
    from conveyor.store import migrate

    settings = load_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    log_waits()
    # The quick start: the first start creates the database (and says so).
    db = open_database(settings, create=True, wait="conveyor serve: opening the database")
    created = wait_for_database(
        lambda: migrate.current_revision(db) is None, "conveyor serve: reading the schema"
    )
    wait_for_database(lambda: migrate.upgrade(db), "conveyor serve: upgrading the database")
    settings.storage_root.mkdir(parents=True, exist_ok=True)
    key = wait_for_database(lambda: first_start_key(db), "conveyor serve: reading users")
    setup_process(settings)
    app = wait_for_database(
        lambda: create_app(settings, db, services=[*_services(), retention_service]),
        "conveyor serve: reading the secret key",
    )
    # What start-up made (modules, the app, its routes) lives as long as the process;
    # frozen, the cyclic collector's full passes stop walking it on every page of
    # runs: a third less CPU for a page of 10,000 (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    where = describe_database(settings) + (", created now" if created else "")
    typer.echo(f"Conveyor serving on http://{host}:{port} (database: {where})")
    if key:
        typer.echo(f"First start: created user 'admin' with API key {key}")
        typer.echo("Keep it safe: it is not shown again.")
    sys.stdout.flush()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # records go to the root logger: JSON (conveyor.observability.logs)
        access_log=False,
        http=FilesComHttpProtocol,
    )


def worker(
    concurrency: int = typer.Option(
        1, "--concurrency", "-c", min=1, help="Worker threads in this process."
    ),
    scheduler: bool = typer.Option(
        True, "--scheduler/--no-scheduler", help="Also create scheduled runs (safe in any number)."
    ),
    watcher: bool = typer.Option(
        False, "--watcher/--no-watcher", help="Also watch the storage root for file events."
    ),
) -> None:
    """Run only the engine (planners and executors) against CONVEYOR_DATABASE_URL."""
    from conveyor.engine.service import run_worker_process
    from conveyor.observability.process import setup as setup_process
    from conveyor.store import migrate

    settings = load_settings()
    log_waits()
    db = existing_database(
        settings,
        "`conveyor db upgrade` creates a new one.",
        wait="conveyor worker: opening the database",
    )
    if not wait_for_database(lambda: migrate.is_current(db), "conveyor worker: reading the schema"):
        typer.echo(
            "conveyor: the database schema is not current; run `conveyor db upgrade`", err=True
        )
        raise typer.Exit(2)
    setup_process(settings, worker=True)
    raise typer.Exit(
        run_worker_process(settings, db, concurrency, scheduler=scheduler, watcher=watcher)
    )


def _services() -> list[Service]:
    """Background services run inside `conveyor serve` (engine, scheduler) when installed."""
    try:
        from conveyor.engine.service import embedded_services
    except ImportError:
        return []
    services: list[Service] = embedded_services()
    return services


def _safe_url(settings: Settings) -> str:
    url = settings.database_url
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


db_app = typer.Typer(help="Database commands.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration."""
    from conveyor.store import migrate

    settings = load_settings()
    typer.echo(f"conveyor: database: {describe_database(settings)}", err=True)
    db = open_database(settings, create=True)
    before = migrate.current_revision(db)
    migrate.upgrade(db)
    after = migrate.current_revision(db)
    typer.echo(f"database at revision {after} (was {before or 'empty'})")


keys_app = typer.Typer(help="API key management.", no_args_is_help=True)


@keys_app.command("create")
def api_keys_create(
    user: str = typer.Option(..., "--user", help="User name; created if it does not exist."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin."),
    create: bool = typer.Option(
        False, "--create", help="Create the database if it does not exist yet."
    ),
) -> None:
    """Create an API key and print only the key on stdout (the database used: on stderr)."""
    from conveyor.store import migrate, users

    settings = load_settings()
    if create:
        typer.echo(f"conveyor: database: {describe_database(settings)}", err=True)
        db = open_database(settings, create=True)
    else:
        db = existing_database(settings, "to start a new one there, pass --create.")
    migrate.upgrade(db)
    with db.write() as conn:
        now = SystemClock().now()
        account = users.ensure_user(conn, user, admin, now)
        key = users.create_api_key(conn, account.id, now)
    typer.echo(key)


@keys_app.command("revoke")
def api_keys_revoke(key: str = typer.Argument(..., help="The key to revoke.")) -> None:
    """Revoke an API key; it stops working at once."""
    from conveyor.store import users

    settings = load_settings()
    db = existing_database(settings, "a new one would have no key to revoke.")
    with db.write() as conn:
        done = users.revoke_api_key(conn, key, SystemClock().now())
    if not done:
        typer.echo("no active key matches", err=True)
        raise typer.Exit(1)
    typer.echo("revoked")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(db_app, name="db")
    app.add_typer(keys_app, name="api-keys")
