"""Alembic environment: migrations run on a connection handed over by conveyor.store.migrate."""

from __future__ import annotations

from alembic import context

from conveyor.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `conveyor db upgrade` (conveyor.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
