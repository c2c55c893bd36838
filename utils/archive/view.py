"""The central view of the archive: every station's orders grouped by order number, their images, counts over
time, thumbnails and the ZIP of an order spread over stations. What the Archive pages and the API's ``/archive``
routes call; they read the central database (:class:`CentralArchive`) and the object store only.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from utils.archive.central import CentralArchive, CentralError
from utils.exports import ZipSink
from utils.imaging import ImageDecodeError, decode_image

ZIP_CHUNK = 1 << 20


@dataclass
class ArchivedOrder:
    """One order number with every station's run of it."""

    order_number: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # central order rows, oldest first

    @property
    def stations(self) -> list[str]:
        return sorted({r["station"] for r in self.runs})

    @property
    def n_images(self) -> int:
        return sum(int(r.get("n_images") or 0) for r in self.runs)

    @property
    def started_at(self) -> datetime:
        return min(r["started_at"] for r in self.runs)

    @property
    def status(self) -> str:
        return "open" if any(r["status"] == "open" for r in self.runs) else "closed"

    @property
    def ids(self) -> list[int]:
        return [int(r["id"]) for r in self.runs]


def archived_orders(central: CentralArchive, station: str | None = None, search: str = "",
                    since: date | None = None, until: date | None = None) -> list[ArchivedOrder]:
    """Order numbers (newest first), each with its runs at every station (or one); ``search``: part of the number;
    ``since``/``until``: the day a run started (local days of the runs' times)."""
    grouped: dict[str, ArchivedOrder] = {}
    needle = search.strip().casefold()
    for row in central.list_orders(station=station):
        if row.get("trashed_at") is not None:
            continue
        if needle and needle not in row["order_number"].casefold():
            continue
        day = row["started_at"].astimezone().date()
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        grouped.setdefault(row["order_number"], ArchivedOrder(row["order_number"])).runs.append(row)
    for order in grouped.values():
        order.runs.sort(key=lambda r: (r["started_at"], r["station"]))
    return sorted(grouped.values(), key=lambda o: o.started_at, reverse=True)


def order_images(central: CentralArchive, order: ArchivedOrder, station: str | None = None) -> list[dict[str, Any]]:
    """The kept images of every run of the order (or one station's), in capture order."""
    ids = [r["id"] for r in order.runs if station is None or r["station"] == station]
    return central.images(order_ids=ids) if ids else []


def thumbnail_bytes(objects: Any, key: str, max_side: int = 320) -> bytes | None:
    """A JPEG thumbnail of an archived image (None when it cannot be read or decoded)."""
    try:
        data = objects.read_bytes(key)
    except (OSError, RuntimeError):
        return None
    return thumbnail_from_bytes(data, max_side)


def thumbnail_from_bytes(data: bytes, max_side: int = 320) -> bytes | None:
    """A JPEG thumbnail of encoded image bytes (None when they cannot be decoded)."""
    try:
        img = decode_image(data, max_side=max_side)
    except (ImageDecodeError, OSError):
        return None
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=85)
    return buf.getvalue()


IMAGE_COLUMNS = ["station", "order_number", "captured_at", "kind", "width", "height", "size_bytes", "distance",
                 "file_name", "brightness", "contrast", "sharpness", "dominant_hex"]


def images_frame(central: CentralArchive, station: str | None = None) -> pd.DataFrame:
    """One row per archived image (kept, all stations or one) with its order number and its statistics (empty
    until the central indexer computed them): the statistics' table."""
    frame = pd.DataFrame([{k: r.get(k) for k in IMAGE_COLUMNS} for r in central.images_with_stats(station)],
                         columns=IMAGE_COLUMNS)
    if not frame.empty:
        frame["captured_at"] = pd.to_datetime(frame["captured_at"], utc=True)
    return frame


def per_day(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per local day and station (columns: day, station, images)."""
    if frame.empty:
        return pd.DataFrame(columns=["day", "station", "images"])
    local = frame["captured_at"].dt.tz_convert(datetime.now().astimezone().tzinfo)
    out = frame.assign(day=local.dt.date).groupby(["day", "station"]).size().reset_index(name="images")
    return out


def order_zip_chunks(central: CentralArchive, objects: Any, order: ArchivedOrder) -> Iterator[bytes]:
    """The ZIP of an order spread over stations: ``<station>/<folder>/<file>`` for every image (streamed from the
    object store, 1 MB at a time) and ``images.csv`` with station, order, file, time, size and MD5."""
    sink = ZipSink()
    folders = {r["id"]: (r["station"], r["folder"]) for r in order.runs}
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["station", "order_number", "folder", "file_name", "captured_at", "width", "height", "size_bytes",
                     "md5", "kind"])
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for row in order_images(central, order):
            station, folder = folders[row["order_id"]]
            info = zipfile.ZipInfo(f"{station}/{folder}/{row['file_name']}",
                                   date_time=row["captured_at"].astimezone().timetuple()[:6])
            with zf.open(info, "w", force_zip64=True) as out:
                for piece in objects.read_chunks(row["object_key"], ZIP_CHUNK):
                    out.write(piece)
                    yield sink.take()
            writer.writerow([station, order.order_number, folder, row["file_name"], row["captured_at"].isoformat(),
                             row["width"], row["height"], row["size_bytes"], row["md5"], row["kind"]])
        zf.writestr("images.csv", table.getvalue())
    yield sink.take()


@dataclass
class ArchiveAccess:
    """The central database and the object store of the settings, opened once per process."""

    central: CentralArchive
    objects: Any
    where: str  # the object store, described without secrets


def open_archive(settings: Any) -> ArchiveAccess:
    """Open (and upgrade) the central archive of the settings; raises :class:`utils.archive.central.CentralError`
    or :class:`utils.archive.objects.ObjectStoreError` with what to fix."""
    from utils.archive.objects import object_store_for

    if not settings.archive_configured:
        raise CentralError("no central archive is set: CENTRAL_DATABASE_URL and STORAGE_URL")
    central = CentralArchive(settings.CENTRAL_DATABASE_URL.get_secret_value())
    central.upgrade()
    objects = object_store_for(settings)
    if settings.APP_MODE == "central":  # the office computes the statistics of what the stations send
        from utils.archive.indexer import ensure_central_indexer

        ensure_central_indexer(central, objects)
    return ArchiveAccess(central, objects, objects.describe())
