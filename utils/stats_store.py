"""Per-image statistics in the capture database, the background indexer, and the tables the pages show.

The ``image_stats`` table lives in the same database as :class:`utils.storage.Store` (SQLite or PostgreSQL; one row
per image id, the statistics as columns, EXIF as JSON, an ``error`` column for unreadable files; its schema is the
station's, :data:`utils.db.schema.image_stats`). It is only ever written here, one row per statement, so a crash
leaves either the whole row or none.

:class:`StatsIndexer` is a background thread that computes the statistics of every kept (``ok``) image that
has no row yet: at start that is the backfill, afterwards it picks up each newly saved image within
``poll_interval`` seconds (sooner after :meth:`StatsIndexer.notify`). The capture worker is not involved, so
its hot path does not change; the indexer thread runs at a lower CPU priority (Linux) and, on SQLite, writes with
``synchronous=NORMAL`` through connections of its own (the statistics can always be computed again).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from utils.db import schema as db
from utils.db.engine import DbRow, begin_write, fetch_rows, in_ids, make_engine, upsert
from utils.image_stats import AVERAGING_METHODS, ImageStats, ImageStatsError, compute_stats
from utils.storage import DB_ERRORS, Store

logger = logging.getLogger(__name__)

STATS_VERSION = 1  # bump when the definitions change: every row is computed again

_STATS_COLUMNS = [
    "width", "height", "format", "mode", "file_size", "brightness", "contrast", "sharpness", "opaque_fraction",
    "avg_method", "avg_r", "avg_g", "avg_b", "avg_hex", "dom_r", "dom_g", "dom_b", "dominant_hex",
    "exif_captured_at", "gps_latitude", "gps_longitude", "gps_altitude",
]  # fmt: skip

#: Columns of the per-image table (page preview, CSV export), in this order. Uploads have ``source``
#: instead of the order columns.
IMAGE_COLUMNS = [
    "image_id", "order_number", "order_folder", "seq", "file_name", "captured_at", "captured_at_source",
    "width", "height", "format", "file_size", "distance", "forced", "camera", "brightness", "contrast",
    "sharpness", "avg_method", "avg_hex", "avg_r", "avg_g", "avg_b", "dominant_hex", "dom_r", "dom_g", "dom_b",
    "gps_latitude", "gps_longitude", "gps_altitude", "stats_status", "error", "kind", "source_image_id",
    "operation", "tool", "source_url", "labels",
]  # fmt: skip
UPLOAD_COLUMNS = [
    "source", "captured_at", "captured_at_source", "width", "height", "format", "file_size", "brightness",
    "contrast", "sharpness", "avg_method", "avg_hex", "avg_r", "avg_g", "avg_b", "dominant_hex", "dom_r", "dom_g",
    "dom_b", "gps_latitude", "gps_longitude", "gps_altitude", "stats_status", "error",
]  # fmt: skip


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo is not None else value.astimezone()
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


#: Errors that say the database cannot take the row right now (locked, disk full, server gone): tried again later.
_RETRY_LATER = (OperationalError, sqlite3.OperationalError)
BUSY_TIMEOUT_S = 30.0


def stats_values(path: Path, method: str) -> dict[str, Any]:
    """The ``image_stats`` columns for one image file; ``error`` set (and nothing else) when it cannot be read.

    Never raises: any failure is that file's ``error`` (unexpected ones are logged with a traceback).
    """
    values: dict[str, Any] = {"avg_method": method}
    try:
        data = path.read_bytes()
        values["file_mtime"] = _ts(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
        values.update(_columns(compute_stats(data, method)))
    except FileNotFoundError:
        return {"avg_method": method, "error": f"file missing: {path.name}"}
    except (ImageStatsError, OSError) as err:
        return {**values, "error": str(err) or type(err).__name__}
    except Exception as err:  # noqa: BLE001 - one bad file must never stop the indexer
        logger.warning("Statistics of %s failed", path.name, exc_info=True)
        return {"avg_method": method, "file_mtime": values.get("file_mtime"), "error": _unexpected(err)}
    return values


def _columns(stats: ImageStats) -> dict[str, Any]:
    """The ``image_stats`` columns of computed statistics (times as UTC text, EXIF as JSON)."""
    row = stats.as_row()
    values = {k: row[k] for k in _STATS_COLUMNS}
    values["exif_captured_at"] = _ts(stats.exif_captured_at)
    values["exif_json"] = json.dumps(stats.exif, ensure_ascii=False, allow_nan=False)
    return values


def _unexpected(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def write_stats(con: Connection, image_id: int, values: dict[str, Any]) -> None:
    """Insert or replace the row of ``image_id`` in one statement (atomic)."""
    cols = ["image_id", "version", "computed_at", "error", "file_mtime", "exif_json", *_STATS_COLUMNS]
    row = {
        **{c: None for c in cols},
        **values,
        "image_id": image_id,
        "version": STATS_VERSION,
        "computed_at": _ts(datetime.now(timezone.utc)),
    }
    stmt = upsert(con, db.image_stats).values({c: row[c] for c in cols})
    con.execute(stmt.on_conflict_do_update(index_elements=[db.image_stats.c.image_id],
                                           set_={c: stmt.excluded[c] for c in cols if c != "image_id"}))


def _todo(floor: int, top: int, method: str, limit: int) -> Any:
    """Images above ``floor`` (up to ``top``) whose statistics are missing, of an older STATS_VERSION, or made with
    another averaging method."""
    i, o, s = db.images, db.orders, db.image_stats
    return (select(i.c.id, i.c.file_name, i.c.state, o.c.folder).join_from(i, o, o.c.id == i.c.order_id)
            .outerjoin(s, s.c.image_id == i.c.id)
            .where(i.c.id > floor, i.c.id <= top, i.c.state.in_(("ok", "pending")), o.c.trashed_at.is_(None),
                   or_(s.c.image_id.is_(None), s.c.version < STATS_VERSION,
                       and_(s.c.error.is_(None), s.c.avg_method.is_distinct_from(method))))
            .order_by(i.c.id).limit(limit))


class StatsIndexer:
    """Computes and stores the statistics of every kept image without them (see the module docstring).

    ``start()`` runs it in a daemon thread, ``notify()`` wakes it at once, ``stop()`` ends it;
    :meth:`run_once` / :func:`backfill` do the same work synchronously.
    """

    def __init__(
        self,
        store: Store,
        averaging_method: str = "arithmetic",
        *,
        poll_interval: float = 2.0,
        batch: int = 32,
        nice: int = 10,
        rescan_every: float = 600.0,
    ) -> None:
        if averaging_method not in AVERAGING_METHODS:
            raise ValueError(f"averaging method must be one of {', '.join(AVERAGING_METHODS)}")
        self.store = store
        self.averaging_method = averaging_method
        self.poll_interval = poll_interval
        self.batch = batch
        self.nice = nice
        self.rescan_every = rescan_every
        self.processed = 0
        self.errors = 0
        self.last_error: str | None = None
        self._floor = 0  # every image id <= floor is done (or was not ok when scanned)
        self._last_full_scan = time.monotonic()
        self._lock = threading.Lock()  # one scan at a time (thread and synchronous callers)
        self._engine: Engine | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._idle_scans = 0
        self._thread: threading.Thread | None = None

    # -- work
    def _connections(self) -> Engine:
        """SQLite: the indexer's own connections (``synchronous=NORMAL``); PostgreSQL: the store's pool."""
        if self._engine is None:
            self._engine = (make_engine(self.store.url, BUSY_TIMEOUT_S, synchronous="NORMAL")
                            if self.store.dialect == "sqlite" else self.store.engine)
        return self._engine

    def run_once(self, limit: int | None = None) -> int:
        """Compute up to ``limit`` (default ``batch``) missing rows; returns how many images were looked at."""
        limit = limit or self.batch
        with self._lock:
            if time.monotonic() - self._last_full_scan > self.rescan_every:
                self._floor, self._last_full_scan = 0, time.monotonic()  # catches images restored from the trash
            with self._connections().connect() as con:  # read, then let go: no snapshot held while computing
                top = con.execute(select(func.coalesce(func.max(db.images.c.id), 0))).scalar_one()
                rows = fetch_rows(con.execute(_todo(self._floor, top, self.averaging_method, limit)))
            stuck = False  # a pending image (being written) holds the floor below it
            done = 0
            for row in rows:
                if self._stop.is_set():
                    return done
                if row["state"] == "pending":
                    stuck = True
                    continue
                values = self._index_one(row)
                done += 1
                self.processed += 1
                if values.get("error"):
                    self.errors += 1
                    self.last_error = f"image {row['id']} ({row['file_name']}): {values['error']}"
                    logger.warning("Statistics: %s", self.last_error)
                if not stuck:
                    self._floor = row["id"]
            if len(rows) < limit and not stuck:
                self._floor = max(self._floor, top)
            return done

    def _write(self, image_id: int, values: dict[str, Any]) -> None:
        """One row in its own write transaction."""
        con = begin_write(self._connections(), BUSY_TIMEOUT_S)
        try:
            write_stats(con, image_id, values)
            con.commit()
        finally:
            con.close()

    def _index_one(self, row: DbRow) -> dict[str, Any]:
        """Compute and store one image's row; a failure that is not the database's becomes its ``error``."""
        path = self.store.export_dir / row["folder"] / row["file_name"]
        values = stats_values(path, self.averaging_method)
        try:
            self._write(row["id"], values)
        except _RETRY_LATER:  # locked, disk full, server gone...: the loop tries again later
            raise
        except Exception as err:  # noqa: BLE001 - a value the database refuses: record the file as failed
            logger.warning("Statistics of %s could not be stored", path.name, exc_info=True)
            values = {"avg_method": self.averaging_method, "error": f"cannot store the statistics: {_unexpected(err)}"}
            self._write(row["id"], values)
        return values

    def rescan(self) -> None:
        """Look at every image again at the next run (not only those above the last one seen)."""
        self._last_full_scan = float("-inf")

    def backfill(self, stop: threading.Event | None = None) -> int:
        """Compute every missing row now (synchronously, until ``stop`` is set); returns how many images were
        processed."""
        total = 0
        while not self._stop.is_set() and not (stop is not None and stop.is_set()):
            n = self.run_once()
            total += n
            if n == 0:
                return total
        return total

    # -- thread
    def start(self) -> "StatsIndexer":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stats-indexer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._engine is not None and (self._thread is None or not self._thread.is_alive()):
            if self._engine is not self.store.engine:
                self._engine.dispose()
            self._engine = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        """New images may be there: look now instead of at the next poll."""
        self._wake.set()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until a scan that started after this call found nothing left to do (for tests and tools)."""
        with self._cond:
            target = self._idle_scans + 2  # the scan running now may have started before the call
        self.notify()
        end = time.monotonic() + timeout
        with self._cond:
            while self._idle_scans < target:
                left = end - time.monotonic()
                if left <= 0 or not self.running:
                    return False
                self._cond.wait(min(left, 0.2))
                self._wake.set()
        return True

    def _lower_priority(self) -> None:
        if self.nice and hasattr(os, "setpriority"):
            try:  # on Linux a thread id names just this thread
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError:
                pass

    def _run(self) -> None:
        self._lower_priority()
        logger.info("Statistics indexer started (%s mean)", self.averaging_method)
        while not self._stop.is_set():
            try:
                n = self.run_once()
            except DB_ERRORS as err:
                self.last_error = f"database: {getattr(err, 'orig', None) or err}"
                logger.warning("Statistics indexer: %s", self.last_error)
                n = 0
            except Exception as err:  # noqa: BLE001 - the thread must outlive any bug; it tries again next poll
                self.last_error = _unexpected(err)
                logger.warning("Statistics indexer: %s", self.last_error, exc_info=True)
                n = 0
            if n:
                continue
            with self._cond:
                self._idle_scans += 1
                self._cond.notify_all()
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        logger.info("Statistics indexer stopped")


_indexers: dict[str, StatsIndexer] = {}
_registry_lock = threading.Lock()


def ensure_indexer(store: Store, averaging_method: str = "arithmetic") -> StatsIndexer:
    """The running indexer of this database (one per process and database file), started if needed."""
    key = store.database_key
    with _registry_lock:
        indexer = _indexers.get(key)
        if indexer is not None and indexer.running and indexer.averaging_method == averaging_method:
            return indexer
        if indexer is not None:
            indexer.stop()
        indexer = StatsIndexer(store, averaging_method).start()
        _indexers[key] = indexer
        return indexer


def stop_all_indexers() -> None:
    """Stop every indexer of this process (tests, shutdown)."""
    with _registry_lock:
        for indexer in _indexers.values():
            indexer.stop()
        _indexers.clear()


def backfill(store: Store, averaging_method: str = "arithmetic") -> int:
    """Compute every missing statistics row now, in this thread; returns how many images were processed."""
    indexer = StatsIndexer(store, averaging_method)
    try:
        return indexer.backfill()
    finally:
        indexer.stop()


def stats_rows(store: Store, image_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The statistics rows of these images by id (``exif`` as a dict); images without a row are left out."""
    out: dict[int, dict[str, Any]] = {}
    if not image_ids:
        return out
    s = db.image_stats
    for row in store._query(select(s).where(in_ids(s.c.image_id, image_ids, store.dialect))):  # noqa: SLF001
        values = dict(row)
        raw = values.pop("exif_json", None)
        values["exif"] = json.loads(raw) if raw else None
        out[int(values["image_id"])] = values
    return out


# ----------------------------------------------------------------- tables


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")


def _resolve_times(frame: pd.DataFrame, db_col: str | None, file_col: str | None) -> pd.DataFrame:
    """``captured_at`` (UTC) and ``captured_at_source``: EXIF DateTimeOriginal, else the database, else the file."""
    candidates = [("exif", "exif_captured_at"), ("database", db_col), ("file", file_col)]
    captured = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    source = pd.Series(None, index=frame.index, dtype=object)
    for name, col in candidates:
        if col is None or col not in frame:
            continue
        values = _utc(frame[col]).astype("datetime64[us, UTC]")
        fill = captured.isna() & values.notna()
        captured = captured.where(~fill, values)
        source = source.where(~fill, name)
    frame["captured_at"] = captured
    frame["captured_at_source"] = source
    return frame


def _images_select() -> Any:
    """Every kept image (not in the trash) with its order and its statistics, in capture order."""
    i, o, s = db.images, db.orders, db.image_stats
    return (select(
        i.c.id.label("image_id"), i.c.order_id, o.c.order_number, o.c.folder.label("order_folder"),
        o.c.status.label("order_status"), i.c.seq, i.c.file_name, i.c.captured_at.label("db_captured_at"),
        i.c.width.label("db_width"), i.c.height.label("db_height"), i.c.size_bytes, i.c.distance, i.c.forced,
        i.c.camera, i.c.kind, i.c.source_image_id, i.c.operation, i.c.tool, i.c.source_url,
        s.c.image_id.label("stats_id"), s.c.error, s.c.file_mtime, s.c.exif_json, *[s.c[c] for c in _STATS_COLUMNS],
    ).join_from(i, o, o.c.id == i.c.order_id).outerjoin(s, s.c.image_id == i.c.id)
        .where(i.c.state == "ok", o.c.trashed_at.is_(None)).order_by(i.c.captured_at, i.c.id))


def _label_text(store: Store, image_ids: list[int]) -> dict[int, str]:
    """Each image's labels as ``name 0.70; other 0.20`` (best first)."""
    return {i: "; ".join(f"{name} {score:.2f}" for name, score, _ in labels)
            for i, labels in store.labels_of(image_ids).items()}


def load_images_frame(store: Store, with_exif: bool = False) -> pd.DataFrame:
    """Every kept image joined with its order and its statistics (columns: :data:`IMAGE_COLUMNS`, plus
    ``order_id``, ``order_status`` and, with ``with_exif``, ``exif`` as dicts).

    ``stats_status`` is ``ok``, ``error`` (``error`` says why) or ``pending`` (not computed yet).
    """
    rows = store._query(_images_select())  # noqa: SLF001
    columns = list(rows[0].keys()) if rows else [c.name for c in _images_select().selected_columns]
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=columns, coerce_float=True)
    labels = _label_text(store, [int(i) for i in frame["image_id"]])
    frame["labels"] = [labels.get(int(i)) for i in frame["image_id"]]
    frame = _resolve_times(frame, "db_captured_at", "file_mtime")
    frame["stats_status"] = np.where(frame["stats_id"].isna(), "pending", np.where(frame["error"].notna(), "error", "ok"))
    for col, fallback in (("width", "db_width"), ("height", "db_height"), ("file_size", "size_bytes")):
        frame[col] = frame[col].astype("Int64").fillna(frame[fallback].astype("Int64"))
    frame["forced"] = frame["forced"].astype(bool)
    frame["source_image_id"] = frame["source_image_id"].astype("Int64")
    if with_exif:
        frame["exif"] = [json.loads(x) if isinstance(x, str) else None for x in frame["exif_json"]]
    extra = ["order_id", "order_status"] + (["exif"] if with_exif else [])
    return frame[IMAGE_COLUMNS + extra].reset_index(drop=True)


def load_orders_frame(store: Store) -> pd.DataFrame:
    """One row per order: number, folder, mode, status, start, end, kept images and capture duration (s)."""
    rows = [
        {
            "order_id": o.id,
            "order_number": o.order_number,
            "order_folder": o.folder.name,
            "mode": o.mode,
            "status": o.status,
            "started_at": o.started_at,
            "closed_at": o.closed_at,
            "n_images": o.n_images,
        }
        for o in store.list_orders()
    ]
    frame = pd.DataFrame(
        rows, columns=["order_id", "order_number", "order_folder", "mode", "status", "started_at", "closed_at", "n_images"]
    )
    frame["started_at"] = _utc(frame["started_at"].map(_ts)).astype("datetime64[us, UTC]")
    frame["closed_at"] = _utc(frame["closed_at"].map(_ts)).astype("datetime64[us, UTC]")
    frame["duration_s"] = (frame["closed_at"] - frame["started_at"]).dt.total_seconds()
    return frame


# ----------------------------------------------------------------- uploads


@dataclass
class UploadItem:
    """One uploaded file or fetched URL: its name, its bytes (None when it could not be had) and why not."""

    source: str
    data: bytes | None
    file_time: datetime | None = None
    error: str | None = None


def _upload_values(item: UploadItem, averaging_method: str) -> dict[str, Any]:
    """The statistics columns of one upload, or its ``error``; never raises."""
    try:
        stats = compute_stats(item.data or b"", averaging_method)
        return {**stats.as_row(), "exif_captured_at": _ts(stats.exif_captured_at), "exif": stats.exif}
    except ImageStatsError as err:
        logger.warning("Statistics of upload %s: %s", item.source, err)
        return {"error": str(err)}
    except Exception as err:  # noqa: BLE001 - one bad upload must not stop the analysis
        logger.warning("Statistics of upload %s failed", item.source, exc_info=True)
        return {"error": _unexpected(err)}


def analyze_items(items: Iterable[UploadItem], averaging_method: str = "arithmetic") -> pd.DataFrame:
    """The per-image table (columns :data:`UPLOAD_COLUMNS`, plus ``exif``) of uploaded images; nothing is stored."""
    rows = []
    for item in items:
        row: dict[str, Any] = {"source": item.source, "file_time": _ts(item.file_time), "error": item.error}
        if item.data is not None and item.error is None:
            row.update(_upload_values(item, averaging_method))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in UPLOAD_COLUMNS + ["exif", "exif_captured_at", "file_time"]:
        if col not in frame:
            frame[col] = None
    frame = _resolve_times(frame, None, "file_time")
    frame["stats_status"] = np.where(frame["error"].notna(), "error", "ok")
    return frame[UPLOAD_COLUMNS + ["exif"]].reset_index(drop=True)


def parse_urls(text: str) -> list[str]:
    """Non-empty lines of ``text`` (lines starting with # are comments)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]


def analyze_sources(
    files: Iterable[tuple[str, bytes]],
    urls: Iterable[str],
    *,
    averaging_method: str = "arithmetic",
    max_bytes: int = 25_000_000,
    timeout: float = 10.0,
    allow_private: bool = False,
    workers: int = 4,
) -> pd.DataFrame:
    """The per-image table of uploaded files and image URLs (fetched safely, in parallel); nothing is stored.

    Files above ``max_bytes`` and URLs that cannot or may not be fetched get a row with the reason in ``error``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from utils.url_fetch import URLFetchError, fetch_image

    items = [
        UploadItem(name, None, error=f"too large ({len(data):,} bytes, at most {max_bytes:,})")
        if len(data) > max_bytes else UploadItem(name, data)
        for name, data in files
    ]

    def fetch(url: str) -> UploadItem:
        try:
            got = fetch_image(url, timeout=timeout, max_bytes=max_bytes, allow_private=allow_private)
        except URLFetchError as err:
            return UploadItem(url, None, error=str(err))
        return UploadItem(url, got.data, file_time=got.last_modified)

    url_list = list(urls)
    if url_list:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(url_list)))) as pool:
            items.extend(pool.map(fetch, url_list))
    return analyze_items(items, averaging_method)
