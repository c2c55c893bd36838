"""Orders and kept images: one folder per order under EXPORT_DIR, metadata in SQLite.

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
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from utils.files import atomic_write_bytes, fsync_dir, is_temp_file

if TYPE_CHECKING:
    from utils.config import Settings

logger = logging.getLogger(__name__)

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

# Upgrades of an existing database, applied in order at start (``PRAGMA user_version`` says which ran); nothing is
# lost: columns are added with defaults that describe what the older version stored.
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


# with the archive set: the archive has the image and its latest change (its trashing) too
_ARCHIVE_HAS_IT = (" AND i.synced_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.entity = 'image' "
                   "AND x.entity_id = i.id AND x.done_at IS NULL)")


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


def _sqlite_reason(err: sqlite3.Error) -> str:
    """SQLite's message, with the OS's words for a full disk (SQLite says 'database or disk is full')."""
    text = str(err)
    if getattr(err, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in text:
        return f"{text} (No space left on device; free space on the disk)"
    return text


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


def _as_storage_error(method: _F) -> _F:
    """SQLite errors of a store method become a StorageError that says what to do (locked, damaged, ...)."""

    @functools.wraps(method)
    def wrapper(self: "Store", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise StorageError(self.open_problem(err)) from err

    return wrapper  # type: ignore[return-value]

#: Free space kept in reserve on the export and database file systems. A save is refused before anything
#: is written when less than the image plus this is free: on a completely full disk SQLite cannot even
#: undo the pending row of a failed write, nor close the order.
MIN_FREE_BYTES = 512 * 1024

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def store_for(settings: Settings) -> "Store":
    """The store of these settings: EXPORT_DIR, the database, STATION_NAME, and where the station syncs into a
    central archive the outbox and the reader of images whose local copy was removed."""
    store = Store(settings.EXPORT_DIR, settings.database_path, station=settings.STATION_NAME,
                  outbox=settings.archive_enabled)
    if settings.archive_enabled:
        from utils.archive.local import archive_reader

        store.remote = archive_reader(store, settings)
    return store


class Store:
    """SQLite metadata + image files of all orders. Thread-safe (one connection per thread)."""

    def __init__(self, export_dir: Path, db_path: Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S,
                 *, station: str | None = None, outbox: bool = False) -> None:
        """``station``: STATION_NAME, written on every new order and image (and on older rows without one);
        ``outbox``: record every change for the sync into the central archive (:mod:`utils.archive.sync`)."""
        self.export_dir = Path(export_dir)
        self.station = station
        self.outbox = outbox
        self.listeners: list[Callable[[], None]] = []  # called after a commit that queued a change for the sync
        # reads an image whose local copy was removed from the central archive (set by store_for)
        self.remote: Callable[[ImageRecord], Iterator[bytes]] | None = None
        self.db_path = Path(db_path) if db_path is not None else default_database_path(self.export_dir)
        self.busy_timeout_s = busy_timeout_s
        try:
            self.export_dir.mkdir(parents=True, exist_ok=True)
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"Cannot create the export folder {self.export_dir}: {err}. Check EXPORT_DIR.") from err
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._stale_pending: set[int] = set()  # pending rows of failed writes still to delete
        try:
            with self._write_lock:
                con = self._con()
                con.executescript(_SCHEMA)  # runs in its own transaction
            self._migrate()
            if station is not None:
                with self._tx() as con:  # rows from before the station had a name (or before schema 3)
                    con.execute("UPDATE orders SET station = ? WHERE station IS NULL", (station,))
                    con.execute("UPDATE images SET station = ? WHERE station IS NULL", (station,))
        except sqlite3.Error as err:
            self.close()
            raise StorageError(self.open_problem(err)) from err

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` (one transaction per step; safe with several processes)."""
        for version in sorted(_MIGRATIONS):
            with self._tx() as con:
                current = con.execute("PRAGMA user_version").fetchone()[0]
                if current >= version:
                    continue
                for statement in _MIGRATIONS[version]:
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {version}")
            logger.info("Database %s upgraded to schema version %d", self.db_path, version)

    def open_problem(self, err: sqlite3.Error) -> str:
        """What went wrong opening the database, in words an engineer can act on."""
        text = _sqlite_reason(err)
        blocking = [self.db_path.with_name(self.db_path.name + side) for side in _SQLITE_SIDE_FILES[1:]]
        blocking = [b for b in blocking if b.exists() and not b.is_file()]
        if blocking:
            return (f"Cannot use the database {self.db_path}: {blocking[0]} is a folder, where SQLite keeps its "
                    f"journal ({text}). Move that folder away; no order may be named like it.")
        if "not a database" in text or "malformed" in text:
            return (f"The database {self.db_path} is damaged or not a database ({text}). Restore it from the backup, "
                    "or move it away to start with an empty one (the image folders stay).")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return (f"Cannot open the database {self.db_path} for writing ({text}). Check that the folder "
                    f"{self.db_path.parent} exists, is writable by this user and is not on a read-only file system.")
        if "locked" in text:
            return (f"The database {self.db_path} is locked by another process ({text}); "
                    "is a second dashboard or a backup holding it?")
        return f"Cannot use the database {self.db_path}: {text}."

    def health_problem(self) -> str | None:
        """Why the database cannot take a write right now (None: it can): a fresh connection takes and releases
        SQLite's write lock, as the next image save would."""
        try:
            con = sqlite3.connect(self.db_path, timeout=2, isolation_level=None)
        except sqlite3.Error as err:
            return self.open_problem(err)
        try:
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
        except sqlite3.Error as err:
            return self.open_problem(err)
        finally:
            con.close()
        return None

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            self._local.con = None
            con.close()

    def reserved_names(self) -> set[str]:
        """Names (casefolded) an order folder must not take: what the store keeps in EXPORT_DIR itself."""
        names = {PRIVATE_FOLDER, TRASH_FOLDER}
        if self.db_path.parent.resolve() == self.export_dir.resolve():
            names |= {self.db_path.name + side for side in _SQLITE_SIDE_FILES}
        return {n.casefold() for n in names}

    # -- connections
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None,
                                  check_same_thread=False)
            con.row_factory = sqlite3.Row
            try:
                con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = FULL")
                con.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error:
                con.close()
                raise
            self._local.con = con
        return con

    class _Tx:
        def __init__(self, store: "Store") -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._write_lock.acquire()
            try:  # opening the connection or taking SQLite's lock can fail (locked, I/O error): release ours
                self.con = self.store._con()
                self.con.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._write_lock.release()
                raise
            return self.con

        def __exit__(self, exc_type, exc, tb) -> None:
            notify, self.store._local.notify = getattr(self.store._local, "notify", False), False
            try:
                self.con.execute("COMMIT" if exc_type is None else "ROLLBACK")
                if notify and exc_type is None:
                    for listener in list(self.store.listeners):
                        listener()
            except sqlite3.Error:
                if self.con.in_transaction:  # a failed COMMIT (disk full) leaves the transaction open
                    try:
                        self.con.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
            finally:
                self.store._write_lock.release()

    def _tx(self) -> "Store._Tx":
        return Store._Tx(self)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._con().execute(sql, args).fetchall()

    # -- orders
    def _order(self, row: sqlite3.Row) -> OrderRecord:
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

    _ORDER_SELECT = (
        "SELECT o.*, (SELECT COUNT(*) FROM images i WHERE i.order_id = o.id AND i.state = 'ok' "
        "AND i.kind != 'version') AS n_images FROM orders o"
    )

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
        with self._tx() as con:
            if kind == "import":
                row = con.execute(
                    "SELECT * FROM orders WHERE order_number = ? AND kind = 'import' AND trashed_at IS NULL "
                    "ORDER BY id DESC LIMIT 1", (number,)).fetchone()
            else:
                row = con.execute(
                    "SELECT * FROM orders WHERE order_number = ? AND status = 'open' AND mode = ? AND kind = 'capture' "
                    "ORDER BY id DESC LIMIT 1", (number, mode),
                ).fetchone()
            if row is not None:
                con.execute(
                    "UPDATE orders SET threshold = COALESCE(?, threshold), images_per_second = COALESCE(?, "
                    "images_per_second) WHERE id = ?",
                    (threshold, images_per_second, row["id"]),
                )
                order_id, resumed = row["id"], True
                self._enqueue(con, "order", [order_id])
                (self.export_dir / row["folder"]).mkdir(parents=True, exist_ok=True)
            else:
                if number.casefold() in self.reserved_names():
                    raise OrderNumberError(
                        f"'{number}' is the name of a file the dashboard keeps in the export folder; add a prefix or "
                        "suffix to the order number."
                    )
                taken = {r[0].casefold() for r in con.execute("SELECT folder FROM orders")}
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
                cur = con.execute(
                    "INSERT INTO orders (order_number, folder, mode, status, started_at, closed_at, threshold, "
                    "images_per_second, resolution, camera, descriptor, kind, station) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (number, folder, mode, "closed" if kind == "import" else "open", now,
                     now if kind == "import" else None, threshold, images_per_second, resolution, camera, descriptor,
                     kind, self.station),
                )
                order_id, resumed = int(cur.lastrowid), False  # type: ignore[arg-type]
                self._enqueue(con, "order", [order_id])
        order = self.get_order(order_id)
        logger.info("%s order %s in %s", "Resumed" if resumed else "Opened", number, order.folder)
        return order, resumed

    def get_order(self, order_id: int) -> OrderRecord:
        rows = self._query(self._ORDER_SELECT + " WHERE o.id = ?", (order_id,))
        if not rows:
            raise KeyError(f"no order with id {order_id}")
        return self._order(rows[0])

    def list_orders(self, status: str | None = None, include_trashed: bool = False,
                    kind: str | None = None) -> list[OrderRecord]:
        """Orders (and import collections), newest first; without those retention moved to the trash."""
        where, args = [], []
        if status is not None:
            where.append("o.status = ?")
            args.append(status)
        if not include_trashed:
            where.append("o.trashed_at IS NULL")
        if kind is not None:
            where.append("o.kind = ?")
            args.append(kind)
        sql = self._ORDER_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        return [self._order(r) for r in self._query(sql + " ORDER BY o.started_at DESC, o.id DESC", tuple(args))]

    @_as_storage_error
    def close_order(
        self, order_id: int, video_file: str | None = None, video_frames: int | None = None, video_fps: float | None = None
    ) -> OrderRecord:
        with self._tx() as con:
            con.execute(
                "UPDATE orders SET status = 'closed', closed_at = ?, video_file = COALESCE(?, video_file), "
                "video_frames = COALESCE(?, video_frames), video_fps = COALESCE(?, video_fps) WHERE id = ?",
                (_ts(utc_now()), video_file, video_frames, video_fps, order_id),
            )
            self._enqueue(con, "order", [order_id])
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
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as con:
            con.execute(f"UPDATE orders SET {cols} WHERE id = ?", (*values.values(), order_id))
            self._enqueue(con, "order", [order_id])

    # -- images
    def _image(self, row: sqlite3.Row, folder: Path) -> ImageRecord:
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
        try:
            with self._tx() as con:
                seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM images WHERE order_id = ?", (order.id,)).fetchone()[0]
                if kind == "version":
                    label = _name_part(str((operation or {}).get("name") or tool or "edit"))
                    name = f"{seq:05d}_v{source.seq:05d}_{label}{suffix}"  # type: ignore[union-attr]
                else:
                    name = f"{seq:05d}_{stamp}{suffix}"
                cur = con.execute(
                    "INSERT INTO images (order_id, seq, file_name, state, captured_at, width, height, size_bytes, "
                    "distance, forced, camera, features, kind, source_image_id, operation, tool, source_url, station) "
                    "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (order.id, seq, name, _ts(captured_at), width, height, len(data), d, int(forced), camera, blob,
                     kind, None if source is None else source.id, op_json, tool, source_url, self.station),
                )
                image_id = int(cur.lastrowid)  # type: ignore[arg-type]
        except sqlite3.Error as err:
            raise StorageError(f"Cannot record the image in the database {self.db_path}: {_sqlite_reason(err)}") from err
        path = order.folder / name
        try:
            atomic_write_bytes(path, data)
        except BaseException as err:
            try:
                with self._tx() as con:
                    con.execute("DELETE FROM images WHERE id = ?", (image_id,))
            except sqlite3.Error:  # no file was left; the row goes at the next save or the next start
                logger.warning("Could not remove the pending row of %s yet; will retry", path.name)
                self._stale_pending.add(image_id)
            if isinstance(err, OSError):
                raise StorageError(f"Cannot write {path}: {err.strerror or err}. Check free space and permissions.") from err
            raise
        try:
            with self._tx() as con:
                con.execute("UPDATE images SET state = 'ok' WHERE id = ?", (image_id,))
                self._enqueue(con, "image", [image_id])
        except sqlite3.Error as err:
            # not confirmed (locked by another process, disk full): take the file back so that files and rows
            # agree now; the caller keeps the scene on a later frame. (A crash right here is different: the file
            # is complete and recovery at the next start confirms it.)
            path.unlink(missing_ok=True)
            self._stale_pending.add(image_id)
            raise StorageError(f"Cannot record the image in the database {self.db_path}: {_sqlite_reason(err)}") from err
        return self.get_image(image_id)

    def _check_space(self, folder: Path, size: int) -> None:
        """StorageError before anything is written when the export or database file system is read-only or full."""
        for where in dict.fromkeys((folder, self.db_path.parent)):
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
        try:
            with self._tx() as con:
                con.executemany("DELETE FROM images WHERE id = ? AND state = 'pending'", [(i,) for i in ids])
        except sqlite3.Error:
            return
        self._stale_pending.difference_update(ids)

    def get_image(self, image_id: int) -> ImageRecord:
        rows = self._query(
            "SELECT i.*, o.folder AS folder, o.trashed_at AS order_trashed_at FROM images i "
            "JOIN orders o ON o.id = i.order_id WHERE i.id = ?", (image_id,)
        )
        if not rows:
            raise KeyError(f"no image with id {image_id}")
        return self._image(rows[0], self._order_folder(rows[0]["folder"], rows[0]["order_trashed_at"]))

    def images(self, order_id: int, include_trashed: bool = False, offset: int = 0,
               limit: int | None = None, kinds: tuple[str, ...] | None = None,
               ids: Collection[int] | None = None) -> list[ImageRecord]:
        """Kept images of an order in capture order (``limit`` of them from position ``offset``: one page);
        ``kinds``: only these (default: every kind, versions included); ``ids``: only these images."""
        states = ("ok", "trashed") if include_trashed else ("ok",)
        order = self.get_order(order_id)
        extra_sql, extra_args = "", []
        if kinds is not None:
            extra_sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            extra_args += list(kinds)
        if ids is not None:
            id_list = sorted({int(i) for i in ids})
            if not id_list:
                return []
            extra_sql += " AND id IN (SELECT value FROM json_each(?))"
            extra_args.append(json.dumps(id_list))
        rows = self._query(
            f"SELECT * FROM images WHERE order_id = ? AND state IN ({','.join('?' * len(states))}){extra_sql} "
            "ORDER BY seq LIMIT ? OFFSET ?",
            (order_id, *states, *extra_args, -1 if limit is None else int(limit), int(offset)),
        )
        return [self._image(r, order.folder) for r in rows]

    def versions_of(self, image_ids: list[int]) -> dict[int, list[ImageRecord]]:
        """The kept versions made from each of these images (source id -> versions, oldest first)."""
        if not image_ids:
            return {}
        out: dict[int, list[ImageRecord]] = {}
        marks = ",".join("?" * len(image_ids))
        rows = self._query(
            f"SELECT i.*, o.folder AS folder, o.trashed_at AS order_trashed_at FROM images i "
            f"JOIN orders o ON o.id = i.order_id WHERE i.source_image_id IN ({marks}) AND i.state = 'ok' "
            "ORDER BY i.seq", tuple(image_ids))
        for r in rows:
            out.setdefault(r["source_image_id"], []).append(
                self._image(r, self._order_folder(r["folder"], r["order_trashed_at"])))
        return out

    def count_images(self, order_id: int) -> int:
        """How many kept images the order has (its versions not counted)."""
        return int(self._query("SELECT COUNT(*) FROM images WHERE order_id = ? AND state = 'ok' AND kind != 'version'",
                               (order_id,))[0][0])

    def image_position(self, order_id: int, seq: int) -> int | None:
        """Position (0-based, in capture order) of the kept image number ``seq``; None if there is none."""
        rows = self._query(
            "SELECT (SELECT COUNT(*) FROM images WHERE order_id = ? AND state = 'ok' AND kind != 'version' "
            "AND seq < ?) AS pos, EXISTS (SELECT 1 FROM images WHERE order_id = ? AND state = 'ok' "
            "AND kind != 'version' AND seq = ?) AS found",
            (order_id, seq, order_id, seq),
        )
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
        rows = self._query(
            "SELECT id, features, forced, file_name FROM images WHERE order_id = ? AND state = 'ok' "
            "AND kind = 'capture' ORDER BY seq",
            (order_id,),
        )
        return [(r["id"], r["features"], bool(r["forced"]), order.folder / r["file_name"]) for r in rows]

    @_as_storage_error
    def set_features(self, values: dict[int, np.ndarray]) -> None:
        """Store recomputed features of images (image id -> vector)."""
        with self._tx() as con:
            con.executemany("UPDATE images SET features = ? WHERE id = ?",
                            [(np.asarray(v, dtype=np.float32).tobytes(), i) for i, v in values.items()])

    @_as_storage_error
    def trash_images(self, order_id: int, image_ids: list[int]) -> int:
        """Move images (with the versions made from them) to the order's trash folder (not destroyed); returns how
        many of ``image_ids`` moved. The trash is emptied for good by the clean-up job after TRASH_DAYS."""
        order = self.get_order(order_id)
        trash = order.folder / TRASH_FOLDER
        trash.mkdir(exist_ok=True)
        moved = 0
        now = _ts(utc_now())
        for image_id in image_ids:
            img = self.get_image(image_id)
            if img.order_id != order_id or img.state != "ok":
                continue
            for rec in [img, *self.versions_of([img.id]).get(img.id, [])]:
                if rec.path.exists():
                    rec.path.replace(trash / rec.file_name)
                with self._tx() as con:
                    con.execute("UPDATE images SET state = 'trashed', trashed_at = ? WHERE id = ?", (now, rec.id))
                    self._enqueue(con, "image", [rec.id])
            moved += 1
        fsync_dir(order.folder)
        return moved

    @_as_storage_error
    def restore_images(self, order_id: int, image_ids: list[int]) -> int:
        """Bring trashed images back into the order, with the versions that went to the trash with them."""
        order = self.get_order(order_id)
        restored = 0
        for image_id in image_ids:
            img = self.get_image(image_id)
            if img.order_id != order_id or img.state != "trashed":
                continue
            with_it = [self._image(r, order.folder) for r in self._query(
                "SELECT * FROM images WHERE source_image_id = ? AND state = 'trashed' "
                "AND trashed_at = (SELECT trashed_at FROM images WHERE id = ?)", (img.id, img.id))]
            for rec in [img, *with_it]:
                if rec.path.exists():
                    rec.path.replace(order.folder / rec.file_name)
                with self._tx() as con:
                    con.execute("UPDATE images SET state = 'ok', trashed_at = NULL WHERE id = ?", (rec.id,))
                    self._enqueue(con, "image", [rec.id])
            restored += 1
        return restored

    def _delete_image_rows(self, con: sqlite3.Connection, ids: list[int]) -> None:
        marks = ",".join("?" * len(ids))
        con.execute(f"DELETE FROM labels WHERE image_id IN ({marks})", ids)
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'image_stats'").fetchone():  # utils.stats_store's
            con.execute(f"DELETE FROM image_stats WHERE image_id IN ({marks})", ids)
        con.execute(f"UPDATE images SET source_image_id = NULL WHERE source_image_id IN ({marks})", ids)
        con.execute(f"DELETE FROM images WHERE id IN ({marks})", ids)

    @_as_storage_error
    def purge_trash(self, older_than: datetime) -> tuple[int, int]:
        """Remove for good what went to the trash before ``older_than``: trashed images (file and rows) and orders
        retention moved to the trash (folder and rows). Returns (images, orders) removed."""
        images = 0
        cutoff = _ts(older_than)
        rows = self._query(
            "SELECT i.*, o.folder AS folder, o.trashed_at AS order_trashed_at FROM images i "
            "JOIN orders o ON o.id = i.order_id WHERE i.state = 'trashed' AND o.trashed_at IS NULL "
            "AND COALESCE(i.trashed_at, '') < ?" + (_ARCHIVE_HAS_IT if self.outbox else ""), (cutoff,))
        for row in rows:  # one by one: a crash leaves at most one row whose file is already gone
            rec = self._image(row, self._order_folder(row["folder"], None))
            rec.path.unlink(missing_ok=True)
            with self._tx() as con:
                self._delete_image_rows(con, [rec.id])
            images += 1
        orders = 0
        for order in [o for o in self.list_orders(include_trashed=True) if o.trashed_at and _ts(o.trashed_at) < cutoff]:
            if self.outbox and (order.synced_at is None or self._query(
                    "SELECT 1 FROM images WHERE order_id = ? AND state != 'pending' AND synced_at IS NULL LIMIT 1",
                    (order.id,))):
                continue  # not all in the central archive yet: removed once it is
            if order.folder.exists():
                shutil.rmtree(order.folder)
            with self._tx() as con:
                ids = [r[0] for r in con.execute("SELECT id FROM images WHERE order_id = ?", (order.id,))]
                if ids:
                    self._delete_image_rows(con, ids)
                con.execute("DELETE FROM orders WHERE id = ?", (order.id,))
            logger.info("Removed order %s for good (in the trash since %s)", order.order_number, order.trashed_at)
            orders += 1
        return images, orders

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
                con.execute("UPDATE orders SET trashed_at = ? WHERE id = ?", (trashed_at, order.id))
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
            con.execute("UPDATE orders SET keep = ? WHERE id = ?", (int(keep), order_id))
            self._enqueue(con, "order", [order_id])

    # -- labels
    @_as_storage_error
    def set_labels(self, image_id: int, labels: list[tuple[str, float]], model: str) -> None:
        """Store an image's labels (best first), replacing those it had."""
        with self._tx() as con:
            con.execute("DELETE FROM labels WHERE image_id = ?", (image_id,))
            con.executemany("INSERT INTO labels (image_id, rank, name, score, model) VALUES (?, ?, ?, ?, ?)",
                            [(image_id, i, n, float(sc), model) for i, (n, sc) in enumerate(labels)])

    def labels_of(self, image_ids: list[int]) -> dict[int, list[tuple[str, float, str]]]:
        """Stored labels per image: id -> [(name, score, model)], best first."""
        if not image_ids:
            return {}
        out: dict[int, list[tuple[str, float, str]]] = {}
        for chunk in range(0, len(image_ids), 500):
            part = image_ids[chunk:chunk + 500]
            for r in self._query(f"SELECT * FROM labels WHERE image_id IN ({','.join('?' * len(part))}) "
                                 "ORDER BY image_id, rank", tuple(part)):
                out.setdefault(r["image_id"], []).append((r["name"], r["score"], r["model"]))
        return out

    def unlabelled_images(self, limit: int = 100, after_id: int = 0) -> list[ImageRecord]:
        """Kept images (every kind) that have no labels yet, by id from ``after_id`` on."""
        rows = self._query(
            "SELECT i.*, o.folder AS folder, o.trashed_at AS order_trashed_at FROM images i "
            "JOIN orders o ON o.id = i.order_id WHERE i.id > ? AND i.state = 'ok' AND o.trashed_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.image_id = i.id) ORDER BY i.id LIMIT ?",
            (int(after_id), int(limit)))
        return [self._image(r, self._order_folder(r["folder"], r["order_trashed_at"])) for r in rows]

    def label_counts(self, order_ids: list[int] | None = None, top: int = 1) -> list[tuple[str, int]]:
        """How many kept images carry each label among their ``top`` best (most frequent first)."""
        where, args = "", []
        if order_ids is not None:
            if not order_ids:
                return []
            where = f" AND i.order_id IN ({','.join('?' * len(order_ids))})"
            args = list(order_ids)
        rows = self._query(
            "SELECT l.name, COUNT(*) AS n FROM labels l JOIN images i ON i.id = l.image_id "
            f"WHERE i.state = 'ok' AND l.rank < ?{where} GROUP BY l.name ORDER BY n DESC, l.name",
            (int(top), *args))
        return [(r["name"], int(r["n"])) for r in rows]

    def search_labels(self, order_id: int, text: str, top: int = 5) -> set[int]:
        """Ids of the order's kept images with a label containing ``text`` (case-insensitive) among their best
        ``top``."""
        rows = self._query(
            "SELECT DISTINCT l.image_id FROM labels l JOIN images i ON i.id = l.image_id WHERE i.order_id = ? "
            "AND i.state = 'ok' AND l.rank < ? AND l.name LIKE ? ESCAPE '\\'",
            (order_id, int(top), "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"))
        return {int(r[0]) for r in rows}

    # -- scheduled jobs and the lease that says which process runs them
    @_as_storage_error
    def acquire_lease(self, name: str, holder: str, ttl_s: float, now: float | None = None) -> bool:
        """Take or renew the lease ``name`` for ``holder`` for ``ttl_s`` seconds; False while another holder's
        lease has not expired. Atomic across processes (one write transaction)."""
        import time

        t = time.time() if now is None else now
        with self._tx() as con:
            row = con.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row["holder"] != holder and row["expires_at"] > t:
                return False
            con.execute("INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                        "SET holder = excluded.holder, expires_at = excluded.expires_at", (name, holder, t + ttl_s))
        return True

    @_as_storage_error
    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back (only if ``holder`` holds it)."""
        with self._tx() as con:
            con.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        """(holder, expires at, epoch seconds) of the lease, or None."""
        rows = self._query("SELECT holder, expires_at FROM leases WHERE name = ?", (name,))
        return (rows[0]["holder"], float(rows[0]["expires_at"])) if rows else None

    @_as_storage_error
    def record_job(self, name: str, **values: Any) -> None:
        """Create or update a job's status row (last_started, last_finished, duration_s, result, error, next_run,
        runs, failures)."""
        allowed = {"last_started", "last_finished", "duration_s", "result", "error", "next_run", "runs", "failures"}
        if set(values) - allowed:
            raise ValueError(f"unknown job columns {sorted(set(values) - allowed)}")
        vals = {k: (_ts(v) if isinstance(v, datetime) else v) for k, v in values.items()}
        with self._tx() as con:
            con.execute("INSERT INTO jobs (name) VALUES (?) ON CONFLICT(name) DO NOTHING", (name,))
            if vals:
                cols = ", ".join(f"{k} = ?" for k in vals)
                con.execute(f"UPDATE jobs SET {cols} WHERE name = ?", (*vals.values(), name))

    def job_rows(self) -> dict[str, dict[str, Any]]:
        """Every job's status row, by name (times as datetimes)."""
        out = {}
        for r in self._query("SELECT * FROM jobs ORDER BY name"):
            d = dict(r)
            for k in ("last_started", "last_finished", "next_run"):
                d[k] = _dt(d[k])
            out[d["name"]] = d
        return out

    # -- crash recovery
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
        rows = self._query(
            "SELECT i.*, o.folder AS folder, o.trashed_at AS order_trashed_at FROM images i "
            "JOIN orders o ON o.id = i.order_id WHERE i.state = 'ok' AND o.status = 'closed' "
            "AND i.local_removed_at IS NULL AND i.synced_at IS NOT NULL AND i.synced_at < ?"
            + _ARCHIVE_HAS_IT + " ORDER BY i.id LIMIT ?", (_ts(confirmed_before), limit))
        return [self._image(r, self._order_folder(r["folder"], r["order_trashed_at"])) for r in rows]

    @_as_storage_error
    def remove_local_copy(self, rec: ImageRecord) -> None:
        """Remove the station's copy of an image the archive has (recorded first: a crash in between leaves a
        row that says "in the archive" and a file still here, which is harmless)."""
        with self._tx() as con:
            con.execute("UPDATE images SET local_removed_at = ? WHERE id = ?", (_ts(utc_now()), rec.id))
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
        now = _ts(utc_now())
        with self._tx() as con:
            con.execute("UPDATE images SET local_removed_at = NULL, synced_at = ? WHERE id = ?", (now, rec.id))
        return self.get_image(rec.id)

    # -- the outbox of the sync into the central archive (utils/archive/sync.py)
    def _enqueue(self, con: sqlite3.Connection, entity: Literal["order", "image"], ids: list[int]) -> None:
        """Record, in the caller's transaction, that these rows changed and must reach the central archive."""
        if self.outbox and ids:
            self._local.notify = True  # the listeners (the sync) hear of it once the transaction is committed
            now = _ts(utc_now())
            con.executemany("INSERT INTO outbox (entity, entity_id, created_at) VALUES (?, ?, ?)",
                            [(entity, int(i), now) for i in ids])

    def outbox_waiting(self, limit: int = 50) -> list[OutboxEntry]:
        """The oldest changes not yet in the central archive (failed ones left out), oldest first."""
        return [OutboxEntry(r["id"], r["entity"], r["entity_id"], _dt(r["created_at"]), r["attempts"])  # type: ignore[arg-type]
                for r in self._query("SELECT * FROM outbox WHERE done_at IS NULL AND failed_at IS NULL "
                                     "ORDER BY id LIMIT ?", (limit,))]

    @_as_storage_error
    def outbox_done(self, entry: OutboxEntry) -> None:
        """The central archive has the row (and its file): mark the change done and the row synced."""
        now = _ts(utc_now())
        table = "orders" if entry.entity == "order" else "images"
        with self._tx() as con:
            con.execute("UPDATE outbox SET done_at = ?, last_error = NULL WHERE id = ?", (now, entry.id))
            con.execute(f"UPDATE {table} SET synced_at = ? WHERE id = ?", (now, entry.entity_id))

    @_as_storage_error
    def outbox_retry(self, entry: OutboxEntry, error: str, give_up: bool = False) -> None:
        """The change could not be sent: count the attempt and keep the reason (``give_up``: it never will be, e.g.
        its file is gone; it stays listed as failed)."""
        with self._tx() as con:
            con.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ? WHERE id = ?",
                        (error[:500], _ts(utc_now()) if give_up else None, entry.id))

    @_as_storage_error
    def outbox_retry_failed(self) -> int:
        """Send the changes marked failed again (their file was put back); returns how many."""
        with self._tx() as con:
            n = con.execute("UPDATE outbox SET failed_at = NULL WHERE done_at IS NULL AND failed_at IS NOT NULL"
                            ).rowcount
        return n

    @_as_storage_error
    def outbox_backfill(self) -> int:
        """Queue every order and kept image the central archive has not confirmed and nothing waits for (rows
        from before the sync was set up, or written by a process without it); returns how many."""
        if not self.outbox:
            return 0
        now = _ts(utc_now())
        with self._tx() as con:
            n = 0
            for entity, table, extra in (("order", "orders", ""), ("image", "images", " AND t.state != 'pending'")):
                n += con.execute(
                    f"INSERT INTO outbox (entity, entity_id, created_at) SELECT ?, t.id, ? FROM {table} t "
                    f"WHERE t.synced_at IS NULL{extra} AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.entity = ? "
                    "AND x.entity_id = t.id AND x.done_at IS NULL) ORDER BY t.id", (entity, now, entity)).rowcount
        return n

    def outbox_backlog(self) -> OutboxBacklog:
        """What waits for the central archive: images and orders, since when, failures and the last error."""
        rows = self._query(
            "SELECT entity, SUM(failed_at IS NULL) AS n, MIN(CASE WHEN failed_at IS NULL THEN created_at END) AS oldest, "
            "SUM(failed_at IS NOT NULL) AS failed FROM outbox WHERE done_at IS NULL GROUP BY entity")
        by = {r["entity"]: r for r in rows}
        last = self._query("SELECT last_error FROM outbox WHERE done_at IS NULL AND last_error IS NOT NULL "
                           "ORDER BY id DESC LIMIT 1")
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
        return [(_dt(r["done_at"]) - _dt(r["created_at"])).total_seconds()  # type: ignore[operator]
                for r in self._query("SELECT created_at, done_at FROM outbox WHERE done_at IS NOT NULL "
                                     "ORDER BY id DESC LIMIT ?", (limit,))]

    @_as_storage_error
    def outbox_prune(self, older_than: datetime) -> int:
        """Forget changes done before ``older_than``."""
        with self._tx() as con:
            return con.execute("DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?",
                               (_ts(older_than),)).rowcount

    def order_row(self, order_id: int) -> dict[str, Any] | None:
        """The order's database row as a dict (the sync sends it as it is), None if gone."""
        rows = self._query("SELECT * FROM orders WHERE id = ?", (order_id,))
        return dict(rows[0]) if rows else None

    def image_row(self, image_id: int) -> dict[str, Any] | None:
        """The image's database row without its features, as a dict; None if gone."""
        rows = self._query("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            return None
        row = dict(rows[0])
        row.pop("features", None)
        return row

    def recover(self) -> RecoveryReport:
        """Finish what a crash interrupted (see module docstring); safe to run at every start."""
        from utils.imaging import ImageDecodeError, decode_image

        report = RecoveryReport(orphan_files=[])
        rows = self._query(
            "SELECT i.id, i.file_name, o.folder FROM images i JOIN orders o ON o.id = i.order_id WHERE i.state = 'pending'"
        )
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
                    con.execute("UPDATE images SET state = 'ok' WHERE id = ?", (row["id"],))
                    self._enqueue(con, "image", [row["id"]])
                    report.completed += 1
                else:
                    con.execute("DELETE FROM images WHERE id = ?", (row["id"],))
                    report.removed_rows += 1
        known: dict[str, set[str]] = {}
        for row in self._query("SELECT o.folder, i.file_name FROM images i JOIN orders o ON o.id = i.order_id"):
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
