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
import logging
import os
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import numpy as np

from utils.files import atomic_write_bytes, fsync_dir, is_temp_file

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TRASH_FOLDER = "trash"
Mode = Literal["distinct images", "video"]

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


def _sqlite_reason(err: sqlite3.Error) -> str:
    """SQLite's message, with the OS's words for a full disk (SQLite says 'database or disk is full')."""
    text = str(err)
    if getattr(err, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in text:
        return f"{text} (No space left on device; free space on the disk)"
    return text


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


class Store:
    """SQLite metadata + image files of all orders. Thread-safe (one connection per thread)."""

    def __init__(self, export_dir: Path, db_path: Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.export_dir = Path(export_dir)
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
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as err:
            self.close()
            raise StorageError(self.open_problem(err)) from err

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
            try:
                self.con.execute("COMMIT" if exc_type is None else "ROLLBACK")
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
            folder=self.export_dir / row["folder"],
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
        )

    _ORDER_SELECT = (
        "SELECT o.*, (SELECT COUNT(*) FROM images i WHERE i.order_id = o.id AND i.state = 'ok') AS n_images "
        "FROM orders o"
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
    ) -> tuple[OrderRecord, bool]:
        """Start (or resume) an order; returns (order, resumed).

        Resumes the open order with this number and mode if there is one; otherwise makes a
        new folder ``NUMBER`` or ``NUMBER_1``, ``NUMBER_2``... Raises OrderNumberError.
        """
        number = validate_order_number(order_number, max_length)
        with self._tx() as con:
            row = con.execute(
                "SELECT * FROM orders WHERE order_number = ? AND status = 'open' AND mode = ? ORDER BY id DESC LIMIT 1",
                (number, mode),
            ).fetchone()
            if row is not None:
                con.execute(
                    "UPDATE orders SET threshold = COALESCE(?, threshold), images_per_second = COALESCE(?, "
                    "images_per_second) WHERE id = ?",
                    (threshold, images_per_second, row["id"]),
                )
                order_id, resumed = row["id"], True
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
                cur = con.execute(
                    "INSERT INTO orders (order_number, folder, mode, status, started_at, threshold, images_per_second,"
                    " resolution, camera, descriptor) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                    (number, folder, mode, _ts(utc_now()), threshold, images_per_second, resolution, camera, descriptor),
                )
                order_id, resumed = int(cur.lastrowid), False  # type: ignore[arg-type]
        order = self.get_order(order_id)
        logger.info("%s order %s in %s", "Resumed" if resumed else "Opened", number, order.folder)
        return order, resumed

    def get_order(self, order_id: int) -> OrderRecord:
        rows = self._query(self._ORDER_SELECT + " WHERE o.id = ?", (order_id,))
        if not rows:
            raise KeyError(f"no order with id {order_id}")
        return self._order(rows[0])

    def list_orders(self, status: str | None = None) -> list[OrderRecord]:
        """All orders, newest first."""
        if status is None:
            rows = self._query(self._ORDER_SELECT + " ORDER BY o.started_at DESC, o.id DESC")
        else:
            rows = self._query(self._ORDER_SELECT + " WHERE o.status = ? ORDER BY o.started_at DESC, o.id DESC", (status,))
        return [self._order(r) for r in rows]

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

    # -- images
    def _image(self, row: sqlite3.Row, folder: Path) -> ImageRecord:
        sub = folder / TRASH_FOLDER if row["state"] == "trashed" else folder
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
    ) -> ImageRecord:
        """Keep one image: row (pending) -> file (atomic) -> row (ok). Raises StorageError."""
        self._drop_stale_pending()
        self._check_space(order.folder, len(data))
        blob = None if features is None else np.asarray(features, dtype=np.float32).tobytes()
        stamp = captured_at.astimezone().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        d = None if distance is None or not np.isfinite(distance) else float(distance)
        try:
            with self._tx() as con:
                seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM images WHERE order_id = ?", (order.id,)).fetchone()[0]
                name = f"{seq:05d}_{stamp}{suffix}"
                cur = con.execute(
                    "INSERT INTO images (order_id, seq, file_name, state, captured_at, width, height, size_bytes, "
                    "distance, forced, camera, features) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (order.id, seq, name, _ts(captured_at), width, height, len(data), d, int(forced), camera, blob),
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
            "SELECT i.*, o.folder AS folder FROM images i JOIN orders o ON o.id = i.order_id WHERE i.id = ?", (image_id,)
        )
        if not rows:
            raise KeyError(f"no image with id {image_id}")
        return self._image(rows[0], self.export_dir / rows[0]["folder"])

    def images(self, order_id: int, include_trashed: bool = False, offset: int = 0,
               limit: int | None = None) -> list[ImageRecord]:
        """Kept images of an order in capture order (``limit`` of them from position ``offset``: one page)."""
        states = ("ok", "trashed") if include_trashed else ("ok",)
        order = self.get_order(order_id)
        rows = self._query(
            f"SELECT * FROM images WHERE order_id = ? AND state IN ({','.join('?' * len(states))}) ORDER BY seq "
            "LIMIT ? OFFSET ?",
            (order_id, *states, -1 if limit is None else int(limit), int(offset)),
        )
        return [self._image(r, order.folder) for r in rows]

    def count_images(self, order_id: int) -> int:
        """How many kept images the order has."""
        return int(self._query("SELECT COUNT(*) FROM images WHERE order_id = ? AND state = 'ok'", (order_id,))[0][0])

    def image_position(self, order_id: int, seq: int) -> int | None:
        """Position (0-based, in capture order) of the kept image number ``seq``; None if there is none."""
        rows = self._query(
            "SELECT (SELECT COUNT(*) FROM images WHERE order_id = ? AND state = 'ok' AND seq < ?) AS pos, "
            "EXISTS (SELECT 1 FROM images WHERE order_id = ? AND state = 'ok' AND seq = ?) AS found",
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
            "SELECT id, features, forced, file_name FROM images WHERE order_id = ? AND state = 'ok' ORDER BY seq",
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
        """Move images to the order's trash folder (not destroyed); returns how many moved."""
        order = self.get_order(order_id)
        trash = order.folder / TRASH_FOLDER
        trash.mkdir(exist_ok=True)
        moved = 0
        for image_id in image_ids:
            img = self.get_image(image_id)
            if img.order_id != order_id or img.state != "ok":
                continue
            target = trash / img.file_name
            if img.path.exists():
                img.path.replace(target)
            with self._tx() as con:
                con.execute("UPDATE images SET state = 'trashed' WHERE id = ?", (image_id,))
            moved += 1
        fsync_dir(order.folder)
        return moved

    @_as_storage_error
    def restore_images(self, order_id: int, image_ids: list[int]) -> int:
        """Bring trashed images back into the order."""
        order = self.get_order(order_id)
        restored = 0
        for image_id in image_ids:
            img = self.get_image(image_id)
            if img.order_id != order_id or img.state != "trashed":
                continue
            if img.path.exists():
                img.path.replace(order.folder / img.file_name)
            with self._tx() as con:
                con.execute("UPDATE images SET state = 'ok' WHERE id = ?", (image_id,))
            restored += 1
        return restored

    # -- crash recovery
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
