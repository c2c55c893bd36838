"""Engines of the station database: SQLite (embedded, the default) or PostgreSQL, with the same transaction rules.

* **SQLite**: every connection runs in WAL mode with ``synchronous=FULL`` (or what the caller asks for) and
  ``foreign_keys=ON``; the driver's own transaction handling is switched off (``isolation_level=None``) and
  SQLAlchemy's ``begin`` event emits ``BEGIN IMMEDIATE`` for a write transaction (SQLite's write lock is taken at
  its start, waiting up to the busy timeout) and a plain ``BEGIN`` for a read. This is the pysqlite recipe of the
  SQLAlchemy documentation ("Serializable isolation / Savepoints / Transactional DDL").
* **PostgreSQL**: a write transaction first takes a transaction-level advisory lock (:data:`WRITE_LOCK`), waiting at
  most the busy timeout (``lock_timeout``): writers of one station database take turns, as they do with SQLite.

A write transaction is a connection with the execution option ``station_write=True`` (see :func:`begin_write`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, create_engine, event, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.sql.elements import ColumnElement, TextClause

#: PostgreSQL advisory lock held by every write transaction (and the schema upgrade) of a station database.
WRITE_LOCK = 7_420_012
CONNECT_TIMEOUT_S = 5


def is_sqlite_url(url: str | URL) -> bool:
    return str(url).startswith("sqlite")


def make_engine(url: str | URL, busy_timeout_s: float, synchronous: str = "FULL", pool: bool = True) -> Engine:
    """An engine for the station database at ``url`` (see the module docstring); ``pool=False``: a fresh
    connection for every use (health checks)."""
    from sqlalchemy.pool import NullPool

    kwargs: dict[str, Any] = {} if pool else {"poolclass": NullPool}
    if is_sqlite_url(url):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
                               **({"pool_size": 5, "max_overflow": 20} if pool else {}), **kwargs)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_con: Any, _record: Any) -> None:
            dbapi_con.isolation_level = None  # the driver emits no BEGIN of its own: the begin event does
            cur = dbapi_con.cursor()
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute(f"PRAGMA synchronous = {synchronous}")
                cur.execute("PRAGMA foreign_keys = ON")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _begin(con: Connection) -> None:
            write = con.get_execution_options().get("station_write", False)
            con.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    else:
        engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, pool_pre_ping=True,
                               **({"pool_size": 3, "max_overflow": 10} if pool else {}), **kwargs)

        @event.listens_for(engine, "begin")
        def _begin_pg(con: Connection) -> None:
            if con.get_execution_options().get("station_write", False):
                timeout_ms = int(con.get_execution_options().get("busy_timeout_s", 10.0) * 1000)
                con.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, timeout_ms)}")
                con.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    return engine


def begin_write(engine: Engine, busy_timeout_s: float) -> Connection:
    """A connection whose transaction (begun here) holds the database's write lock; commit or roll back, then close.

    The connection is closed again when taking the lock fails (locked longer than the busy timeout, I/O error).
    """
    con = engine.connect().execution_options(station_write=True, busy_timeout_s=busy_timeout_s)
    try:
        con.begin()
    except BaseException:
        con.close()
        raise
    return con


def safe_url(url: str | URL) -> str:
    """The database named for a message: the URL without its password."""
    return make_url(url).render_as_string(hide_password=True)


# ----------------------------------------------------------------- rows and statements


class DbRow:
    """A result row read by position or by column name (like ``sqlite3.Row``); ``dict(row)`` gives its columns."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = tuple(values)

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (DbRow, tuple)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"DbRow({dict(zip(self._index, self._values))!r})"


def fetch_rows(result: Any) -> list[DbRow]:
    """Every row of a result as :class:`DbRow`."""
    if not result.returns_rows:
        return []
    index = {k: i for i, k in enumerate(result.keys())}
    return [DbRow(index, r) for r in result]


_QMARK = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


def qmark_text(sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> tuple[TextClause, dict[str, Any]]:
    """``text()`` and its parameters from SQL with ``?`` placeholders and a tuple (the sqlite3 style of earlier
    versions, still accepted by :meth:`utils.storage.Store._query` and the write transaction's ``execute``)."""
    if isinstance(args, dict):
        return text(sql), args
    n = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal n
        if m.group(0) != "?":
            return m.group(0)
        n += 1
        return f":p{n - 1}"

    converted = _QMARK.sub(repl, sql)
    if n != len(args):
        raise ValueError(f"{n} placeholders but {len(args)} values in {sql!r}")
    return text(converted), {f"p{i}": v for i, v in enumerate(args)}


class Tx:
    """The connection of a write transaction as :meth:`utils.storage.Store._tx` hands it out: SQLAlchemy statements,
    or SQL text with ``?`` placeholders (the sqlite3 style of earlier versions)."""

    def __init__(self, con: Connection) -> None:
        self.con = con

    @property
    def dialect(self) -> str:
        return self.con.dialect.name

    def execute(self, statement: Any, args: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        if isinstance(statement, str):
            clause, params = qmark_text(statement, args or ())
            return self.con.execute(clause, params)
        return self.con.execute(statement, args) if args else self.con.execute(statement)

    def executemany(self, statement: Any, seq: Iterable[Sequence[Any] | dict[str, Any]]) -> Any:
        items = list(seq)
        if not items:
            return None
        if isinstance(statement, str):
            clause, _ = qmark_text(statement, items[0])
            return self.con.execute(clause, [qmark_text(statement, a)[1] for a in items])
        return self.con.execute(statement, items)

    def rows(self, statement: Any, args: Sequence[Any] | dict[str, Any] | None = None) -> list[DbRow]:
        return fetch_rows(self.execute(statement, args))

    def one(self, statement: Any, args: Sequence[Any] | dict[str, Any] | None = None) -> DbRow | None:
        rows = self.rows(statement, args)
        return rows[0] if rows else None


def upsert(con: Connection | Tx, table: Any) -> Any:
    """``INSERT ... ON CONFLICT`` of the connection's dialect (``on_conflict_do_update`` / ``_do_nothing``)."""
    name = con.dialect if isinstance(con, Tx) else con.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def in_ids(column: Any, ids: Collection[int], dialect: str) -> ColumnElement[bool]:
    """``column IN (ids)`` as one parameter however many ids there are (SQLite: ``json_each``; PostgreSQL: an
    array), so that no statement runs into a limit on the number of parameters."""
    values = sorted({int(i) for i in ids})
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger)))
    each = func.json_each(json.dumps(values)).table_valued("value")
    return column.in_(select(each.c.value))
