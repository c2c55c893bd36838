"""Exports: an order as a ZIP (images, video, metadata CSV), streamed from disk.

The ZIP is never built in memory: :func:`order_zip_chunks` writes it in pieces of at most ``CHUNK`` bytes while
the files are read, so a 1 GB order costs the dashboard about one chunk per download. Only regular files inside
EXPORT_DIR go in: a symbolic link (to ``/etc/passwd``, or to another order) is left out and logged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

from utils.storage import OrderRecord, Store

logger = logging.getLogger(__name__)

IMAGE_COLUMNS = ["order_number", "folder", "seq", "file_name", "captured_at", "width", "height", "size_bytes",
                 "distance", "forced", "camera", "kind", "source_seq", "operation", "tool", "source_url"]
CHUNK = 1 << 20  # bytes read from a file, and written to the client, at a time


def order_images_csv(store: Store, order: OrderRecord) -> str:
    """One row per kept image of the order (versions too: the image they were made from, the operation as JSON and
    the tool that ran)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(IMAGE_COLUMNS)
    records = store.images(order.id)
    seq_of = {rec.id: rec.seq for rec in records}
    for rec in records:
        source_seq = seq_of.get(rec.source_image_id, "") if rec.source_image_id is not None else ""
        writer.writerow([order.order_number, order.folder.name, rec.seq, rec.file_name,
                         rec.captured_at.isoformat(), rec.width, rec.height, rec.size_bytes,
                         "" if rec.distance is None else f"{rec.distance:.6f}", int(rec.forced), rec.camera or "",
                         rec.kind, source_seq, json.dumps(rec.operation, sort_keys=True) if rec.operation else "",
                         rec.tool or "", rec.source_url or ""])
    return buf.getvalue()


def safe_file(store: Store, path: Path) -> bool:
    """A regular file (not a symbolic link) that lies inside EXPORT_DIR, also after resolving every link."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        path.resolve(strict=True).relative_to(store.export_dir.resolve())
    except (ValueError, OSError):
        return False
    return True


def order_zip_entries(store: Store, order: OrderRecord) -> list[tuple[str, Path]]:
    """(name in the ZIP, file) of the order's kept images (not the trash) and its video, links left out."""
    files = [rec.path for rec in store.images(order.id)]
    if order.video_path is not None:
        files.append(order.video_path)
    entries = []
    for path in files:
        if safe_file(store, path):
            entries.append((f"{order.folder.name}/{path.name}", path))
        elif path.is_symlink() or path.exists():
            logger.warning("Left out of the ZIP of order %s: %s is a link or not inside EXPORT_DIR",
                           order.order_number, path)
    return entries


class ZipSink(io.RawIOBase):
    """A write-only, unseekable file whose bytes are taken out as they come (zipfile then streams)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as src:
        while block := src.read(CHUNK):
            yield block


def order_zip_chunks(store: Store, order: OrderRecord) -> Iterator[bytes]:
    """The order's ZIP (``FOLDER/<image files>``, its video, ``FOLDER/images.csv``), piece by piece; images whose
    local copy was removed (``ARCHIVE_LOCAL_KEEP_DAYS``) are read from the central archive."""
    sink = ZipSink()
    sources: list[tuple[str, Iterator[bytes]]] = [(name, _file_chunks(path))
                                                  for name, path in order_zip_entries(store, order)]
    sources += [(f"{order.folder.name}/{rec.file_name}", store.image_chunks(rec, CHUNK))
                for rec in store.images(order.id) if rec.local_removed_at is not None and not rec.path.exists()]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:  # JPEG/MP4 don't compress further
        for name, chunks in sources:
            with zf.open(name, "w", force_zip64=True) as dst:
                for block in chunks:
                    dst.write(block)
                    if sum(map(len, sink.parts)) >= CHUNK:
                        yield sink.take()
            yield sink.take()
        zf.writestr(f"{order.folder.name}/images.csv", order_images_csv(store, order))
    yield sink.take()
