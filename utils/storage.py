"""Orders and kept images: one folder per order under EXPORT_DIR, metadata in the station database through
SQLAlchemy Core (SQLite by default, PostgreSQL by DATABASE_URL; tables in :mod:`utils.db.schema`, schema kept by
Alembic: ``utils/db/migrations``).

Consistency rule (files and rows agree whatever moment the process dies):

1. a row is inserted with ``state='pending'`` and committed;
2. the file is written atomically (temporary file, fsync, rename);
3. the row is set to ``state='ok'``.

:meth:`Store.recover` (run at start) finishes what a crash interrupted: a pending row whose
file is complete becomes ``ok``, a pending row without its file is removed, temporary files
are deleted. An image is reported as kept only after step 3.

Reused order numbers: an order that is still *open* (e.g. the app died while capturing) is
resumed with its folder and kept images; a *closed* order is never touched again, a new run
gets a new folder ``ORDER_1``, ``ORDER_2``, ... like the original app.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from sqlalchemy import bindparam, case, delete, exists, func, insert, inspect, literal, select, update
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from utils.db import migrate
from utils.db import schema as db
from utils.db.engine import DbRow, Tx, begin_write, in_ids, is_sqlite_url, make_engine, safe_url, upsert
from utils.files import atomic_write_bytes, fsync_dir, is_temp_file

if TYPE_CHECKING:
    from utils.config import Settings

logger = logging.getLogger(__name__)

#: The schema version (``PRAGMA user_version``) of the versions before Alembic; it equals the Alembic revision
#: ``0001`` (utils/db/migrations). Later changes are Alembic revisions only.
SCHEMA_VERSION = 3
TRASH_FOLDER = "trash"
Mode = Literal["distinct images", "video"]
ImageKind = Literal["capture", "version", "import"]
PRIMARY_KINDS = ("capture", "import")  # images of their own; versions are shown beside their source

#: Everything the product keeps in EXPORT_DIR besides the order folders lives in this folder. Its name starts
#: with a dot, which no order number may, so an order can never take the database's place (or its journal's).
PRIVATE_FOLDER = ".capture"
DATABASE_NAME = "capture.sqlite3"
_SQLITE_SIDE_FILES = ("", "-journal", "-wal", "-shm")
BUSY_TIMEOUT_S = 10.0  # how long a write waits for another process's lock before it fails (and is retried)


def default_database_path(export_dir: Path) -> Path:
    """The database of an EXPORT_DIR: ``EXPORT_DIR/.capture/capture.sqlite3``.

    An installation made before this layout keeps its ``EXPORT_DIR/capture.sqlite3`` (it is used where it
    exists; the order names that would collide with it are refused). Move it with the services stopped:
    ``mkdir EXPORT_DIR/.capture && mv EXPORT_DIR/capture.sqlite3* EXPORT_DIR/.capture/``.
    """
    legacy = Path(export_dir) / DATABASE_NAME
    if legacy.is_file():
        return legacy
    return Path(export_dir) / PRIVATE_FOLDER / DATABASE_NAME


# The schema of the versions before Alembic (SQLite), kept to bring their databases to version 3 before they are
# stamped at the Alembic revision 0001; a new database is made by the Alembic revisions (utils/db/migrations).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    order_number TEXT NOT NULL,
    folder TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    started_at TEXT NOT NULL,
    closed_at TEXT,
    threshold REAL,
    images_per_second REAL,
    resolution INTEGER,
    camera TEXT,
    descriptor TEXT,
    video_file TEXT,
    video_frames INTEGER,
    video_fps REAL
);
CREATE INDEX IF NOT EXISTS orders_number ON orders(order_number);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    seq INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ok', 'trashed')),
    captured_at TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    size_bytes INTEGER,
    distance REAL,
    forced INTEGER NOT NULL DEFAULT 0,
    camera TEXT,
    features BLOB,
    UNIQUE (order_id, seq),
    UNIQUE (order_id, file_name)
);
CREATE INDEX IF NOT EXISTS images_order ON images(order_id, state);
"""

# Upgrades of a database of the versions before Alembic, applied in order at start (``PRAGMA user_version`` says
# which ran); nothing is lost: columns are added with defaults that describe what the older version stored.
_MIGRATIONS: dict[int, list[str]] = {
    2: [  # image tools: versions, imports, labels, scheduled jobs, retention
        "ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'capture'",
        "ALTER TABLE orders ADD COLUMN keep INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE orders ADD COLUMN trashed_at TEXT",
        "ALTER TABLE images ADD COLUMN kind TEXT NOT NULL DEFAULT 'capture'",
        "ALTER TABLE images ADD COLUMN source_image_id INTEGER REFERENCES images(id)",
        "ALTER TABLE images ADD COLUMN operation TEXT",
        "ALTER TABLE images ADD COLUMN tool TEXT",
        "ALTER TABLE images ADD COLUMN source_url TEXT",
        "ALTER TABLE images ADD COLUMN trashed_at TEXT",
        "CREATE INDEX IF NOT EXISTS images_source ON images(source_image_id)",
        # images trashed before the upgrade: their time in the trash starts now
        "UPDATE images SET trashed_at = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now') WHERE state = 'trashed'",
        """CREATE TABLE IF NOT EXISTS labels (
            image_id INTEGER NOT NULL REFERENCES images(id),
            rank INTEGER NOT NULL,
            name TEXT NOT NULL,
            score REAL NOT NULL,
            model TEXT NOT NULL,
            PRIMARY KEY (image_id, rank)
        )""",
        "CREATE INDEX IF NOT EXISTS labels_name ON labels(name)",
        """CREATE TABLE IF NOT EXISTS jobs (
            name TEXT PRIMARY KEY,
            last_started TEXT,
            last_finished TEXT,
            duration_s REAL,
            result TEXT,
            error TEXT,
            next_run TEXT,
            runs INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""",
    ],
    3: [  # several stations, one archive: the station on every row, a durable outbox for the sync
        "ALTER TABLE orders ADD COLUMN station TEXT",
        "ALTER TABLE orders ADD COLUMN synced_at TEXT",
        "ALTER TABLE images ADD COLUMN station TEXT",
        "ALTER TABLE images ADD COLUMN synced_at TEXT",
        "ALTER TABLE images ADD COLUMN local_removed_at TEXT",  # the file is only in the archive since then
        """CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL CHECK (entity IN ('order', 'image')),
            entity_id INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            failed_at TEXT,
            done_at TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox(done_at, failed_at, id)",
        "CREATE INDEX IF NOT EXISTS images_unsynced ON images(synced_at)",
    ],
}

# ----------------------------------------------------------------- order numbers

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_ALLOWED_PUNCT = set("-_.+#")


# East Asian scripts are written together (Japanese: kanji with kana; Korean: hangul with hanja) and with Latin
_SCRIPT_GROUPS = {"CJK": "Han/Kana/Hangul", "HIRAGANA": "Han/Kana/Hangul", "KATAKANA": "Han/Kana/Hangul",
                  "HANGUL": "Han/Kana/Hangul", "HALFWIDTH": "Han/Kana/Hangul"}


def letter_scripts(value: str) -> set[str]:
    """The scripts of the letters in ``value`` (Latin, Cyrillic, Greek, ...; digits and punctuation have none).

    Latin next to Han/Kana/Hangul counts as one (product codes in Japanese plants mix them).
    """
    scripts = set()
    for char in value:
        if not char.isalpha():
            continue
        word = unicodedata.name(char, "UNKNOWN").split(" ")[0]
        scripts.add(_SCRIPT_GROUPS.get(word, word.title()))
    if "Han/Kana/Hangul" in scripts:
        scripts.discard("Latin")
    return scripts


class OrderNumberError(ValueError):
    """An order number that cannot name a folder; the message says what to type instead."""


def validate_order_number(raw: str, max_length: int = 64) -> str:
    """The order number, trimmed, or :class:`OrderNumberError` with a message for the operator.

    Accepted: letters and digits (any script), ``- _ . + #``, single inner spaces; at most
    ``max_length`` characters. Refused: empty, path separators, ``..``, control characters,
    names reserved by Windows (``CON``, ``COM1``...), a leading dot or dash, characters
    that only look like plain ones (full-width letters, division slash, ...) and letters of
    several scripts in one name (a Cyrillic О among Latin letters).
    """
    if not isinstance(raw, str):
        raise OrderNumberError("Order number must be text.")
    value = raw.strip()
    hint = "Use letters, digits and - _ . + # only."
    if not value:
        raise OrderNumberError("Please enter an order number.")
    if len(value) > max_length:
        raise OrderNumberError(f"Order number is too long ({len(value)} characters, at most {max_length}).")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise OrderNumberError("Order number contains control or invisible characters. " + hint)
    if "/" in value or "\\" in value:
        raise OrderNumberError("Order number must not contain / or \\ (it names a folder). " + hint)
    if ".." in value:
        raise OrderNumberError("Order number must not contain '..'. " + hint)
    if unicodedata.normalize("NFKC", value) != value:
        raise OrderNumberError(
            "Order number contains look-alike characters (e.g. full-width letters or special slashes); "
            "type it with plain characters."
        )
    bad = sorted({c for c in value if not (c.isalnum() or c in _ALLOWED_PUNCT or c == " ")})
    if bad:
        raise OrderNumberError(f"Order number contains characters that are not allowed: {' '.join(bad)}. " + hint)
    if "  " in value:
        raise OrderNumberError("Order number must not contain several spaces in a row.")
    if value[0] in ".-":
        raise OrderNumberError("Order number must not start with '.' or '-'.")
    scripts = letter_scripts(value)
    if len(scripts) > 1:
        raise OrderNumberError(
            f"Order number mixes letters of several scripts ({', '.join(sorted(scripts))}); letters that look alike "
            "(Latin O, Cyrillic О) would make two orders look the same. Type it in one script."
        )
    if value.split(".")[0].upper().rstrip() in _RESERVED:
        raise OrderNumberError(f"'{value}' is a reserved device name on Windows; please add a prefix or suffix.")
    return value


# ----------------------------------------------------------------- records


def _name_part(text: str, max_length: int = 24) -> str:
    """A short, file-name-safe word for a version's file name (``crop+rotate`` -> ``crop-rotate``)."""
    out = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in text.lower())
    return "-".join(p for p in out.split("-") if p)[:max_length] or "edit"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class OrderRecord:
    id: int
    order_number: str
    folder: Path
    mode: str
    status: str
    started_at: datetime
    closed_at: datetime | None
    threshold: float | None
    images_per_second: float | None
    resolution: int | None
    camera: str | None
    descriptor: str | None
    video_file: str | None
    video_frames: int | None
    video_fps: float | None
    n_images: int = 0
    kind: str = "capture"  # capture (an order) or import (a collection of images from web pages)
    keep: bool = False  # never removed by retention
    trashed_at: datetime | None = None  # removed by retention (folder in the trash), purged later
    station: str | None = None  # the station that captured it (STATION_NAME)
    synced_at: datetime | None = None  # when the central archive last confirmed it

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def video_path(self) -> Path | None:
        return self.folder / self.video_file if self.video_file else None


@dataclass(frozen=True)
class ImageRecord:
    id: int
    order_id: int
    seq: int
    file_name: str
    state: str
    captured_at: datetime
    width: int | None
    height: int | None
    size_bytes: int | None
    distance: float | None
    forced: bool
    camera: str | None
    path: Path
    kind: str = "capture"  # capture, version (made by a tool from source_image_id) or import (from source_url)
    source_image_id: int | None = None
    operation: dict[str, Any] | None = None  # what made a version: the tool's operation and parameters
    tool: str | None = None  # the library / model that ran
    source_url: str | None = None
    trashed_at: datetime | None = None
    station: str | None = None
    synced_at: datetime | None = None  # when the central archive last confirmed it
    local_removed_at: datetime | None = None  # the station's copy was removed then: the file is in the archive

    @property
    def is_version(self) -> bool:
        return self.kind == "version"


@dataclass(frozen=True)
class OutboxEntry:
    """One change waiting for the central archive."""

    id: int
    entity: str  # "order" or "image"
    entity_id: int
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class OutboxBacklog:
    """What waits for the central archive."""

    images: int  # waiting to be sent (the failed ones not counted)
    orders: int
    failed: int  # changes that will not be sent (their file is gone); listed until someone looks
    oldest: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class SavedCameraParams:
    """Camera parameters saved on the Camera settings page: the query parameters that are set, who saved them and
    when, and what the test shot with exactly these values showed (None: saved without one)."""

    params: dict[str, Any]
    saved_by: str
    saved_at: datetime
    test_shot: str | None


class StorageError(RuntimeError):
    """Writing an image or a row failed; nothing half-written is left behind."""


@dataclass
class RecoveryReport:
    completed: int = 0  # pending rows whose file was complete
    removed_rows: int = 0  # pending rows without a file
    removed_temp_files: int = 0
    orphan_files: list[Path] | None = None  # image files without any row (left in place)

    def __str__(self) -> str:
        orphans = len(self.orphan_files or [])
        return (
            f"{self.completed} interrupted image(s) completed, {self.removed_rows} unfinished row(s) removed, "
            f"{self.removed_temp_files} temporary file(s) deleted, {orphans} file(s) without a row"
        )


# ----------------------------------------------------------------- the store

_F = TypeVar("_F", bound=Callable[..., Any])

#: Errors of the database layer: SQLAlchemy's (which wrap the driver's) and, from older callers, sqlite3's.
DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error)


def _db_reason(err: BaseException) -> str:
    """The database's own message (the driver's, without SQLAlchemy's statement dump), with the OS's words for a full
    disk (SQLite says 'database or disk is full')."""
    orig = getattr(err, "orig", None) or err
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else type(orig).__name__
    if getattr(orig, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in text:
        return f"{text} (No space left on device; free space on the disk)"
    if "lock timeout" in text:  # PostgreSQL: the write lock was not free within the busy timeout
        return f"{text} (the database is locked by another process)"
    return text


def _as_storage_error(method: _F) -> _F:
    """Database errors of a store method become a StorageError that says what to do (locked, damaged, ...)."""

    @functools.wraps(method)
    def wrapper(self: "Store", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except DB_ERRORS as err:
            raise StorageError(self.open_problem(err)) from err

    return wrapper  # type: ignore[return-value]

#: Free space kept in reserve on the export and database file systems. A save is refused before anything
#: is written when less than the image plus this is free: on a completely full disk SQLite cannot even
#: undo the pending row of a failed write, nor close the order.
MIN_FREE_BYTES = 512 * 1024

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def store_for(settings: Settings) -> "Store":
    """The store of these settings: EXPORT_DIR, the database (DATABASE_URL), STATION_NAME, and where the station syncs
    into a central archive the outbox and the reader of images whose local copy was removed."""
    path = settings.database_path  # SQLite: the file (a URL would have to escape its path)
    store = Store(settings.EXPORT_DIR, path, url=None if path is not None else settings.database_url,
                  station=settings.STATION_NAME, outbox=settings.archive_enabled)
    store.event_destinations = settings.event_destinations
    if settings.archive_enabled:
        from utils.archive.local import archive_reader

        store.remote = archive_reader(store, settings)
    return store


def _image_select() -> Any:
    """Images with their order's folder and trash time (what :meth:`Store._image` needs for the path)."""
    i, o = db.images, db.orders
    return (select(i, o.c.folder.label("folder"), o.c.trashed_at.label("order_trashed_at"))
            .join_from(i, o, o.c.id == i.c.order_id))


def _archive_has_it() -> Any:
    """With the archive set: the archive has the image and its latest change (its trashing) too."""
    x = db.outbox.alias("x")
    waiting = exists().where(x.c.entity == "image", x.c.entity_id == db.images.c.id, x.c.done_at.is_(None))
    return db.images.c.synced_at.is_not(None) & ~waiting


def _order_event(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The data of an order.started / order.closed event from the order's row."""
    data = {"order_id": row["id"], "order_number": row["order_number"], "folder": row["folder"], "mode": row["mode"],
            "camera": row.get("camera")}
    return {**data, **extra}


def _image_event(order_id: int, order_number: str, row: dict[str, Any]) -> dict[str, Any]:
    """The data of an image.kept event from the image's row (or the values of its row)."""
    keys = ("seq", "file_name", "distance", "captured_at", "width", "height")
    return {"order_id": order_id, "order_number": order_number, "image_id": row["id"],
            **{k: row.get(k) for k in keys}, "forced": bool(row.get("forced"))}


class Store:
    """Metadata (SQLite, or PostgreSQL by URL) + image files of all orders. Thread-safe (pooled connections)."""

    def __init__(self, export_dir: Path, db_path: Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S,
                 *, station: str | None = None, outbox: bool = False, url: str | None = None) -> None:
        """``db_path``: the SQLite file (default :func:`default_database_path`); ``url``: the database as a SQLAlchemy
        URL instead (``sqlite:///path`` or ``postgresql+psycopg://user:password@host/db``); ``station``:
        STATION_NAME, written on every new order and image (and on older rows without one); ``outbox``: record
        every change for the sync into the central archive (:mod:`utils.archive.sync`)."""
        self.export_dir = Path(export_dir)
        self.station = station
        self.outbox = outbox
        self.listeners: list[Callable[[], None]] = []  # called after a commit that queued a change for the sync
        # where the events of the capture go (utils/events; set by store_for): none, no event is recorded
        self.event_destinations: tuple[str, ...] = ()
        self.event_listeners: list[Callable[[], None]] = []  # called after a commit that queued an event
        # reads an image whose local copy was removed from the central archive (set by store_for)
        self.remote: Callable[[ImageRecord], Iterator[bytes]] | None = None
        if url is not None and not is_sqlite_url(url):
            self.db_path: Path | None = None
            self.url: str | URL = url
            self.where = safe_url(url)
        else:
            if url is not None:
                db_path = Path(make_url(url).database or "")
            self.db_path = Path(db_path) if db_path is not None else default_database_path(self.export_dir)
            self.url = URL.create("sqlite", database=str(self.db_path))
            self.where = str(self.db_path)
        self.busy_timeout_s = busy_timeout_s
        try:
            self.export_dir.mkdir(parents=True, exist_ok=True)
            if self.db_path is not None:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"Cannot create the export folder {self.export_dir}: {err}. Check EXPORT_DIR.") from err
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._stale_pending: set[int] = set()  # pending rows of failed writes still to delete
        self._probe_engine: Engine | None = None
        try:
            self.engine: Engine = make_engine(self.url, busy_timeout_s)
        except (SQLAlchemyError, ValueError, ImportError) as err:
            raise StorageError(f"Cannot use the database {self.where}: {err}. Check DATABASE_URL.") from None
        self.dialect = self.engine.dialect.name
        try:
            self._prepare_schema()
            if station is not None:
                with self._tx() as con:  # rows from before the station had a name (or before schema 3)
                    for table in (db.orders, db.images):
                        con.execute(update(table).where(table.c.station.is_(None)).values(station=station))
        except DB_ERRORS as err:
            self.close()
            raise StorageError(self.open_problem(err)) from err

    @property
    def database_key(self) -> str:
        """Names this database among the per-database threads of a process (jobs, sync, statistics)."""
        return str(self.db_path.resolve()) if self.db_path is not None else self.where

    # -- schema
    def _prepare_schema(self) -> None:
        """Create the schema of a new database, or bring an older one to the newest Alembic revision.

        Nothing to do (the usual case) is seen without writing. Otherwise it happens under the write lock, in one
        transaction: several processes may open the database at once and take turns (SQLite: ``BEGIN IMMEDIATE``;
        PostgreSQL: the advisory lock), the later ones find it done.
        """
        head = migrate.head_revision(migrate.STATION_MIGRATIONS)
        with self.engine.connect() as con:
            if migrate.current_revision(con) == head:
                return
        with self._tx() as con:
            current = migrate.current_revision(con.con)
            if current == head:
                return
            if current is None and self._made_before_alembic(con):
                self._legacy_upgrade(con)
                migrate.stamp(con.con, migrate.STATION_MIGRATIONS, migrate.STATION_BASE_REVISION)
                logger.info("Database %s: schema version %d is Alembic revision %s", self.where, SCHEMA_VERSION,
                            migrate.STATION_BASE_REVISION)
            migrate.upgrade(con.con, migrate.STATION_MIGRATIONS)
            logger.info("Database %s is at schema revision %s", self.where, head)

    def _made_before_alembic(self, con: Tx) -> bool:
        """Whether this is a database of the versions before Alembic (SQLite, ``PRAGMA user_version`` 1 to 3, or
        their tables without a version)."""
        if self.dialect != "sqlite":
            return False
        return con.execute("PRAGMA user_version").scalar_one() > 0 or inspect(con.con).has_table("orders")

    def _legacy_upgrade(self, con: Tx) -> None:
        """The raw steps of the versions before Alembic, kept for their databases: the tables of :data:`_SCHEMA`
        where they are missing, then the upgrades of :data:`_MIGRATIONS` that ``PRAGMA user_version`` says have not
        run, up to :data:`SCHEMA_VERSION` (the Alembic revision ``0001``)."""
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        current = con.execute("PRAGMA user_version").scalar_one()
        for version in sorted(_MIGRATIONS):
            if current >= version:
                continue
            for statement in _MIGRATIONS[version]:
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {version}")
            logger.info("Database %s upgraded to schema version %d", self.where, version)

    # -- problems, in words
    def open_problem(self, err: BaseException) -> str:
        """What went wrong opening the database, in words an engineer can act on."""
        text = _db_reason(err)
        lowered = text.lower()
        if self.db_path is None:
            return self._server_problem(text)
        blocking = [self.db_path.with_name(self.db_path.name + side) for side in _SQLITE_SIDE_FILES[1:]]
        blocking = [b for b in blocking if b.exists() and not b.is_file()]
        if blocking:
            return (f"Cannot use the database {self.db_path}: {blocking[0]} is a folder, where SQLite keeps its "
                    f"journal ({text}). Move that folder away; no order may be named like it.")
        if "not a database" in lowered or "malformed" in lowered:
            return (f"The database {self.db_path} is damaged or not a database ({text}). Restore it from the backup, "
                    "or move it away to start with an empty one (the image folders stay).")
        if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
            return (f"Cannot open the database {self.db_path} for writing ({text}). Check that the folder "
                    f"{self.db_path.parent} exists, is writable by this user and is not on a read-only file system.")
        if "locked" in lowered:
            return (f"The database {self.db_path} is locked by another process ({text}); "
                    "is a second dashboard or a backup holding it?")
        return f"Cannot use the database {self.db_path}: {text}."

    def _server_problem(self, text: str) -> str:
        """:meth:`open_problem` for a database server (PostgreSQL)."""
        lowered = text.lower()
        if "lock timeout" in lowered or "locked" in lowered:
            return (f"The database {self.where} is locked by another process ({text}); "
                    "is a second dashboard or a long transaction holding it?")
        if "authentication failed" in lowered or "password" in lowered or "role " in lowered:
            return f"The database {self.where} refused the login ({text}); check the user and password in DATABASE_URL."
        if "database" in lowered and "does not exist" in lowered:
            return f"The database {self.where} does not exist ({text}); create it (createdb) or fix DATABASE_URL."
        if any(s in lowered for s in ("connection refused", "could not connect", "timeout", "server closed",
                                      "terminating", "shutting down", "the database system is", "name or service")):
            return f"Cannot reach the database {self.where} ({text}); is the server running and reachable?"
        if "read-only" in lowered:
            return f"The database {self.where} takes no writes ({text}); point DATABASE_URL at the primary server."
        return f"Cannot use the database {self.where}: {text}."

    def health_problem(self) -> str | None:
        """Why the database cannot take a write right now (None: it can): a fresh connection takes and releases the
        write lock, as the next image save would."""
        if self._probe_engine is None:
            self._probe_engine = make_engine(self.url, 2.0, pool=False)
        try:
            con = begin_write(self._probe_engine, 2.0)
            try:
                con.rollback()
            finally:
                con.close()
        except DB_ERRORS as err:
            return self.open_problem(err)
        return None

    def close(self) -> None:
        """Close the open connections (the store opens new ones when it is used again)."""
        for engine in (getattr(self, "engine", None), self._probe_engine):
            if engine is not None:
                engine.dispose()

    def reserved_names(self) -> set[str]:
        """Names (casefolded) an order folder must not take: what the store keeps in EXPORT_DIR itself."""
        names = {PRIVATE_FOLDER, TRASH_FOLDER}
        if self.db_path is not None and self.db_path.parent.resolve() == self.export_dir.resolve():
            names |= {self.db_path.name + side for side in _SQLITE_SIDE_FILES}
        return {n.casefold() for n in names}

    # -- connections
    class _Tx:
        """One write transaction: the process's write lock, then the database's (``BEGIN IMMEDIATE`` / the advisory
        lock); committed on success (then the listeners hear of queued changes), rolled back on an error."""

        def __init__(self, store: "Store") -> None:
            self.store = store

        def __enter__(self) -> Tx:
            self.store._write_lock.acquire()
            try:  # opening the connection or taking the database's lock can fail (locked, I/O error): release ours
                self.tx = Tx(begin_write(self.store.engine, self.store.busy_timeout_s))
            except BaseException:
                self.store._write_lock.release()
                raise
            self.store._local.tx = self.tx
            return self.tx

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            notify, self.store._local.notify = getattr(self.store._local, "notify", False), False
            events, self.store._local.events_queued = getattr(self.store._local, "events_queued", False), False
            self.store._local.tx = None
            con = self.tx.con
            try:
                if exc_type is None:
                    con.commit()
                    if notify:
                        for listener in list(self.store.listeners):
                            listener()
                    if events:
                        for listener in list(self.store.event_listeners):
                            listener()
                else:
                    try:
                        con.rollback()
                    except DB_ERRORS:
                        pass  # the error that ended the transaction is the one to report
            finally:
                try:
                    con.close()  # after a failed COMMIT (disk full) this rolls back
                except DB_ERRORS:
                    pass
                self.store._write_lock.release()

    def _tx(self) -> "Store._Tx":
        return Store._Tx(self)

    def _query(self, statement: Any, args: Sequence[Any] | dict[str, Any] = ()) -> list[DbRow]:
        """The rows of a statement (SQLAlchemy, or SQL text with ``?`` placeholders); inside this thread's write
        transaction it runs there (and sees its changes)."""
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            return tx.rows(statement, args)
        with self.engine.connect() as con:
            return Tx(con).rows(statement, args)

    def _scalar(self, statement: Any) -> Any:
        rows = self._query(statement)
        return rows[0][0] if rows else None

    # -- orders
    def _order(self, row: DbRow) -> OrderRecord:
        keys = row.keys()
        return OrderRecord(
            id=row["id"],
            order_number=row["order_number"],
            folder=self._order_folder(row["folder"], row["trashed_at"]),
            mode=row["mode"],
            status=row["status"],
            started_at=_dt(row["started_at"]),  # type: ignore[arg-type]
            closed_at=_dt(row["closed_at"]),
            threshold=row["threshold"],
            images_per_second=row["images_per_second"],
            resolution=row["resolution"],
            camera=row["camera"],
            descriptor=row["descriptor"],
            video_file=row["video_file"],
            video_frames=row["video_frames"],
            video_fps=row["video_fps"],
            n_images=row["n_images"] if "n_images" in keys else 0,
            kind=row["kind"],
            keep=bool(row["keep"]),
            trashed_at=_dt(row["trashed_at"]),
            station=row["station"],
            synced_at=_dt(row["synced_at"]),
        )

    @property
    def trash_dir(self) -> Path:
        """Where retention moves whole orders before they are removed for good."""
        return self.export_dir / PRIVATE_FOLDER / TRASH_FOLDER

    def _order_folder(self, folder: str, trashed_at: str | None) -> Path:
        return (self.trash_dir if trashed_at else self.export_dir) / folder

    @staticmethod
    def _order_select() -> Any:
        """Orders with their number of kept images (versions not counted)."""
        i, o = db.images, db.orders
        n = (select(func.count()).where(i.c.order_id == o.c.id, i.c.state == "ok", i.c.kind != "version")
             .scalar_subquery())
        return select(o, n.label("n_images"))

    @_as_storage_error
    def open_order(
        self,
        order_number: str,
        mode: Mode = "distinct images",
        *,
        threshold: float | None = None,
        images_per_second: float | None = None,
        resolution: int | None = None,
        camera: str | None = None,
        descriptor: str | None = None,
        max_length: int = 64,
        kind: Literal["capture", "import"] = "capture",
    ) -> tuple[OrderRecord, bool]:
        """Start (or resume) an order; returns (order, resumed).

        Resumes the open order with this number and mode if there is one; otherwise makes a
        new folder ``NUMBER`` or ``NUMBER_1``, ``NUMBER_2``... Raises OrderNumberError.

        ``kind="import"``: a collection of images imported from web pages; it is never running (status closed)
        and the collection of that name (not in the trash) takes every later import.
        """
        number = validate_order_number(order_number, max_length)
        o = db.orders
        with self._tx() as con:
            if kind == "import":
                same = select(o).where(o.c.order_number == number, o.c.kind == "import", o.c.trashed_at.is_(None))
            else:
                same = select(o).where(o.c.order_number == number, o.c.status == "open", o.c.mode == mode,
                                       o.c.kind == "capture")
            row = con.one(same.order_by(o.c.id.desc()).limit(1))
            if row is not None:
                changed = {k: v for k, v in (("threshold", threshold), ("images_per_second", images_per_second))
                           if v is not None}
                if changed:
                    con.execute(update(o).where(o.c.id == row["id"]).values(**changed))
                order_id, resumed = row["id"], True
                self._enqueue(con, "order", [order_id])
                if kind == "capture":
                    self._event(con, "order.started", _order_event(dict(row), resumed=True, **{
                        "threshold": row["threshold"], "images_per_second": row["images_per_second"], **changed}))
                (self.export_dir / row["folder"]).mkdir(parents=True, exist_ok=True)
            else:
                if number.casefold() in self.reserved_names():
                    raise OrderNumberError(
                        f"'{number}' is the name of a file the dashboard keeps in the export folder; add a prefix or "
                        "suffix to the order number."
                    )
                taken = {r[0].casefold() for r in con.rows(select(o.c.folder))}
                folder, i = number, 0
                while folder.casefold() in taken or (self.export_dir / folder).exists():
                    i += 1
                    folder = f"{number}_{i}"
                try:
                    (self.export_dir / folder).mkdir(parents=True)
                except OSError as err:
                    raise StorageError(f"Cannot create the order folder {self.export_dir / folder}: {err}") from err
                fsync_dir(self.export_dir)
                now = _ts(utc_now())
                order_id = con.execute(insert(o).values(
                    order_number=number, folder=folder, mode=mode, status="closed" if kind == "import" else "open",
                    started_at=now, closed_at=now if kind == "import" else None, threshold=threshold,
                    images_per_second=images_per_second, resolution=resolution, camera=camera, descriptor=descriptor,
                    kind=kind, station=self.station,
                ).returning(o.c.id)).scalar_one()
                resumed = False
                self._enqueue(con, "order", [order_id])
                if kind == "capture":
                    self._event(con, "order.started", _order_event(
                        {"id": order_id, "order_number": number, "folder": folder, "mode": mode, "camera": camera},
                        resumed=False, threshold=threshold, images_per_second=images_per_second))
        order = self.get_order(order_id)
        logger.info("%s order %s in %s", "Resumed" if resumed else "Opened", number, order.folder)
        return order, resumed

    def get_order(self, order_id: int) -> OrderRecord:
        rows = self._query(self._order_select().where(db.orders.c.id == order_id))
        if not rows:
            raise KeyError(f"no order with id {order_id}")
        return self._order(rows[0])

    def list_orders(self, status: str | None = None, include_trashed: bool = False,
                    kind: str | None = None) -> list[OrderRecord]:
        """Orders (and import collections), newest first; without those retention moved to the trash."""
        o = db.orders
        stmt = self._order_select()
        if status is not None:
            stmt = stmt.where(o.c.status == status)
        if not include_trashed:
            stmt = stmt.where(o.c.trashed_at.is_(None))
        if kind is not None:
            stmt = stmt.where(o.c.kind == kind)
        return [self._order(r) for r in self._query(stmt.order_by(o.c.started_at.desc(), o.c.id.desc()))]

    @_as_storage_error
    def close_order(
        self, order_id: int, video_file: str | None = None, video_frames: int | None = None,
        video_fps: float | None = None, counts: dict[str, int] | None = None,
    ) -> OrderRecord:
        """Close the order; ``counts`` (frames seen, camera errors ... of the run) go into its order.closed event."""
        o = db.orders
        video = {k: v for k, v in (("video_file", video_file), ("video_frames", video_frames),
                                   ("video_fps", video_fps)) if v is not None}
        with self._tx() as con:
            con.execute(update(o).where(o.c.id == order_id).values(status="closed", closed_at=_ts(utc_now()), **video))
            self._enqueue(con, "order", [order_id])
            if self.event_destinations:
                row = con.one(self._order_select().where(o.c.id == order_id))
                if row is not None and row["kind"] == "capture":
                    self._event(con, "order.closed", _order_event(
                        dict(row), images=row["n_images"], video_file=row["video_file"],
                        video_frames=row["video_frames"], **(counts or {})))
        return self.get_order(order_id)

    @_as_storage_error
    def update_order(self, order_id: int, **values: Any) -> None:
        """Set columns of an order (threshold, images_per_second, ...)."""
        allowed = {"threshold", "images_per_second", "resolution", "camera", "descriptor", "video_file"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if not values:
            return
        with self._tx() as con:
            con.execute(update(db.orders).where(db.orders.c.id == order_id).values(**values))
            self._enqueue(con, "order", [order_id])

    # -- images
    def _image(self, row: DbRow, folder: Path) -> ImageRecord:
        sub = folder / TRASH_FOLDER if row["state"] == "trashed" else folder
        operation = row["operation"]
        return ImageRecord(
            id=row["id"],
            order_id=row["order_id"],
            seq=row["seq"],
            file_name=row["file_name"],
            state=row["state"],
            captured_at=_dt(row["captured_at"]),  # type: ignore[arg-type]
            width=row["width"],
            height=row["height"],
            size_bytes=row["size_bytes"],
            distance=row["distance"],
            forced=bool(row["forced"]),
            camera=row["camera"],
            path=sub / row["file_name"],
            kind=row["kind"],
            source_image_id=row["source_image_id"],
            operation=json.loads(operation) if operation else None,
            tool=row["tool"],
            source_url=row["source_url"],
            trashed_at=_dt(row["trashed_at"]),
            station=row["station"],
            synced_at=_dt(row["synced_at"]),
            local_removed_at=_dt(row["local_removed_at"]),
        )

    def _image_with_folder(self, row: DbRow) -> ImageRecord:
        """An image of :func:`_image_select` (its order's folder in the row)."""
        return self._image(row, self._order_folder(row["folder"], row["order_trashed_at"]))

    def save_image(
        self,
        order: OrderRecord,
        data: bytes,
        features: np.ndarray | None,
        captured_at: datetime,
        *,
        width: int | None = None,
        height: int | None = None,
        distance: float | None = None,
        forced: bool = False,
        camera: str | None = None,
        suffix: str = ".jpg",
        kind: ImageKind = "capture",
        source: ImageRecord | None = None,
        operation: dict[str, Any] | None = None,
        tool: str | None = None,
        source_url: str | None = None,
    ) -> ImageRecord:
        """Keep one image: row (pending) -> file (atomic) -> row (ok). Raises StorageError.

        ``kind="version"``: a result of an image tool made from ``source`` (kept in the source's order as
        ``NNNNN_vSSSSS_<tool>.png``, with the operation and the tool that ran); ``kind="import"``: an image taken
        from ``source_url``.
        """
        if kind == "version":
            if source is None or operation is None:
                raise ValueError("a version needs its source image and the operation that made it")
            if source.order_id != order.id:
                raise ValueError("a version is kept in the order of its source image")
        self._drop_stale_pending()
        self._check_space(order.folder, len(data))
        blob = None if features is None else np.asarray(features, dtype=np.float32).tobytes()
        stamp = captured_at.astimezone().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        d = None if distance is None or not np.isfinite(distance) else float(distance)
        op_json = None if operation is None else json.dumps(operation, sort_keys=True, default=str)
        i = db.images
        try:
            with self._tx() as con:
                seq = con.execute(select(func.coalesce(func.max(i.c.seq), 0) + 1)
                                  .where(i.c.order_id == order.id)).scalar_one()
                if kind == "version":
                    label = _name_part(str((operation or {}).get("name") or tool or "edit"))
                    name = f"{seq:05d}_v{source.seq:05d}_{label}{suffix}"  # type: ignore[union-attr]
                else:
                    name = f"{seq:05d}_{stamp}{suffix}"
                image_id = con.execute(insert(i).values(
                    order_id=order.id, seq=seq, file_name=name, state="pending", captured_at=_ts(captured_at),
                    width=width, height=height, size_bytes=len(data), distance=d, forced=int(forced), camera=camera,
                    features=blob, kind=kind, source_image_id=None if source is None else source.id,
                    operation=op_json, tool=tool, source_url=source_url, station=self.station,
                ).returning(i.c.id)).scalar_one()
        except DB_ERRORS as err:
            raise StorageError(f"Cannot record the image in the database {self.where}: {_db_reason(err)}") from err
        path = order.folder / name
        try:
            atomic_write_bytes(path, data)
        except BaseException as err:
            try:
                with self._tx() as con:
                    con.execute(delete(i).where(i.c.id == image_id))
            except DB_ERRORS:  # no file was left; the row goes at the next save or the next start
                logger.warning("Could not remove the pending row of %s yet; will retry", path.name)
                self._stale_pending.add(image_id)
            if isinstance(err, OSError):
                raise StorageError(f"Cannot write {path}: {err.strerror or err}. Check free space and "
                                   "permissions.") from err
            raise
        try:
            with self._tx() as con:
                con.execute(update(i).where(i.c.id == image_id).values(state="ok"))
                self._enqueue(con, "image", [image_id])
                if kind == "capture":
                    self._event(con, "image.kept", _image_event(order.id, order.order_number, {
                        "id": image_id, "seq": seq, "file_name": name, "distance": d, "forced": forced,
                        "captured_at": _ts(captured_at), "width": width, "height": height}))
        except DB_ERRORS as err:
            # not confirmed (locked by another process, disk full): take the file back so that files and rows
            # agree now; the caller keeps the scene on a later frame. (A crash right here is different: the file
            # is complete and recovery at the next start confirms it.)
            path.unlink(missing_ok=True)
            self._stale_pending.add(image_id)
            raise StorageError(f"Cannot record the image in the database {self.where}: {_db_reason(err)}") from err
        return self.get_image(image_id)

    def _check_space(self, folder: Path, size: int) -> None:
        """StorageError before anything is written when the export or database file system is read-only or full."""
        places = (folder,) if self.db_path is None else (folder, self.db_path.parent)
        for where in dict.fromkeys(places):
            try:
                st = os.statvfs(where)
            except (OSError, AttributeError):  # no statvfs (Windows) or folder gone: the write itself will say
                continue
            if st.f_flag & getattr(os, "ST_RDONLY", 1):
                raise StorageError(f"Cannot write to {where}: Read-only file system. Make it writable again.")
            blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserved blocks
            free = blocks * st.f_frsize
            if free < size + MIN_FREE_BYTES:
                raise StorageError(
                    f"No space left on device for {where}: {free / 1e6:.2f} MB free, an image needs "
                    f"{size / 1e6:.2f} MB plus {MIN_FREE_BYTES / 1e6:.1f} MB reserve. Free space on the disk "
                    "(or change EXPORT_DIR); capture resumes by itself."
                )

    def _drop_stale_pending(self) -> None:
        """Remove pending rows whose write failed while the database could not be changed (disk full)."""
        if not self._stale_pending:
            return
        ids = list(self._stale_pending)
        i = db.images
        try:
            with self._tx() as con:
                con.execute(delete(i).where(in_ids(i.c.id, ids, self.dialect), i.c.state == "pending"))
        except DB_ERRORS:
            return
        self._stale_pending.difference_update(ids)

    def get_image(self, image_id: int) -> ImageRecord:
        rows = self._query(_image_select().where(db.images.c.id == image_id))
        if not rows:
            raise KeyError(f"no image with id {image_id}")
        return self._image_with_folder(rows[0])

    def images(self, order_id: int, include_trashed: bool = False, offset: int = 0,
               limit: int | None = None, kinds: tuple[str, ...] | None = None,
               ids: Collection[int] | None = None) -> list[ImageRecord]:
        """Kept images of an order in capture order (``limit`` of them from position ``offset``: one page);
        ``kinds``: only these (default: every kind, versions included); ``ids``: only these images."""
        states = ("ok", "trashed") if include_trashed else ("ok",)
        order = self.get_order(order_id)
        i = db.images
        stmt = select(i).where(i.c.order_id == order_id, i.c.state.in_(states))
        if kinds is not None:
            stmt = stmt.where(i.c.kind.in_(kinds))
        if ids is not None:
            if not ids:
                return []
            stmt = stmt.where(in_ids(i.c.id, ids, self.dialect))
        stmt = stmt.order_by(i.c.seq).offset(int(offset))
        if limit is not None:
            stmt = stmt.limit(int(limit))
        return [self._image(r, order.folder) for r in self._query(stmt)]

    def versions_of(self, image_ids: list[int]) -> dict[int, list[ImageRecord]]:
        """The kept versions made from each of these images (source id -> versions, oldest first)."""
        if not image_ids:
            return {}
        i = db.images
        out: dict[int, list[ImageRecord]] = {}
        rows = self._query(_image_select().where(in_ids(i.c.source_image_id, image_ids, self.dialect),
                                                 i.c.state == "ok").order_by(i.c.seq))
        for r in rows:
            out.setdefault(r["source_image_id"], []).append(self._image_with_folder(r))
        return out

    def count_images(self, order_id: int) -> int:
        """How many kept images the order has (its versions not counted)."""
        i = db.images
        return int(self._scalar(select(func.count()).where(i.c.order_id == order_id, i.c.state == "ok",
                                                           i.c.kind != "version")))

    def image_position(self, order_id: int, seq: int) -> int | None:
        """Position (0-based, in capture order) of the kept image number ``seq``; None if there is none."""
        i = db.images
        kept = (i.c.order_id == order_id) & (i.c.state == "ok") & (i.c.kind != "version")
        pos = select(func.count()).where(kept, i.c.seq < seq).scalar_subquery()
        found = exists().where(kept, i.c.seq == seq)
        rows = self._query(select(pos.label("pos"), found.label("found")))
        return int(rows[0]["pos"]) if rows and rows[0]["found"] else None

    def features(self, order_id: int, dim: int | None = None) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(image ids, features (n, d), forced flags) of the kept images of an order, in capture order.

        With ``dim``, only images whose stored features have that length (others were kept by another version or
        descriptor: see :meth:`feature_records`).
        """
        ids, rows, forced = [], [], []
        for image_id, blob, is_forced, _ in self.feature_records(order_id):
            if blob is None or (dim is not None and len(blob) != 4 * dim):
                continue
            ids.append(image_id)
            rows.append(np.frombuffer(blob, dtype=np.float32))
            forced.append(is_forced)
        if not rows or len({r.shape[0] for r in rows}) != 1:
            return [], np.zeros((0, dim or 0), dtype=np.float32), np.zeros(0, dtype=bool)
        return ids, np.stack(rows), np.array(forced, dtype=bool)

    def feature_records(self, order_id: int) -> list[tuple[int, bytes | None, bool, Path]]:
        """(image id, stored features or None, saved by hand, file) of the kept images, in capture order."""
        order = self.get_order(order_id)
        i = db.images
        rows = self._query(select(i.c.id, i.c.features, i.c.forced, i.c.file_name)
                           .where(i.c.order_id == order_id, i.c.state == "ok", i.c.kind == "capture")
                           .order_by(i.c.seq))
        return [(r["id"], None if r["features"] is None else bytes(r["features"]), bool(r["forced"]),
                 order.folder / r["file_name"]) for r in rows]

    @_as_storage_error
    def set_features(self, values: dict[int, np.ndarray]) -> None:
        """Store recomputed features of images (image id -> vector)."""
        if not values:
            return
        i = db.images
        stmt = update(i).where(i.c.id == bindparam("image_id")).values(features=bindparam("blob"))
        with self._tx() as con:
            con.execute(stmt, [{"image_id": int(k), "blob": np.asarray(v, dtype=np.float32).tobytes()}
                               for k, v in values.items()])

    @_as_storage_error
    def trash_images(self, order_id: int, image_ids: list[int]) -> int:
        """Move images (with the versions made from them) to the order's trash folder (not destroyed); returns how
        many of ``image_ids`` moved. The trash is emptied for good by the clean-up job after TRASH_DAYS."""
        order = self.get_order(order_id)
        trash = order.folder / TRASH_FOLDER
        trash.mkdir(exist_ok=True)
        moved = 0
        now = _ts(utc_now())
        i = db.images
        for image_id in image_ids:
            img = self.get_image(image_id)
            if img.order_id != order_id or img.state != "ok":
                continue
            for rec in [img, *self.versions_of([img.id]).get(img.id, [])]:
                if rec.path.exists():
                    rec.path.replace(trash / rec.file_name)
                with self._tx() as con:
                    con.execute(update(i).where(i.c.id == rec.id).values(state="trashed", trashed_at=now))
                    self._enqueue(con, "image", [rec.id])
            moved += 1
        fsync_dir(order.folder)
        return moved

    @_as_storage_error
    def restore_images(self, order_id: int, image_ids: list[int]) -> int:
        """Bring trashed images back into the order, with the versions that went to the trash with them."""
        order = self.get_order(order_id)
        restored = 0
        i = db.images
        src = db.images.alias("src")
        for image_id in image_ids:
            img = self.get_image(image_id)
            if img.order_id != order_id or img.state != "trashed":
                continue
            same_time = select(src.c.trashed_at).where(src.c.id == img.id).scalar_subquery()
            with_it = [self._image(r, order.folder) for r in self._query(
                select(i).where(i.c.source_image_id == img.id, i.c.state == "trashed", i.c.trashed_at == same_time))]
            for rec in [img, *with_it]:
                if rec.path.exists():
                    rec.path.replace(order.folder / rec.file_name)
                with self._tx() as con:
                    con.execute(update(i).where(i.c.id == rec.id).values(state="ok", trashed_at=None))
                    self._enqueue(con, "image", [rec.id])
            restored += 1
        return restored

    def _delete_image_rows(self, con: Tx, ids: list[int]) -> None:
        i = db.images
        con.execute(delete(db.labels).where(in_ids(db.labels.c.image_id, ids, self.dialect)))
        con.execute(delete(db.image_stats).where(in_ids(db.image_stats.c.image_id, ids, self.dialect)))
        con.execute(update(i).where(in_ids(i.c.source_image_id, ids, self.dialect)).values(source_image_id=None))
        con.execute(delete(i).where(in_ids(i.c.id, ids, self.dialect)))

    @_as_storage_error
    def purge_trash(self, older_than: datetime) -> tuple[int, int]:
        """Remove for good what went to the trash before ``older_than``: trashed images (file and rows) and orders
        retention moved to the trash (folder and rows). Returns (images, orders) removed."""
        i, o = db.images, db.orders
        removed_images = 0
        cutoff = _ts(older_than)
        stmt = _image_select().where(i.c.state == "trashed", o.c.trashed_at.is_(None),
                                     func.coalesce(i.c.trashed_at, "") < cutoff)
        if self.outbox:
            stmt = stmt.where(_archive_has_it())
        for row in self._query(stmt):  # one by one: a crash leaves at most one row whose file is already gone
            rec = self._image(row, self._order_folder(row["folder"], None))
            rec.path.unlink(missing_ok=True)
            with self._tx() as con:
                self._delete_image_rows(con, [rec.id])
            removed_images += 1
        removed_orders = 0
        for order in [o for o in self.list_orders(include_trashed=True) if o.trashed_at and _ts(o.trashed_at) < cutoff]:
            if self.outbox and (order.synced_at is None or self._query(
                    select(i.c.id).where(i.c.order_id == order.id, i.c.state != "pending", i.c.synced_at.is_(None))
                    .limit(1))):
                continue  # not all in the central archive yet: removed once it is
            if order.folder.exists():
                shutil.rmtree(order.folder)
            with self._tx() as con:
                ids = [r[0] for r in con.rows(select(i.c.id).where(i.c.order_id == order.id))]
                if ids:
                    self._delete_image_rows(con, ids)
                con.execute(delete(db.orders).where(db.orders.c.id == order.id))
            logger.info("Removed order %s for good (in the trash since %s)", order.order_number, order.trashed_at)
            removed_orders += 1
        return removed_images, removed_orders

    @_as_storage_error
    def trash_order(self, order_id: int) -> OrderRecord:
        """Move a closed order's folder to the trash (``EXPORT_DIR/.capture/trash``); it is listed nowhere and is
        removed for good by the clean-up job after TRASH_DAYS, or brought back by :meth:`restore_order`."""
        order = self.get_order(order_id)
        if order.is_open or order.trashed_at is not None:
            raise StorageError(f"Order {order.order_number} is {'running' if order.is_open else 'in the trash'}.")
        if order.keep:
            raise StorageError(f"Order {order.order_number} is marked keep; unmark it first.")
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        target = self.trash_dir / order.folder.name
        if target.exists():
            raise StorageError(f"{target} exists already; move it away.")
        self._move_order_folder(order, target, trashed_at=_ts(utc_now()))
        logger.info("Moved order %s to the trash", order.order_number)
        return self.get_order(order_id)

    @_as_storage_error
    def restore_order(self, order_id: int) -> OrderRecord:
        """Bring an order back from the trash."""
        order = self.get_order(order_id)
        if order.trashed_at is None:
            return order
        target = self.export_dir / order.folder.name
        if target.exists():
            raise StorageError(f"{target} exists already; move it away first.")
        self._move_order_folder(order, target, trashed_at=None)
        return self.get_order(order_id)

    def _move_order_folder(self, order: OrderRecord, target: Path, trashed_at: str | None) -> None:
        """Rename the order's folder and record it; the folder goes back when the row cannot be written."""
        moved = order.folder.exists()
        if moved:
            order.folder.replace(target)  # same file system: one rename
        try:
            with self._tx() as con:
                con.execute(update(db.orders).where(db.orders.c.id == order.id).values(trashed_at=trashed_at))
                self._enqueue(con, "order", [order.id])
        except BaseException:
            if moved:
                target.replace(order.folder)
            raise
        fsync_dir(target.parent)
        fsync_dir(order.folder.parent)

    @_as_storage_error
    def set_order_keep(self, order_id: int, keep: bool) -> None:
        """Mark an order *keep* (retention never removes it) or unmark it."""
        with self._tx() as con:
            con.execute(update(db.orders).where(db.orders.c.id == order_id).values(keep=int(keep)))
            self._enqueue(con, "order", [order_id])

    # -- labels
    @_as_storage_error
    def set_labels(self, image_id: int, labels: list[tuple[str, float]], model: str) -> None:
        """Store an image's labels (best first), replacing those it had."""
        lb = db.labels
        with self._tx() as con:
            con.execute(delete(lb).where(lb.c.image_id == image_id))
            if labels:
                con.execute(insert(lb), [{"image_id": image_id, "rank": i, "name": n, "score": float(sc),
                                          "model": model} for i, (n, sc) in enumerate(labels)])

    def labels_of(self, image_ids: list[int]) -> dict[int, list[tuple[str, float, str]]]:
        """Stored labels per image: id -> [(name, score, model)], best first."""
        if not image_ids:
            return {}
        lb = db.labels
        out: dict[int, list[tuple[str, float, str]]] = {}
        for r in self._query(select(lb).where(in_ids(lb.c.image_id, image_ids, self.dialect))
                             .order_by(lb.c.image_id, lb.c.rank)):
            out.setdefault(r["image_id"], []).append((r["name"], r["score"], r["model"]))
        return out

    def unlabelled_images(self, limit: int = 100, after_id: int = 0) -> list[ImageRecord]:
        """Kept images (every kind) that have no labels yet, by id from ``after_id`` on."""
        i, o, lb = db.images, db.orders, db.labels
        rows = self._query(_image_select().where(
            i.c.id > int(after_id), i.c.state == "ok", o.c.trashed_at.is_(None),
            ~exists().where(lb.c.image_id == i.c.id)).order_by(i.c.id).limit(int(limit)))
        return [self._image_with_folder(r) for r in rows]

    def label_counts(self, order_ids: list[int] | None = None, top: int = 1) -> list[tuple[str, int]]:
        """How many kept images carry each label among their ``top`` best (most frequent first)."""
        i, lb = db.images, db.labels
        n = func.count().label("n")
        stmt = (select(lb.c.name, n).join_from(lb, i, i.c.id == lb.c.image_id)
                .where(i.c.state == "ok", lb.c.rank < int(top)).group_by(lb.c.name).order_by(n.desc(), lb.c.name))
        if order_ids is not None:
            if not order_ids:
                return []
            stmt = stmt.where(in_ids(i.c.order_id, order_ids, self.dialect))
        return [(r["name"], int(r["n"])) for r in self._query(stmt)]

    def search_labels(self, order_id: int, text: str, top: int = 5) -> set[int]:
        """Ids of the order's kept images with a label containing ``text`` (case-insensitive) among their best
        ``top``."""
        i, lb = db.images, db.labels
        pattern = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._query(select(lb.c.image_id).distinct().join_from(lb, i, i.c.id == lb.c.image_id).where(
            i.c.order_id == order_id, i.c.state == "ok", lb.c.rank < int(top), lb.c.name.ilike(pattern, escape="\\")))
        return {int(r[0]) for r in rows}

    # -- scheduled jobs and the lease that says which process runs them
    @_as_storage_error
    def acquire_lease(self, name: str, holder: str, ttl_s: float, now: float | None = None) -> bool:
        """Take or renew the lease ``name`` for ``holder`` for ``ttl_s`` seconds; False while another holder's
        lease has not expired. Atomic across processes (one write transaction)."""
        import time

        t = time.time() if now is None else now
        ls = db.leases
        with self._tx() as con:
            row = con.one(select(ls.c.holder, ls.c.expires_at).where(ls.c.name == name))
            if row is not None and row["holder"] != holder and row["expires_at"] > t:
                return False
            stmt = upsert(con, ls).values(name=name, holder=holder, expires_at=t + ttl_s)
            con.execute(stmt.on_conflict_do_update(index_elements=[ls.c.name], set_={
                "holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at}))
        return True

    @_as_storage_error
    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back (only if ``holder`` holds it)."""
        ls = db.leases
        with self._tx() as con:
            con.execute(delete(ls).where(ls.c.name == name, ls.c.holder == holder))

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        """(holder, expires at, epoch seconds) of the lease, or None."""
        ls = db.leases
        rows = self._query(select(ls.c.holder, ls.c.expires_at).where(ls.c.name == name))
        return (rows[0]["holder"], float(rows[0]["expires_at"])) if rows else None

    @_as_storage_error
    def record_job(self, name: str, **values: Any) -> None:
        """Create or update a job's status row (last_started, last_finished, duration_s, result, error, next_run,
        runs, failures)."""
        allowed = {"last_started", "last_finished", "duration_s", "result", "error", "next_run", "runs", "failures"}
        if set(values) - allowed:
            raise ValueError(f"unknown job columns {sorted(set(values) - allowed)}")
        vals = {k: (_ts(v) if isinstance(v, datetime) else v) for k, v in values.items()}
        jb = db.jobs
        with self._tx() as con:
            con.execute(upsert(con, jb).values(name=name).on_conflict_do_nothing(index_elements=[jb.c.name]))
            if vals:
                con.execute(update(jb).where(jb.c.name == name).values(**vals))

    def job_rows(self) -> dict[str, dict[str, Any]]:
        """Every job's status row, by name (times as datetimes)."""
        out = {}
        for r in self._query(select(db.jobs).order_by(db.jobs.c.name)):
            d = dict(r)
            for k in ("last_started", "last_finished", "next_run"):
                d[k] = _dt(d[k])
            out[d["name"]] = d
        return out

    # -- the camera adapter's parameters saved on the Camera settings page (utils/camera_params.py)
    def camera_params(self, name: str = "adapter") -> SavedCameraParams | None:
        """The camera parameters saved for ``name`` (None: none saved, CAMERA_PARAMS apply)."""
        cp = db.camera_parameters
        rows = self._query(select(cp).where(cp.c.name == name))
        if not rows:
            return None
        r = rows[0]
        return SavedCameraParams(json.loads(r["params"]), r["saved_by"], _dt(r["saved_at"]),  # type: ignore[arg-type]
                                 r["test_shot"])

    @_as_storage_error
    def save_camera_params(self, params: dict[str, Any], saved_by: str, test_shot: str | None,
                           name: str = "adapter") -> SavedCameraParams:
        """Save (replace) the camera parameters of ``name``: who saved them, now, and what their test shot showed
        (None: saved without one). Returns what was saved."""
        cp = db.camera_parameters
        saved = SavedCameraParams(dict(params), saved_by, utc_now(), test_shot)
        values = {"params": json.dumps(saved.params, sort_keys=True), "saved_by": saved_by,
                  "saved_at": _ts(saved.saved_at), "test_shot": test_shot}
        with self._tx() as con:
            stmt = upsert(con, cp).values(name=name, **values)
            con.execute(stmt.on_conflict_do_update(index_elements=[cp.c.name], set_=values))
        return saved

    @_as_storage_error
    def clear_camera_params(self, name: str = "adapter") -> bool:
        """Drop the saved camera parameters of ``name`` (CAMERA_PARAMS apply again); False if none were saved."""
        cp = db.camera_parameters
        with self._tx() as con:
            return bool(con.execute(delete(cp).where(cp.c.name == name)).rowcount)

    # -- image bytes, here or in the central archive
    def image_chunks(self, rec: ImageRecord, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The image's bytes piece by piece: from its file, or from the central archive once the station's copy
        was removed (``ARCHIVE_LOCAL_KEEP_DAYS``). FileNotFoundError when neither has it."""
        if rec.path.is_file():
            with open(rec.path, "rb") as f:
                while block := f.read(chunk):
                    yield block
        elif rec.local_removed_at is not None and self.remote is not None:
            yield from self.remote(rec)
        else:
            raise FileNotFoundError(f"{rec.path} is missing" + (" (its copy is only in the central archive, which "
                                                                "this process cannot reach: set its archive settings)"
                                                                if rec.local_removed_at is not None else ""))

    def read_image(self, rec: ImageRecord) -> bytes:
        """The image's bytes (see :meth:`image_chunks`)."""
        return b"".join(self.image_chunks(rec))

    def local_copies_due(self, confirmed_before: datetime, limit: int = 500) -> list[ImageRecord]:
        """Kept images of closed orders whose copy the archive confirmed before ``confirmed_before``, with no change
        waiting for it, still on this disk: the local copies that may go."""
        i, o = db.images, db.orders
        rows = self._query(_image_select().where(
            i.c.state == "ok", o.c.status == "closed", i.c.local_removed_at.is_(None), i.c.synced_at.is_not(None),
            i.c.synced_at < _ts(confirmed_before), _archive_has_it()).order_by(i.c.id).limit(limit))
        return [self._image_with_folder(r) for r in rows]

    @_as_storage_error
    def remove_local_copy(self, rec: ImageRecord) -> None:
        """Remove the station's copy of an image the archive has (recorded first: a crash in between leaves a
        row that says "in the archive" and a file still here, which is harmless)."""
        i = db.images
        with self._tx() as con:
            con.execute(update(i).where(i.c.id == rec.id).values(local_removed_at=_ts(utc_now())))
        rec.path.unlink(missing_ok=True)

    @_as_storage_error
    def restore_local_copy(self, rec: ImageRecord) -> ImageRecord:
        """Bring an archived image's file back from the central archive (for a tool that edits it); it is kept
        here another ARCHIVE_LOCAL_KEEP_DAYS, counted from now (the archive's copy was just read)."""
        if rec.path.is_file() or rec.local_removed_at is None:
            return rec
        self._check_space(rec.path.parent, rec.size_bytes or 0)
        try:
            atomic_write_bytes(rec.path, self.read_image(rec))
        except OSError as err:
            raise StorageError(f"Cannot write {rec.path}: {err.strerror or err}") from err
        i = db.images
        with self._tx() as con:
            con.execute(update(i).where(i.c.id == rec.id).values(local_removed_at=None, synced_at=_ts(utc_now())))
        return self.get_image(rec.id)

    # -- the events of the capture (utils/events)
    def _event(self, con: Tx, event_type: str, data: dict[str, Any]) -> None:
        """Record an event for every destination in the caller's transaction (nothing without a destination)."""
        if not self.event_destinations:
            return
        from utils.events.model import Event
        from utils.events.outbox import queue

        queue(con, Event.new(event_type, data, self.station or ""), self.event_destinations)
        self._local.events_queued = True  # the dispatcher hears of it once the transaction is committed

    @_as_storage_error
    def record_event(self, event_type: str, data: dict[str, Any]) -> None:
        """Record an event of its own (the camera's error and recovery), in a transaction of its own."""
        if self.event_destinations:
            with self._tx() as con:
                self._event(con, event_type, data)

    # -- the outbox of the sync into the central archive (utils/archive/sync.py)
    def _enqueue(self, con: Tx, entity: Literal["order", "image"], ids: list[int]) -> None:
        """Record, in the caller's transaction, that these rows changed and must reach the central archive."""
        if self.outbox and ids:
            self._local.notify = True  # the listeners (the sync) hear of it once the transaction is committed
            now = _ts(utc_now())
            con.execute(insert(db.outbox), [{"entity": entity, "entity_id": int(i), "created_at": now} for i in ids])

    def outbox_waiting(self, limit: int = 50) -> list[OutboxEntry]:
        """The oldest changes not yet in the central archive (failed ones left out), oldest first."""
        x = db.outbox
        rows = self._query(select(x).where(x.c.done_at.is_(None), x.c.failed_at.is_(None)).order_by(x.c.id)
                           .limit(limit))
        return [OutboxEntry(r["id"], r["entity"], r["entity_id"], _dt(r["created_at"]),  # type: ignore[arg-type]
                            r["attempts"]) for r in rows]

    @_as_storage_error
    def outbox_done(self, entry: OutboxEntry) -> None:
        """The central archive has the row (and its file): mark the change done and the row synced."""
        now = _ts(utc_now())
        x = db.outbox
        table = db.orders if entry.entity == "order" else db.images
        with self._tx() as con:
            con.execute(update(x).where(x.c.id == entry.id).values(done_at=now, last_error=None))
            con.execute(update(table).where(table.c.id == entry.entity_id).values(synced_at=now))

    @_as_storage_error
    def outbox_retry(self, entry: OutboxEntry, error: str, give_up: bool = False) -> None:
        """The change could not be sent: count the attempt and keep the reason (``give_up``: it never will be, e.g.
        its file is gone; it stays listed as failed)."""
        x = db.outbox
        with self._tx() as con:
            con.execute(update(x).where(x.c.id == entry.id).values(
                attempts=x.c.attempts + 1, last_error=error[:500], failed_at=_ts(utc_now()) if give_up else None))

    @_as_storage_error
    def outbox_retry_failed(self) -> int:
        """Send the changes marked failed again (their file was put back); returns how many."""
        x = db.outbox
        with self._tx() as con:
            return con.execute(update(x).where(x.c.done_at.is_(None), x.c.failed_at.is_not(None))
                               .values(failed_at=None)).rowcount

    @_as_storage_error
    def outbox_backfill(self) -> int:
        """Queue every order and kept image the central archive has not confirmed and nothing waits for (rows
        from before the sync was set up, or written by a process without it); returns how many."""
        if not self.outbox:
            return 0
        now = _ts(utc_now())
        x = db.outbox.alias("x")
        n = 0
        with self._tx() as con:
            for entity, table in (("order", db.orders), ("image", db.images)):
                waiting = exists().where(x.c.entity == entity, x.c.entity_id == table.c.id, x.c.done_at.is_(None))
                rows = select(literal(entity), table.c.id, literal(now)).where(table.c.synced_at.is_(None), ~waiting)
                if entity == "image":
                    rows = rows.where(table.c.state != "pending")
                queued = insert(db.outbox).from_select(["entity", "entity_id", "created_at"], rows.order_by(table.c.id))
                n += len(con.rows(queued.returning(db.outbox.c.id)))  # (an INSERT's rowcount is not reliable)
        return n

    def outbox_backlog(self) -> OutboxBacklog:
        """What waits for the central archive: images and orders, since when, failures and the last error."""
        x = db.outbox
        sending = x.c.failed_at.is_(None)
        rows = self._query(select(
            x.c.entity, func.sum(case((sending, 1), else_=0)).label("n"),
            func.min(case((sending, x.c.created_at))).label("oldest"),
            func.sum(case((sending, 0), else_=1)).label("failed"),
        ).where(x.c.done_at.is_(None)).group_by(x.c.entity))
        by = {r["entity"]: r for r in rows}
        last = self._query(select(x.c.last_error).where(x.c.done_at.is_(None), x.c.last_error.is_not(None))
                           .order_by(x.c.id.desc()).limit(1))
        oldest = [_dt(r["oldest"]) for r in rows if r["oldest"]]
        return OutboxBacklog(
            images=int(by["image"]["n"] or 0) if "image" in by else 0,
            orders=int(by["order"]["n"] or 0) if "order" in by else 0,
            failed=sum(int(r["failed"] or 0) for r in rows),
            oldest=min(oldest) if oldest else None,  # type: ignore[type-var]
            last_error=last[0]["last_error"] if last else None,
        )

    def outbox_lags(self, limit: int = 1000) -> list[float]:
        """Seconds from change to confirmation of the latest ``limit`` synced changes, newest first."""
        x = db.outbox
        rows = self._query(select(x.c.created_at, x.c.done_at).where(x.c.done_at.is_not(None))
                           .order_by(x.c.id.desc()).limit(limit))
        return [(_dt(r["done_at"]) - _dt(r["created_at"])).total_seconds() for r in rows]  # type: ignore[operator]

    @_as_storage_error
    def outbox_prune(self, older_than: datetime) -> int:
        """Forget changes done before ``older_than``."""
        x = db.outbox
        with self._tx() as con:
            return con.execute(delete(x).where(x.c.done_at.is_not(None), x.c.done_at < _ts(older_than))).rowcount

    def order_row(self, order_id: int) -> dict[str, Any] | None:
        """The order's database row as a dict (the sync sends it as it is), None if gone."""
        rows = self._query(select(db.orders).where(db.orders.c.id == order_id))
        return dict(rows[0]) if rows else None

    def image_row(self, image_id: int) -> dict[str, Any] | None:
        """The image's database row without its features, as a dict; None if gone."""
        rows = self._query(select(db.images).where(db.images.c.id == image_id))
        if not rows:
            return None
        row = dict(rows[0])
        row.pop("features", None)
        return row

    # -- crash recovery
    def recover(self) -> RecoveryReport:
        """Finish what a crash interrupted (see module docstring); safe to run at every start."""
        from utils.imaging import ImageDecodeError, decode_image

        i, o = db.images, db.orders
        report = RecoveryReport(orphan_files=[])
        rows = self._query(select(i, o.c.folder, o.c.order_number).join_from(i, o, o.c.id == i.c.order_id)
                           .where(i.c.state == "pending"))
        for row in rows:
            path = self.export_dir / row["folder"] / row["file_name"]
            ok = False
            if path.is_file():
                try:
                    decode_image(path.read_bytes(), max_side=64)
                    ok = True
                except ImageDecodeError:
                    path.unlink()
            with self._tx() as con:
                if ok:
                    con.execute(update(i).where(i.c.id == row["id"]).values(state="ok"))
                    self._enqueue(con, "image", [row["id"]])
                    if row["kind"] == "capture":  # kept before the crash: its event is recorded now
                        self._event(con, "image.kept", _image_event(row["order_id"], row["order_number"], dict(row)))
                    report.completed += 1
                else:
                    con.execute(delete(i).where(i.c.id == row["id"]))
                    report.removed_rows += 1
        known: dict[str, set[str]] = {}
        for row in self._query(select(o.c.folder, i.c.file_name).join_from(i, o, o.c.id == i.c.order_id)):
            known.setdefault(row["folder"], set()).add(row["file_name"])
        for order in self.list_orders():
            if not order.folder.is_dir():
                continue
            names = known.get(order.folder.name, set())
            for sub in (order.folder, order.folder / TRASH_FOLDER):
                for path in sub.iterdir() if sub.is_dir() else ():
                    if is_temp_file(path):
                        path.unlink(missing_ok=True)
                        report.removed_temp_files += 1
                    elif path.is_file() and path.suffix.lower() in _IMAGE_SUFFIXES and path.name not in names:
                        report.orphan_files.append(path)  # type: ignore[union-attr]
        if report.completed or report.removed_rows or report.removed_temp_files or report.orphan_files:
            logger.warning("Recovery after an unclean stop: %s", report)
        return report
