"""Statistics of the archived images, computed centrally from the files in the object store (brightness,
contrast, sharpness, average and dominant colour: :func:`utils.image_stats.compute_stats`, the stations' own
computation), so that the central view shows them for every station, older station versions included.

The central dashboard and the central API each run a thread that takes the images without statistics, oldest
first, a batch at a time. Two processes may compute the same image at once; the second write is ignored.
An image that cannot be read or decoded gets its ``error`` and is not tried again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from utils.archive.central import CentralArchive, CentralError, CentralUnavailable
from utils.image_stats import ImageStatsError, compute_stats

logger = logging.getLogger(__name__)

BATCH = 50
IDLE_S = 10.0  # seconds between looks when everything is computed
RETRY_S = 30.0  # after the archive could not be reached


def index_once(central: CentralArchive, objects: Any, limit: int = BATCH) -> int:
    """Compute the statistics of up to ``limit`` archived images that have none; returns how many were done.
    Raises :class:`CentralError` when the central database cannot be used."""
    from utils.archive.objects import ObjectStoreError, ObjectStoreUnavailable

    done = 0
    for row in central.images_without_stats(limit):
        try:
            stats = compute_stats(objects.read_bytes(row["object_key"]))
        except ObjectStoreUnavailable:
            raise
        except (ImageStatsError, ObjectStoreError, OSError) as err:
            logger.warning("Archive statistics of %s: %s", row["file_name"], err)
            central.put_stats(row["id"], {"error": str(err)[:500]})
        else:
            r = stats.as_row()
            central.put_stats(row["id"], {"brightness": r["brightness"], "contrast": r["contrast"],
                                          "sharpness": r["sharpness"], "avg_hex": r["avg_hex"],
                                          "dominant_hex": r["dominant_hex"]})
        done += 1
    return done


class CentralIndexer:
    """The thread of one process that keeps the archive's statistics computed."""

    def __init__(self, central: CentralArchive, objects: Any) -> None:
        self.central, self.objects = central, objects
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archive-indexer", daemon=True)
        self.problem: str | None = None

    def start(self) -> "CentralIndexer":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        from utils.archive.objects import ObjectStoreUnavailable

        while not self._stop.is_set():
            wait = IDLE_S
            try:
                if index_once(self.central, self.objects) >= BATCH:
                    wait = 0.0
                self.problem = None
            except (CentralUnavailable, ObjectStoreUnavailable) as err:
                self.problem, wait = str(err), RETRY_S
            except CentralError as err:
                self.problem, wait = str(err), RETRY_S
                logger.warning("Archive statistics: %s", err)
            except Exception:  # noqa: BLE001 - the thread outlives any error; it is logged with its traceback
                logger.exception("Archive statistics: unexpected error; trying again in %.0f s", RETRY_S)
                wait = RETRY_S
            self._stop.wait(wait)


_indexers: dict[int, CentralIndexer] = {}
_lock = threading.Lock()


def ensure_central_indexer(central: CentralArchive, objects: Any) -> CentralIndexer:
    """The statistics thread of this archive in this process (started once)."""
    with _lock:
        indexer = _indexers.get(id(central))
        if indexer is None or not indexer.running:
            indexer = _indexers[id(central)] = CentralIndexer(central, objects).start()
        return indexer


def stop_all_central_indexers() -> None:
    """Stop every statistics thread of this process (tests, shutdown)."""
    with _lock:
        for indexer in _indexers.values():
            indexer.stop()
        _indexers.clear()
