"""`conveyor permissions grant|revoke|list`: folder permissions on a server, through
`conveyor.sdk`. Granting and revoking need an admin's key; a non-admin's key lists
only its own permissions. Output, errors and exit codes are those of the runs commands.
"""

from __future__ import annotations

from typing import Annotated, Any

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
from conveyor.cli.output import OutputFormat, client_errors, write_page, write_record

__all__ = ["permissions_app", "register"]

permissions_app = typer.Typer(help="Folder permissions on a Conveyor server.", no_args_is_help=True)


@permissions_app.command("grant")
def grant(
    path: Annotated[
        str, typer.Argument(help="Folder the permission applies to; '' for the storage root.")
    ],
    permission: Annotated[
        str,
        typer.Option("--permission", help="full, readonly, writeonly or list."),
    ],
    user: Annotated[
        str | None, typer.Option("--user", help="The user's name.", show_default=False)
    ] = None,
    user_id: Annotated[
        int | None, typer.Option("--user-id", help="The user's id.", show_default=False)
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option("--recursive/--no-recursive", help="Cover the folder's subfolders too."),
    ] = True,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Grant a user a permission on a folder (and, unless --no-recursive, its subfolders)."""
    body: dict[str, Any] = {"path": path, "permission": permission, "recursive": recursive}
    if user is not None:
        body["username"] = user
    if user_id is not None:
        body["user_id"] = user_id
    with make_client(url, api_key) as client, client_errors():
        created = client.permission.create(body)
        write_record(created.to_json(), sdk.PERMISSION_FIELDS, fmt)


@permissions_app.command("revoke")
def revoke(
    permission_id: Annotated[int, typer.Argument(metavar="ID", help="The permission's id.")],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Revoke a permission; prints nothing. The user's next runs are checked without it."""
    with make_client(url, api_key) as client, client_errors():
        client.permission.delete(permission_id)


@permissions_app.command("list")
def list_permissions(
    user_id: Annotated[
        int | None, typer.Option("--user-id", help="Only this user's.", show_default=False)
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path",
            help="Only those that apply at this path (on it or a folder above it).",
            show_default=False,
        ),
    ] = None,
    sort_by: Annotated[
        str | None,
        typer.Option("--sort-by", help="FIELD:asc|desc, FIELD one of path, user_id."),
    ] = None,
    per_page: Annotated[
        int | None, typer.Option(help="Permissions per page, 1..10000 (server default 1000).")
    ] = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    fmt: FormatOption = OutputFormat.TABLE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """List permissions, by id unless sorted otherwise."""
    params = list_params(per_page, cursor, sort_by, {})
    if user_id is not None:
        params["user_id"] = user_id
    if path is not None:
        params["path"] = path
    with make_client(url, api_key) as client, client_errors():
        page = client.permission.list(params)
        write_page(
            page,
            all_pages,
            sdk.Permission.to_json,
            sdk.PERMISSION_FIELDS,
            fmt,
            ("id", "path", "user_id", "username", "permission", "recursive"),
            "permissions",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(permissions_app, name="permissions")
