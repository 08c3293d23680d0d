"""Web UI sessions: signing in with an API key, finding the session of a cookie, signing out.

The browser holds a random token; the table holds its SHA-256 and a CSRF
token for the session's forms. A session is valid until it expires, is
ended by signing out, or its API key is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from conveyor.domain.automations import Automation
from conveyor.store.automations import SELECT_COLUMNS, automation_from_row
from conveyor.store.schema import api_keys, automations, users, web_sessions
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


_SESSION_COLUMNS = (
    web_sessions.c.id,
    web_sessions.c.csrf_token,
    web_sessions.c.expires_at,
    users.c.id,
    users.c.name,
    users.c.is_admin,
)
_LIVE_SESSIONS = web_sessions.join(users, users.c.id == web_sessions.c.user_id).join(
    api_keys, api_keys.c.id == web_sessions.c.api_key_id
)


def _live(token: str, now: int) -> tuple[Any, ...]:
    return (
        web_sessions.c.token_hash == _hash(token),
        web_sessions.c.expires_at > now,
        api_keys.c.revoked_at.is_(None),
    )


def _session_of(row: Any) -> WebSession:
    session_id, csrf, expires_at, user_id, name, is_admin = row[:6]
    return WebSession(session_id, User(user_id, name, bool(is_admin)), csrf, expires_at)


def find_session(conn: Connection, token: str, now: int) -> WebSession | None:
    """The live session of a cookie's token, with its user; None if ended, expired or revoked."""
    row = conn.execute(
        select(*_SESSION_COLUMNS).select_from(_LIVE_SESSIONS).where(*_live(token, now))
    ).first()
    return None if row is None else _session_of(row)


def find_session_and_automation(
    conn: Connection, token: str, now: int, automation_id: int
) -> tuple[WebSession | None, Automation | None]:
    """`find_session`, and `store.automations.get_automation(automation_id)` when the
    session is live, in one statement: a page about one automation checks who is
    asking and reads the automation in one round trip."""
    row = conn.execute(
        select(*_SESSION_COLUMNS, *SELECT_COLUMNS)
        .select_from(_LIVE_SESSIONS.outerjoin(automations, automations.c.id == automation_id))
        .where(*_live(token, now))
    ).first()
    if row is None:
        return None, None
    automation = row[len(_SESSION_COLUMNS) :]
    found = None if automation[0] is None else automation_from_row(automation)
    return _session_of(row), found


def sign_out(conn: Connection, session_id: int) -> None:
    """End the session: its token stops working at once, wherever it was copied."""
    conn.execute(delete(web_sessions).where(web_sessions.c.id == session_id))
