"""Alembic environment of the central archive: runs on the connection :meth:`CentralArchive.upgrade` passes."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only run through CentralArchive.upgrade
    raise RuntimeError("run the archive's migrations with utils.archive.central.CentralArchive(url).upgrade()")
context.configure(connection=connection, target_metadata=None, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
