"""API-key authentication: the `X-FilesAPI-Key` header, as the Files.com SDKs send it.

Authentication comes before anything else a request is checked for: without a
key, or with a wrong one, every route with an API key answers 401 whatever its
path, parameters or body; then the key's rate limit may answer 429.

`authenticate` is the one implementation, written as steps
(`store.prepared.Steps`): the key's user, then one rate-limit token. The run
reads run it among their own steps (`conveyor.api.runs`); every other route
with an API key carries `authenticate_first` as a router dependency, which runs
it before the handler, and the handler takes the admitted user with `caller`.
"""

from __future__ import annotations

from fastapi import Request

from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.store.prepared import Steps, run_steps
from conveyor.store.users import User, hash_key, user_for_key

API_KEY_HEADER = "x-filesapi-key"
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


def authenticate(request: Request) -> Steps[User]:
    """The caller: the API key's user (401 for none, an unknown or a revoked key),
    admitted once its key's rate limit allows the request (429); remembered for
    the rest of the request."""
    known = _admitted(request)
    if known is not None:
        return known
    context = ctx(request)
    key = api_key(request)
    user = yield from user_for_key(context.db.engine.dialect, key)
    if user is None:
        raise errors.InvalidCredentials("The API key is unknown or has been revoked.")
    state = request.scope.setdefault("state", {})
    state["user_id"] = user.id  # the access log names the user (conveyor.api.accesslog)
    if context.rate_limiter is not None:
        # Buckets are keyed by the key's hash, so no raw key is kept (or stored).
        yield from context.rate_limiter.take_token(hash_key(key), "this API key")
    state[_ADMITTED] = user
    return user


def authenticate_first(request: Request) -> None:
    """Router dependency: authenticate (401, then 429) before the handler reads the
    request's path, parameters or body."""
    with ctx(request).db.reads() as conn:
        run_steps(conn, authenticate(request))


def caller(request: Request) -> User:
    """The user `authenticate_first` admitted for this request."""
    user = _admitted(request)
    if user is None:  # a route with an API key was registered without the dependency
        raise RuntimeError("caller() on a request that was not authenticated")
    return user


def _admitted(request: Request) -> User | None:
    user: User | None = request.scope.get("state", {}).get(_ADMITTED)
    return user
