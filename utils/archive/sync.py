"""The station's sync into the central archive: a thread that empties the durable outbox of the station's database.

Capture never waits for it. Every kept image is written locally first, exactly as without an archive (pending row,
atomic file, ok row); in the same transaction as its ok row, a line goes into the ``outbox`` table
(:meth:`utils.storage.Store._enqueue`). This thread takes the outbox lines oldest first and, for each,

1. writes the order's row into the central database (an upsert on (station, local id)),
2. for an image: uploads its file to the object store under ``station/order folder/file name`` (the store checks
   the bytes against their MD5), then writes its row with that key and MD5,
3. marks the line done (and the row ``synced_at``) in the local database.

Every step is idempotent, so a retry after a crash or a timeout between any two steps creates no duplicate: the
same key is overwritten with the same bytes, the same row updated. While the central database or the object store
cannot be reached, the thread waits 1, 2, 4 ... up to ``SYNC_BACKOFF_MAX_S`` seconds and tries again, in order; the
backlog (images waiting, since when, the reason) is on the sidebar and the Settings page. A line that can never be
sent (its file is gone) is marked failed and listed, and the others go on.

Only one process per station database runs the sync (a lease in the database, as for the scheduled jobs).
"""

from __future__ import annotations

import logging
import mimetypes
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from utils.archive.central import CentralArchive, CentralError, CentralUnavailable
from utils.storage import OutboxBacklog, OutboxEntry, Store, StorageError, utc_now

logger = logging.getLogger(__name__)

LEASE = "sync"
BATCH = 50
BACKFILL_EVERY_S = 600.0  # look for rows nothing queued (written by a process without the sync) this often
PRUNE_AFTER = timedelta(days=1)  # done outbox lines are forgotten after this


class FileGone(RuntimeError):
    """The file of an outbox line is no longer on the station's disk: it can never be sent."""


@dataclass(frozen=True)
class SyncStatus:
    """What the sidebar and the Settings page show."""

    running: bool
    holder: bool  # this process runs the sync (else another process of the station does)
    backlog: OutboxBacklog
    last_ok: datetime | None
    problem: str | None  # why the archive cannot be reached or used right now
    retry_in_s: float | None
    sent: int  # lines sent by this process since it started

    def summary(self) -> str:
        """One line: "all in the archive" or what waits, since when, and why."""
        b = self.backlog
        if not b.images and not b.orders:
            text = "all images are in the central archive"
        else:
            since = f" since {b.oldest.astimezone():%H:%M:%S}" if b.oldest else ""
            text = f"{b.images} image(s) and {b.orders} order change(s) waiting{since}"
        if b.failed:
            text += f"; {b.failed} cannot be sent ({b.last_error})"
        if self.problem:
            text += f"; {self.problem}"
        return text


def object_key(station: str, folder: str, file_name: str) -> str:
    """Where a station's file lives in the object store: ``station/order folder/file name``."""
    return f"{station}/{folder}/{file_name}"


class Syncer:
    """The sync thread of one station database (see the module docstring)."""

    def __init__(self, store: Store, archive: Callable[[], CentralArchive], objects: Callable[[], Any],
                 station: str, interval_s: float = 2.0, backoff_max_s: float = 60.0) -> None:
        self.store = store
        self._archive_factory = archive
        self._objects_factory = objects
        self._archive: CentralArchive | None = None
        self._objects: Any = None
        self.station = station
        self.interval_s = interval_s
        self.backoff_max_s = backoff_max_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._orders: dict[int, int] = {}  # local order id -> central id
        self._lock = threading.Lock()
        self.last_ok: datetime | None = None
        self.problem: str | None = None
        self.retry_at: float | None = None
        self.sent = 0
        self.has_lease = False
        self._backoff = 0.0
        self._last_backfill = 0.0

    # -- the connections, made on first use (a station starts while the archive is down)
    def archive(self) -> CentralArchive:
        if self._archive is None:
            archive = self._archive_factory()
            try:
                archive.upgrade()
            except BaseException:
                archive.close()  # its connection pool; a new one is made at the next try
                raise
            self._archive = archive
        return self._archive

    def objects(self) -> Any:
        if self._objects is None:
            objects = self._objects_factory()
            objects.check()
            self._objects = objects
        return self._objects

    # -- one pass
    def _send_order(self, order_id: int) -> int | None:
        """Write the order's row centrally (with its video once closed); its central id, None if it is gone."""
        row = self.store.order_row(order_id)
        if row is None:
            return None
        station = row.get("station") or self.station
        video_key = None
        if row.get("video_file") and row["status"] == "closed":
            path = self.store.get_order(order_id).video_path  # in the trash folder while the order is there
            if path is not None and path.is_file():
                video_key = object_key(station, row["folder"], row["video_file"])
                self.objects().put_file(video_key, path, mimetypes.guess_type(path.name)[0])
        central_id = self.archive().put_order(station, row, video_key=video_key)
        self._orders[order_id] = central_id
        return central_id

    def _send_image(self, image_id: int) -> bool:
        """Upload the image's file and write its row; False if the image is gone from the station (purged)."""
        row = self.store.image_row(image_id)
        if row is None or row["state"] == "pending":
            return False
        order = self.store.order_row(row["order_id"])
        if order is None:
            return False
        central_order = self._orders.get(row["order_id"]) or self._send_order(row["order_id"])
        station = row.get("station") or self.station
        path = self.store.get_image(image_id).path  # in the order's trash folder while trashed
        if not path.is_file():
            raise FileGone(f"{path} is missing on the station's disk")
        key = object_key(station, order["folder"], row["file_name"])
        md5 = self.objects().put_file(key, path, mimetypes.guess_type(path.name)[0])
        self.archive().put_image(station, central_order, row, key, md5, path.stat().st_size)  # type: ignore[arg-type]
        return True

    def _send(self, entry: OutboxEntry) -> None:
        if entry.entity == "order":
            self._send_order(entry.entity_id)
        else:
            self._send_image(entry.entity_id)

    def run_once(self, limit: int = BATCH) -> int:
        """Send up to ``limit`` outbox lines, oldest first; returns how many were sent. Raises
        :class:`CentralError` / the object store's error when the archive cannot be used (the line stays)."""
        from utils.archive.objects import ObjectStoreError

        sent = 0
        for entry in self.store.outbox_waiting(limit):
            if self._stop.is_set():
                break
            try:
                self._send(entry)
            except FileGone as err:
                logger.error("Cannot send %s %d to the archive: %s", entry.entity, entry.entity_id, err)
                self.store.outbox_retry(entry, str(err), give_up=True)
                continue
            except (CentralError, ObjectStoreError) as err:
                self.store.outbox_retry(entry, str(err))
                raise
            self.store.outbox_done(entry)
            sent += 1
        if sent:
            with self._lock:
                self.sent += sent
                self.last_ok = utc_now()
        return sent

    # -- the thread
    def start(self) -> "Syncer":
        if self.wake not in self.store.listeners:
            self.store.listeners.append(self.wake)  # a new image in this process: sent at once
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="archive-sync", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.wake in self.store.listeners:
            self.store.listeners.remove(self.wake)
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.store.release_lease(LEASE, self.holder)
        except StorageError:
            pass
        self.has_lease = False

    def wake(self) -> None:
        """Look at the outbox now (after a new image), instead of at the next interval."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.interval_s
            try:
                self._drop_dead_holder()
                self.has_lease = self.store.acquire_lease(LEASE, self.holder, ttl_s=max(30.0, 3 * self.backoff_max_s))
                if self.has_lease:
                    wait = self._step()
            except StorageError as err:  # the station's own database: shown, tried again
                self.problem = f"the station's database: {err}"
                logger.warning("Sync: %s", err)
            except Exception:  # noqa: BLE001 - the thread outlives any error; it is logged with its traceback
                logger.exception("Sync: unexpected error; trying again in %.0f s", self.backoff_max_s)
                self.problem = "unexpected error (see the log)"
                wait = self.backoff_max_s
            self._wake.wait(wait)
            self._wake.clear()

    def _drop_dead_holder(self) -> None:
        """Take the lease back at once from a process of this computer that died: a restarted station syncs right
        away."""
        from utils.jobs import drop_dead_holder

        drop_dead_holder(self.store, LEASE, self.holder)

    def _step(self) -> float:
        """One round: backfill now and then, send what waits; returns the seconds to wait before the next."""
        from utils.archive.objects import ObjectStoreError, ObjectStoreUnavailable

        now = time.monotonic()
        if now - self._last_backfill > BACKFILL_EVERY_S:
            queued = self.store.outbox_backfill()
            if queued:
                logger.info("Sync: %d rows not yet in the archive queued", queued)
            self.store.outbox_prune(utc_now() - PRUNE_AFTER)
            self._last_backfill = now
        try:
            sent = self.run_once()
        except (CentralUnavailable, ObjectStoreUnavailable) as err:
            return self._failed(str(err), transient=True)
        except (CentralError, ObjectStoreError) as err:
            if self._archive is not None:
                self._archive.close()
            self._archive = self._objects = None  # made anew at the next try (the cause may be fixed there)
            return self._failed(str(err), transient=False)
        self._backoff = 0.0
        self.problem = None
        self.retry_at = None
        return 0.0 if sent >= BATCH else self.interval_s

    def _failed(self, reason: str, transient: bool) -> float:
        self._backoff = min(self.backoff_max_s, max(1.0, self._backoff * 2))
        if not transient:
            self._backoff = self.backoff_max_s
        if reason != self.problem:
            logger.warning("Sync: %s (next try in %.0f s)", reason, self._backoff)
        self.problem = reason
        self.retry_at = time.monotonic() + self._backoff
        return self._backoff

    def status(self) -> SyncStatus:
        """The backlog and the state of the sync, for the pages."""
        retry = None if self.retry_at is None else max(0.0, self.retry_at - time.monotonic())
        holder = self.store.lease_holder(LEASE)
        return SyncStatus(running=self.running, holder=holder is not None and holder[0] == self.holder,
                          backlog=self.store.outbox_backlog(), last_ok=self.last_ok, problem=self.problem,
                          retry_in_s=retry, sent=self.sent)


_syncers: dict[str, Syncer] = {}
_syncers_lock = threading.Lock()


def ensure_syncer(store: Store, settings: Any) -> Syncer | None:
    """This process's sync thread for the store's database (started once), or None without an archive."""
    if not settings.archive_enabled:
        return None
    from utils.archive.objects import object_store_for

    url = settings.CENTRAL_DATABASE_URL.get_secret_value()
    key = store.database_key
    with _syncers_lock:
        syncer = _syncers.get(key)
        if syncer is None or not syncer.running:
            syncer = Syncer(
                store,
                archive=lambda: CentralArchive(url),
                objects=lambda: object_store_for(settings),
                station=settings.STATION_NAME,
                interval_s=settings.SYNC_INTERVAL_S,
                backoff_max_s=settings.SYNC_BACKOFF_MAX_S,
            ).start()
            _syncers[key] = syncer
        return syncer


def stop_all_syncers() -> None:
    """Stop every sync thread of this process and give their leases back (tests, shutdown)."""
    with _syncers_lock:
        for syncer in _syncers.values():
            syncer.stop()
        _syncers.clear()
