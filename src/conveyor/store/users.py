"""Users and their API keys. Keys are random, shown once, and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Dialect

from conveyor.store.prepared import Prepared, Statement, Steps
from conveyor.store.schema import api_keys, users

# Longer than any key Conveyor issues (`new_key`): refused without a lookup, by the
# API and the web UI's sign-in alike.
MAX_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    is_admin: bool


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """64 hex characters: letters and digits only, as the official SDK requires."""
    return secrets.token_hex(32)


def ensure_user(conn: Connection, name: str, is_admin: bool, now: int) -> User:
    """The user called `name`, created if missing; an existing user is made admin if asked."""
    row = conn.execute(
        select(users.c.id, users.c.name, users.c.is_admin).where(users.c.name == name)
    ).first()
    if row is None:
        user_id = conn.execute(
            users.insert()
            .values(name=name, is_admin=is_admin, created_at=now)
            .returning(users.c.id)
        ).scalar_one()
        return User(user_id, name, is_admin)
    if is_admin and not row.is_admin:
        conn.execute(update(users).where(users.c.id == row.id).values(is_admin=True))
        return User(row.id, row.name, True)
    return User(row.id, row.name, bool(row.is_admin))


def get_user(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(
        select(users.c.id, users.c.name, users.c.is_admin).where(users.c.id == user_id)
    ).first()
    return None if row is None else User(row.id, row.name, bool(row.is_admin))


def create_api_key(conn: Connection, user_id: int, now: int) -> str:
    """Create a key for the user and return it: the only time it is ever visible."""
    key = new_key()
    conn.execute(
        api_keys.insert().values(
            user_id=user_id, key_hash=hash_key(key), prefix=key[:8], created_at=now
        )
    )
    return key


def revoke_api_key(conn: Connection, key: str, now: int) -> bool:
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


def _user_for_key() -> object:
    return (
        select(users.c.id, users.c.name, users.c.is_admin)
        .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
        .where(
            api_keys.c.key_hash == bindparam("key_hash", type_=api_keys.c.key_hash.type),
            api_keys.c.revoked_at.is_(None),
        )
    )


_USER_FOR_KEY = Prepared(_user_for_key)


def user_for_key(dialect: Dialect, key: str) -> Steps[User | None]:
    """The user owning an active key, or None for an unknown or revoked key (a key
    longer than any Conveyor issues is not looked up)."""
    if len(key) > MAX_KEY_LENGTH:
        return None
    rows = yield Statement(_USER_FOR_KEY.for_dialect(dialect), {"key_hash": hash_key(key)})
    return User(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None


_USER_BY_ID = Prepared(
    lambda: select(users.c.id, users.c.name, users.c.is_admin).where(
        users.c.id == bindparam("user_id", type_=users.c.id.type)
    )
)


def user_by_id(dialect: Dialect, user_id: int) -> Steps[User | None]:
    """The user of that id, or None."""
    rows = yield Statement(_USER_BY_ID.for_dialect(dialect), {"user_id": user_id})
    return User(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None
