"""API-key authentication: the `X-FilesAPI-Key` header, as the Files.com SDKs send it.

Authentication comes before anything else a request is checked for: without a
key, or with a wrong one, every route with an API key answers 401 whatever its
path, parameters or body. The routers of such routes carry `authenticate_first`
as a dependency, which runs before the handler; the handler's own `authenticate`
then returns the user admitted for this request (one rate-limit token a request).
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.engine import Connection

from conveyor.api import ratelimit
from conveyor.api.context import ctx
from conveyor.domain import errors
from conveyor.store.prepared import Reads
from conveyor.store.users import User, user_for_key

API_KEY_HEADER = "x-filesapi-key"
MAX_KEY_LENGTH = 256
# Where the user admitted for a request is kept, in its scope's state.
_ADMITTED = "conveyor_user"


def api_key(request: Request) -> str:
    """The request's API key; AuthenticationRequired when there is none."""
    key = request.headers.get(API_KEY_HEADER)
    if not key:
        raise errors.AuthenticationRequired(
            "Authentication required: send your API key in the X-FilesAPI-Key header."
        )
    return key


def admit(request: Request, key: str, user: User | None) -> User:
    """The caller `user` found for `key` (None: unknown or revoked), once the key's
    rate limit allows the request."""
    known = _known(request, user)
    ratelimit.enforce(request, key)
    return known


def admit_steps(request: Request, key: str, user: User | None) -> Reads[User]:
    """`admit` as a reading generator (`store.prepared.Read`)."""
    known = _known(request, user)
    yield from ratelimit.enforce_steps(request, key)
    return known


def _known(request: Request, user: User | None) -> User:
    if user is None:
        raise errors.InvalidCredentials("The API key is unknown or has been revoked.")
    # The access log names the user (conveyor.api.accesslog reads it back).
    request.scope.setdefault("state", {})["user_id"] = user.id
    return user


def admitted(request: Request) -> User | None:
    """The user already admitted for this request, if any."""
    user: User | None = request.scope.get("state", {}).get(_ADMITTED)
    return user


def remember(request: Request, user: User) -> User:
    request.scope.setdefault("state", {})[_ADMITTED] = user
    return user


def authenticate(conn: Connection, request: Request) -> User:
    """The caller: admitted once a request (`authenticate_first`), then remembered."""
    known = admitted(request)
    if known is not None:
        return known
    key = api_key(request)
    found = user_for_key(conn, key) if len(key) <= MAX_KEY_LENGTH else None
    return remember(request, admit(request, key, found))


def authenticate_first(request: Request) -> None:
    """Router dependency: authenticate (401, then 429) before the handler reads the
    request's path, parameters or body."""
    with ctx(request).db.read() as conn:
        authenticate(conn, request)
