"""Alembic environment of the station database: runs on the connection :class:`utils.storage.Store` passes."""

from __future__ import annotations

from utils.db.migrate import run_env

run_env("utils.storage.Store(export_dir, ...), which upgrades its database when it opens it")
