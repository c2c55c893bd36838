"""A station's own copies of archived images: removed after ``ARCHIVE_LOCAL_KEEP_DAYS`` once the central archive
has them (default: kept), and read back from the archive when the gallery, the ZIP or a tool needs them.

A copy goes only when all of this holds: its order is closed, the archive confirmed the image more than
``ARCHIVE_LOCAL_KEEP_DAYS`` ago and nothing about it waits in the outbox, and the object in the store has the same
MD5 as the file on disk (checked right before the removal). The row stays (with ``local_removed_at``), so the
gallery, the statistics and the re-filter go on as before; the bytes come from the object store.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from utils.archive.objects import object_store_for
from utils.archive.sync import object_key
from utils.storage import ImageRecord, Store, utc_now

logger = logging.getLogger(__name__)


def key_of(store: Store, rec: ImageRecord, station: str) -> str:
    """The image's key in the object store (as the sync put it there)."""
    return object_key(rec.station or station, store.get_order(rec.order_id).folder.name, rec.file_name)


def archive_reader(store: Store, settings: Any) -> Callable[[ImageRecord], Iterator[bytes]]:
    """For :attr:`Store.remote`: the bytes of an image from the archive (the store opened on first use)."""
    held: dict[str, Any] = {}
    lock = threading.Lock()

    def read(rec: ImageRecord) -> Iterator[bytes]:
        from utils.archive.objects import ObjectStoreError

        with lock:
            if "objects" not in held:
                held["objects"] = object_store_for(settings)
        try:
            yield from held["objects"].read_chunks(key_of(store, rec, settings.STATION_NAME))
        except ObjectStoreError as err:  # for the callers, a file that cannot be read, with the reason
            raise OSError(f"{rec.file_name} is only in the central archive, which cannot give it now: {err}") from None

    return read


def _md5(path: Any) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def remove_archived_copies(store: Store, settings: Any, objects: Any | None = None,
                           stop: Callable[[], bool] | None = None) -> str:
    """Remove the local copies that may go (see the module docstring); returns a one-line result for the jobs table.
    An object missing or different in the store keeps the copy, and is logged."""
    days = settings.ARCHIVE_LOCAL_KEEP_DAYS
    if days is None:
        return "not run: ARCHIVE_LOCAL_KEEP_DAYS is empty (every local copy is kept)"
    objects = objects if objects is not None else object_store_for(settings)
    removed = freed = 0
    kept: set[int] = set()
    cutoff = utc_now() - timedelta(days=days)
    while not (stop and stop()):
        due = [rec for rec in store.local_copies_due(cutoff, limit=500 + len(kept)) if rec.id not in kept]
        if not due:
            break
        for rec in due:
            info = objects.head(key_of(store, rec, settings.STATION_NAME))
            if not rec.path.is_file() and info is not None:  # gone already (by hand): the archive has it
                store.remove_local_copy(rec)
                continue
            local = _md5(rec.path) if rec.path.is_file() else "(no file here either)"
            if info is None or info.md5 != local:
                logger.warning("Keeping %s: the archive's copy is %s", rec.path,
                               "missing" if info is None else f"different (MD5 {info.md5}, here {local})")
                kept.add(rec.id)
                continue
            size = rec.path.stat().st_size
            store.remove_local_copy(rec)
            removed += 1
            freed += size
    kept_n = len(kept)
    result = f"{removed} local copies removed ({freed / 1e6:,.1f} MB freed), older than {days:g} days in the archive"
    return result + (f"; {kept_n} kept: the archive's copy is missing or different (see the log)" if kept_n else "")
