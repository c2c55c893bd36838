"""Exports: an order as a ZIP (images, video, metadata CSV)."""

from __future__ import annotations

import csv
import io
import zipfile

from utils.storage import OrderRecord, Store

IMAGE_COLUMNS = ["order_number", "folder", "seq", "file_name", "captured_at", "width", "height", "size_bytes",
                 "distance", "forced", "camera"]


def order_images_csv(store: Store, order: OrderRecord) -> str:
    """One row per kept image of the order."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(IMAGE_COLUMNS)
    for rec in store.images(order.id):
        writer.writerow([order.order_number, order.folder.name, rec.seq, rec.file_name,
                         rec.captured_at.isoformat(), rec.width, rec.height, rec.size_bytes,
                         "" if rec.distance is None else f"{rec.distance:.6f}", int(rec.forced), rec.camera or ""])
    return buf.getvalue()


def order_zip(store: Store, order: OrderRecord) -> bytes:
    """ZIP of the order's kept images (not the trash), its video and ``images.csv``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:  # JPEG/MP4 don't compress further
        for rec in store.images(order.id):
            if rec.path.is_file():
                zf.write(rec.path, f"{order.folder.name}/{rec.file_name}")
        if order.video_path is not None and order.video_path.is_file():
            zf.write(order.video_path, f"{order.folder.name}/{order.video_path.name}")
        zf.writestr(f"{order.folder.name}/images.csv", order_images_csv(store, order))
    return buf.getvalue()
