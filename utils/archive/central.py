"""The central archive's database: every station's orders and images in one place (PostgreSQL in a plant; SQLite
works too, for one PC or tests), through SQLAlchemy Core, its schema kept by Alembic (``utils/archive/migrations``).

A row is known by ``(station, origin_id)``: the station that made it and its id in that station's own database.
Writing is an *upsert* on that key, so sending a row twice (a retry after a timeout or a crash) changes nothing:
no duplicate can arise. The image files live in the object store (:mod:`utils.archive.objects`) under
``station/order folder/file name``; the row holds that key and the file's MD5.

The same order number at two stations is **one order seen by several stations**: each station's run is its own
row here (its own folder in the object store), and the central view groups them by order number
(:meth:`CentralArchive.orders_by_number`). Nothing is ever deleted here because a station deleted it: a station's
trash shows as ``state = 'trashed'`` (and a station purging its trash, or removing local copies after the
upload, leaves the archive as it is).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_UPGRADE_LOCK = 7_420_011  # PostgreSQL advisory lock: one station at a time upgrades the schema
CONNECT_TIMEOUT_S = 5

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite's autoincrement needs INTEGER PRIMARY KEY
metadata = MetaData()

stations = Table(
    "stations", metadata,
    Column("name", String(64), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

orders = Table(
    "orders", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("station", String(64), nullable=False),
    Column("origin_id", BigInteger, nullable=False),
    Column("order_number", String(200), nullable=False),
    Column("folder", String(300), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("mode", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("threshold", Float),
    Column("images_per_second", Float),
    Column("resolution", Integer),
    Column("camera", Text),
    Column("descriptor", Text),
    Column("video_key", Text),
    Column("video_frames", Integer),
    Column("video_fps", Float),
    Column("keep", Boolean, nullable=False),
    Column("trashed_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("station", "origin_id", name="orders_station_origin"),
    Index("orders_number", "order_number"),
)

images = Table(
    "images", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("station", String(64), nullable=False),
    Column("origin_id", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("file_name", String(300), nullable=False),
    Column("object_key", Text, nullable=False),
    Column("md5", String(32), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("captured_at", DateTime(timezone=True), nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("distance", Float),
    Column("forced", Boolean, nullable=False),
    Column("camera", Text),
    Column("source_origin_id", BigInteger),  # a version's source: (station, source_origin_id)
    Column("operation", JSON),
    Column("tool", Text),
    Column("source_url", Text),
    Column("trashed_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("station", "origin_id", name="images_station_origin"),
    Index("images_order", "order_id"),
    Index("images_captured", "captured_at"),
)


image_stats = Table(
    "image_stats", metadata,
    Column("image_id", Id, ForeignKey("images.id"), primary_key=True),
    Column("brightness", Float),
    Column("contrast", Float),
    Column("sharpness", Float),
    Column("avg_hex", String(7)),
    Column("dominant_hex", String(7)),
    Column("error", Text),  # why the statistics could not be computed (the file is unreadable, too large ...)
    Column("computed_at", DateTime(timezone=True), nullable=False),
)


class CentralError(RuntimeError):
    """The central database cannot be used as configured; the message says what to fix."""


class CentralUnavailable(CentralError):
    """The central database cannot be reached right now (down, network): try again later."""


def _when(value: Any) -> datetime | None:
    """A station's ISO timestamp as an aware datetime (UTC where it has no offset)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _as_central_error(err: Exception, where: str) -> CentralError:
    """Sort a database error into "try again later" and "fix the configuration", without secrets."""
    text_ = str(getattr(err, "orig", None) or err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    lowered = text_.lower()
    if any(s in lowered for s in ("password authentication failed", "authentication failed", "role ")):
        return CentralError(f"the central database at {where} refused the login ({text_}); check the user and "
                            "password in CENTRAL_DATABASE_URL")
    if "database" in lowered and "does not exist" in lowered:
        return CentralError(f"{text_} at {where}: create it (createdb) or fix CENTRAL_DATABASE_URL")
    if isinstance(err, DBAPIError) and (err.connection_invalidated or any(s in lowered for s in (
            "connection refused", "could not connect", "timeout", "timed out", "server closed", "terminating",
            "connection", "shutting down", "the database system is", "no route", "name or service", "locked"))):
        return CentralUnavailable(f"cannot reach the central database at {where}: {text_}; will retry")
    return CentralError(f"the central database at {where} failed: {text_}")


class CentralArchive:
    """Rows of every station in one database; create with a SQLAlchemy URL, then :meth:`upgrade`."""

    def __init__(self, url: str) -> None:
        connect_args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        elif url.startswith("sqlite"):
            connect_args["timeout"] = 10
        pool = {} if url.startswith("sqlite") else {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}
        try:
            self.engine: Engine = create_engine(url, connect_args=connect_args, **pool)
        except (SQLAlchemyError, ValueError, ImportError) as err:
            raise CentralError(f"CENTRAL_DATABASE_URL cannot be used: {err}") from None
        self.where = self.engine.url.render_as_string(hide_password=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", lambda con, _: con.execute("PRAGMA foreign_keys = ON"))

    def close(self) -> None:
        self.engine.dispose()

    # -- schema
    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (several stations may start at once: on PostgreSQL an
        advisory lock lets one upgrade while the others wait)."""
        from utils.db import migrate

        try:
            with self.engine.connect() as con:
                postgres = con.dialect.name == "postgresql"
                if postgres:
                    con.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _UPGRADE_LOCK})
                    con.commit()
                try:
                    migrate.upgrade(con, MIGRATIONS)
                    con.commit()
                finally:
                    if postgres:
                        con.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _UPGRADE_LOCK})
                        con.commit()
        except SQLAlchemyError as err:
            raise _as_central_error(err, self.where) from None

    def revision(self) -> str | None:
        """The Alembic revision of the schema (None: not made yet)."""
        from utils.db.migrate import current_revision

        with self.engine.connect() as con:
            return current_revision(con)

    # -- writing (the station's sync)
    def _upsert(self, con: Connection, table: Table, values: dict[str, Any], update: list[str]) -> int:
        if con.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif con.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - other databases are not offered
            raise CentralError(f"{con.dialect.name} is not supported: use PostgreSQL (or SQLite)")
        stmt = insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=["station", "origin_id"],
                                          set_={c: stmt.excluded[c] for c in update})
        return int(con.execute(stmt.returning(table.c.id)).scalar_one())

    def _write(self, station: str, fn: Any) -> Any:
        try:
            with self.engine.begin() as con:
                result = fn(con)
                now = datetime.now(timezone.utc)
                if con.dialect.name == "postgresql":
                    from sqlalchemy.dialects.postgresql import insert
                else:
                    from sqlalchemy.dialects.sqlite import insert
                seen = insert(stations).values(name=station, first_seen=now, last_seen=now)
                con.execute(seen.on_conflict_do_update(index_elements=["name"], set_={"last_seen": now}))
                return result
        except SQLAlchemyError as err:
            raise _as_central_error(err, self.where) from None

    def put_order(self, station: str, row: Mapping[str, Any], video_key: str | None = None) -> int:
        """Insert or update a station's order (its local row as :meth:`utils.storage.Store.order_row` gives it);
        returns the central id."""
        values = {
            "station": station, "origin_id": int(row["id"]), "order_number": row["order_number"],
            "folder": row["folder"], "kind": row.get("kind") or "capture", "mode": row["mode"],
            "status": row["status"], "started_at": _when(row["started_at"]), "closed_at": _when(row.get("closed_at")),
            "threshold": row.get("threshold"), "images_per_second": row.get("images_per_second"),
            "resolution": row.get("resolution"), "camera": row.get("camera"), "descriptor": row.get("descriptor"),
            "video_key": video_key, "video_frames": row.get("video_frames"), "video_fps": row.get("video_fps"),
            "keep": bool(row.get("keep")), "trashed_at": _when(row.get("trashed_at")),
            "synced_at": datetime.now(timezone.utc),
        }
        update = [k for k in values if k not in ("station", "origin_id") and not (k == "video_key" and not video_key)]
        return self._write(station, lambda con: self._upsert(con, orders, values, update))

    def put_image(self, station: str, order_id: int, row: Mapping[str, Any], object_key: str, md5: str,
                  size_bytes: int) -> int:
        """Insert or update a station's image (its local row as :meth:`utils.storage.Store.image_row` gives it)
        in the central order ``order_id``; returns the central id."""
        operation = row.get("operation")
        values = {
            "order_id": order_id, "station": station, "origin_id": int(row["id"]), "seq": int(row["seq"]),
            "file_name": row["file_name"], "object_key": object_key, "md5": md5, "size_bytes": int(size_bytes),
            "state": row["state"], "kind": row.get("kind") or "capture", "captured_at": _when(row["captured_at"]),
            "width": row.get("width"), "height": row.get("height"), "distance": row.get("distance"),
            "forced": bool(row.get("forced")), "camera": row.get("camera"),
            "source_origin_id": row.get("source_image_id"),
            "operation": json.loads(operation) if isinstance(operation, str) else operation,
            "tool": row.get("tool"), "source_url": row.get("source_url"), "trashed_at": _when(row.get("trashed_at")),
            "synced_at": datetime.now(timezone.utc),
        }
        update = [k for k in values if k not in ("station", "origin_id")]
        return self._write(station, lambda con: self._upsert(con, images, values, update))

    # -- statistics computed centrally (utils/archive/indexer.py)
    def images_without_stats(self, limit: int = 50) -> list[dict[str, Any]]:
        """Archived images (kept) whose statistics are not computed yet, oldest first."""
        missing = ~select(image_stats.c.image_id).where(image_stats.c.image_id == images.c.id).exists()
        return self._read(select(images.c.id, images.c.object_key, images.c.file_name)
                          .where(images.c.state == "ok", missing).order_by(images.c.id).limit(limit))

    def put_stats(self, image_id: int, values: dict[str, Any]) -> None:
        """Store an image's statistics (or its ``error``); a second write of the same image changes nothing."""
        row = {"image_id": int(image_id), "computed_at": datetime.now(timezone.utc),
               **{k: values.get(k) for k in ("brightness", "contrast", "sharpness", "avg_hex", "dominant_hex",
                                             "error")}}
        try:
            with self.engine.begin() as con:
                if con.dialect.name == "postgresql":
                    from sqlalchemy.dialects.postgresql import insert
                else:
                    from sqlalchemy.dialects.sqlite import insert
                con.execute(insert(image_stats).values(**row).on_conflict_do_nothing(index_elements=["image_id"]))
        except SQLAlchemyError as err:
            raise _as_central_error(err, self.where) from None

    # -- reading (the central view, tests, the benchmark)
    def _read(self, stmt: Any) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as con:
                rows = [dict(r._mapping) for r in con.execute(stmt)]
        except SQLAlchemyError as err:
            raise _as_central_error(err, self.where) from None
        for row in rows:  # SQLite keeps no offset: its times are UTC
            for k, v in row.items():
                if isinstance(v, datetime) and v.tzinfo is None:
                    row[k] = v.replace(tzinfo=timezone.utc)
        return rows

    def stations_seen(self) -> list[dict[str, Any]]:
        """The stations that sent something: name, first and last seen."""
        return self._read(select(stations).order_by(stations.c.name))

    def image(self, image_id: int) -> dict[str, Any] | None:
        """One archived image's row, None if there is none with that id."""
        rows = self._read(select(images).where(images.c.id == int(image_id)))
        return rows[0] if rows else None

    def station_names(self) -> list[str]:
        return [r["name"] for r in self._read(select(stations.c.name).order_by(stations.c.name))]

    def list_orders(self, station: str | None = None) -> list[dict[str, Any]]:
        """Orders of every station (or one), newest first, with their number of kept images."""
        n = (select(func.count()).select_from(images)
             .where(images.c.order_id == orders.c.id, images.c.state == "ok", images.c.kind != "version")
             .scalar_subquery())
        stmt = select(orders, n.label("n_images")).order_by(orders.c.started_at.desc(), orders.c.id.desc())
        if station is not None:
            stmt = stmt.where(orders.c.station == station)
        return self._read(stmt)

    def orders_by_number(self, order_number: str) -> list[dict[str, Any]]:
        """Every station's run of one order number, oldest first."""
        return self._read(select(orders).where(orders.c.order_number == order_number).order_by(orders.c.started_at))

    def images(self, order_ids: list[int] | None = None, station: str | None = None,
               states: tuple[str, ...] = ("ok",)) -> list[dict[str, Any]]:
        """Images (of these orders, of one station), in capture order."""
        stmt = select(images).where(images.c.state.in_(states)).order_by(images.c.captured_at, images.c.id)
        if order_ids is not None:
            stmt = stmt.where(images.c.order_id.in_(order_ids))
        if station is not None:
            stmt = stmt.where(images.c.station == station)
        return self._read(stmt)

    def images_with_stats(self, station: str | None = None) -> list[dict[str, Any]]:
        """Kept images with their order number and their statistics (None where not computed yet)."""
        stmt = (select(images, orders.c.order_number, image_stats.c.brightness, image_stats.c.contrast,
                       image_stats.c.sharpness, image_stats.c.dominant_hex, image_stats.c.error.label("stats_error"))
                .join(orders, orders.c.id == images.c.order_id)
                .outerjoin(image_stats, image_stats.c.image_id == images.c.id)
                .where(images.c.state == "ok").order_by(images.c.captured_at, images.c.id))
        if station is not None:
            stmt = stmt.where(images.c.station == station)
        return self._read(stmt)

    def iter_keys(self, station: str | None = None) -> Iterator[tuple[str, int, str]]:
        """(station, origin id, object key) of every image row."""
        stmt = select(images.c.station, images.c.origin_id, images.c.object_key)
        if station is not None:
            stmt = stmt.where(images.c.station == station)
        for r in self._read(stmt):
            yield r["station"], r["origin_id"], r["object_key"]
