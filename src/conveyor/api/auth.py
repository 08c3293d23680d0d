"""API-key authentication: the `X-FilesAPI-Key` header, as the Files.com SDKs send it."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.engine import Connection

from conveyor.api import ratelimit
from conveyor.domain import errors
from conveyor.store.prepared import Reads
from conveyor.store.users import User, user_for_key

API_KEY_HEADER = "x-filesapi-key"
MAX_KEY_LENGTH = 256


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


def authenticate(conn: Connection, request: Request) -> User:
    key = api_key(request)
    return admit(request, key, user_for_key(conn, key) if len(key) <= MAX_KEY_LENGTH else None)
