"""The server secret that signs cursors and status-message URLs.

Kept in the `settings` table so every API process sharing a database signs
alike; CONVEYOR_SECRET_KEY overrides it. Two processes starting at once
both try to insert one; the database keeps the first and both read it back.
"""

from __future__ import annotations

import secrets as _random

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from conveyor.store.schema import settings

SECRET_KEY = "secret_key"


def get_or_create_secret(conn: Connection) -> bytes:
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        insert(settings)
        .values(key=SECRET_KEY, value=_random.token_hex(32))
        .on_conflict_do_nothing(index_elements=["key"])
    )
    value = conn.execute(select(settings.c.value).where(settings.c.key == SECRET_KEY)).scalar_one()
    return bytes.fromhex(value)
