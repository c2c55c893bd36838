"""Alembic run from code, without an alembic.ini: the station database's migrations (``utils/db/migrations``) and
the central archive's (``utils/archive/migrations``).

The caller opens the connection (and, where it wants, the transaction and the lock around the upgrade) and passes
it through ``config.attributes``; each migrations folder's ``env.py`` is just :func:`run_env`. Inside a transaction
the caller began, Alembic runs in it and leaves the commit to the caller.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy.engine import Connection

#: The station database's revisions.
STATION_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The station's revision that equals schema version 3 (``PRAGMA user_version`` of the versions before Alembic).
STATION_BASE_REVISION = "0001"


def alembic_config(script_location: Path, connection: Connection | None = None):  # -> alembic.config.Config
    """An Alembic configuration for ``script_location``, running on ``connection``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, script_location: Path, revision: str = "head") -> None:
    """Run the migrations of ``script_location`` up to ``revision`` on ``connection``."""
    from alembic import command

    command.upgrade(alembic_config(script_location, connection), revision)


def stamp(connection: Connection, script_location: Path, revision: str) -> None:
    """Record ``revision`` as the database's (its schema is that revision's already), running nothing."""
    from alembic import command

    command.stamp(alembic_config(script_location, connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The database's Alembic revision (None: no ``alembic_version`` table, or an empty one)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@functools.lru_cache(maxsize=None)
def head_revision(script_location: Path) -> str | None:
    """The newest revision of ``script_location`` (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


def run_env(how: str) -> None:
    """The body of an ``env.py``: run the migrations on the connection passed in ``config.attributes``; ``how``
    says how they are meant to be run (the message when no connection was passed)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(f"run these migrations with {how}")
    context.configure(connection=connection, target_metadata=None,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
