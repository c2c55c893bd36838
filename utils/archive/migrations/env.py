"""Alembic environment of the central archive: runs on the connection :meth:`CentralArchive.upgrade` passes."""

from __future__ import annotations

from utils.db.migrate import run_env

run_env("utils.archive.central.CentralArchive(url).upgrade()")
