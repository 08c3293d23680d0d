"""Web UI sessions: signing in with an API key, finding the session of a cookie, signing out.

The browser holds a random token; the table holds its SHA-256 and a CSRF
token for the session's forms. A session is valid until it expires, is
ended by signing out, or its API key is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from conveyor.store.schema import api_keys, users, web_sessions
from conveyor.store.users import User, hash_key


@dataclass(frozen=True, slots=True)
class WebSession:
    id: int
    user: User
    csrf_token: str
    expires_at: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sign_in(conn: Connection, key: str, now: int, lifetime_us: int) -> tuple[str, User] | None:
    """Start a session for the owner of an active API key; None if the key is unknown.

    Returns the session token for the cookie: the only time it exists in clear.
    Expired sessions are swept here, so the table does not grow without bound.
    """
    row = conn.execute(
        select(api_keys.c.id, users.c.id, users.c.name, users.c.is_admin)
        .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
        .where(api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    key_id, user_id, name, is_admin = row
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
    token = secrets.token_urlsafe(32)
    conn.execute(
        web_sessions.insert().values(
            token_hash=_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            user_id=user_id,
            api_key_id=key_id,
            created_at=now,
            expires_at=now + lifetime_us,
        )
    )
    return token, User(user_id, name, bool(is_admin))


def find_session(conn: Connection, token: str, now: int) -> WebSession | None:
    """The live session of a cookie's token, with its user; None if ended, expired or revoked."""
    row = conn.execute(
        select(
            web_sessions.c.id,
            web_sessions.c.csrf_token,
            web_sessions.c.expires_at,
            users.c.id,
            users.c.name,
            users.c.is_admin,
        )
        .select_from(
            web_sessions.join(users, users.c.id == web_sessions.c.user_id).join(
                api_keys, api_keys.c.id == web_sessions.c.api_key_id
            )
        )
        .where(
            web_sessions.c.token_hash == _hash(token),
            web_sessions.c.expires_at > now,
            api_keys.c.revoked_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    session_id, csrf, expires_at, user_id, name, is_admin = row
    return WebSession(session_id, User(user_id, name, bool(is_admin)), csrf, expires_at)


def sign_out(conn: Connection, session_id: int) -> None:
    """End the session: its token stops working at once, wherever it was copied."""
    conn.execute(delete(web_sessions).where(web_sessions.c.id == session_id))
