"""Extract the distinct images of something recorded: a folder of images or a video, into an order.

The live decision runs unchanged (:class:`utils.keeper.Keeper`: same descriptor, threshold, settle logic, saving
with EXIF and rows), so an extracted order is like a captured one. A folder of stills is a scene held still per
image (settled at once, like the demo camera); a video is a camera stream (settling applies to its frames).
Used by ``extract.py`` (command line) and the dashboard's Extract page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from communication import IMAGE_EXTENSIONS
from utils.config import Settings
from utils.decision import Descriptor
from utils.imaging import ImageDecodeError, decode_image, fit_max_side, from_array
from utils.keeper import Keeper
from utils.stats_store import backfill
from utils.storage import OrderRecord, StorageError, Store, validate_order_number

logger = logging.getLogger(__name__)


class ExtractError(ValueError):
    """The source cannot be read at all; the message says what to do."""


@dataclass
class SourceFrame:
    """One frame of the source: where it came from, its image, and (stills) the file's bytes."""

    source: str | int  # file name (folder) or 0-based frame index (video)
    image: Image.Image
    data: bytes | None = None
    captured_at: datetime | None = None


@dataclass
class Extraction:
    """What an extraction produced."""

    order: OrderRecord
    frames: int = 0
    kept: list[dict] = field(default_factory=list)  # {"source", "file", "distance"}
    errors: list[str] = field(default_factory=list)  # unreadable files, with why
    stopped_at: int | None = None  # a video that broke off: the first frame that could not be read
    expected_frames: int | None = None

    def as_json(self) -> dict:
        out: dict = {"order": self.order.order_number, "folder": self.order.folder.name, "frames": self.frames,
                     "kept": self.kept}
        if self.errors:
            out["errors"] = self.errors
        if self.stopped_at is not None:
            out["stopped_at"] = self.stopped_at
            out["expected_frames"] = self.expected_frames
        return out


def image_files(folder: Path) -> list[Path]:
    """The images of a folder in name order (the folder camera's rules: extensions in any case)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                  key=lambda p: p.name)


class Source:
    """Frames of a folder of images or of a video file, with their count when known."""

    def __init__(self, path: Path, resolution: int) -> None:
        self.path = Path(path)
        self.resolution = resolution
        self.stills = self.path.is_dir()
        self.errors: list[str] = []
        self.stopped_at: int | None = None
        if self.stills:
            self.files = image_files(self.path)
            if not self.files:
                raise ExtractError(f"{self.path} holds no images ({' '.join(IMAGE_EXTENSIONS)}, any case).")
            self.total: int | None = len(self.files)
            return
        if not self.path.is_file():
            raise ExtractError(f"{self.path} is neither a folder of images nor a video file.")
        cap = cv2.VideoCapture(str(self.path))
        ok = cap.isOpened() and cap.read()[0]
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 5.0
        cap.release()
        if not ok:
            raise ExtractError(f"{self.path} cannot be read as a video (OpenCV: no frame). Give a video file "
                               "(mp4, avi, mkv...) or a folder of images.")
        self.total = count or None

    def frames(self) -> Iterator[SourceFrame]:
        return self._stills() if self.stills else self._video()

    def _stills(self) -> Iterator[SourceFrame]:
        for path in self.files:
            try:
                data = path.read_bytes()
                image = decode_image(data, max_side=self.resolution)
            except (OSError, ImageDecodeError) as err:
                self.errors.append(f"{path.name}: {err}")
                logger.warning("Extract: %s skipped: %s", path.name, err)
                continue
            when = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            yield SourceFrame(path.name, image, data, when)

    def _video(self) -> Iterator[SourceFrame]:
        cap = cv2.VideoCapture(str(self.path))
        start = datetime.fromtimestamp(self.path.stat().st_mtime, timezone.utc)
        index = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
                yield SourceFrame(index, from_array(np.ascontiguousarray(rgb)), None,
                                  start + timedelta(seconds=index / self.fps))
                index += 1
        finally:
            cap.release()
        if self.total is not None and index < self.total:
            self.stopped_at = index
            logger.warning("Extract: the video %s stopped at frame %d of %d", self.path.name, index, self.total)


def order_number_from_name(name: str, max_length: int = 64) -> str:
    """An order number from a file or folder name (``recording 17`` -> ``recording-17``)."""
    cleaned = "".join(c if c.isalnum() or c in "-_.+#" else "-" for c in name).strip("-. ")[:max_length] or "extract"
    return validate_order_number(cleaned, max_length)


def default_order_number(source: Path, max_length: int = 64) -> str:
    """An order number from the source's name (``recording-17.mp4`` -> ``recording-17``)."""
    return order_number_from_name(source.stem if source.is_file() else source.name, max_length)


def extract(source: Path, store: Store, descriptor: Descriptor, settings: Settings, *, order_number: str | None = None,
            threshold: float | None = None, progress: Callable[[int, int | None, int], None] | None = None,
            compute_stats: bool = True) -> Extraction:
    """Run the live decision over ``source`` into a new (or resumed) order; returns what was kept.

    Raises :class:`ExtractError` for a source that cannot be read at all, OrderNumberError for a bad number.
    ``progress(frames done, frames in all or None, kept)`` is called after every frame.
    """
    src = Source(source, settings.initial_resolution)
    number = order_number or default_order_number(Path(source), settings.ORDER_NUMBER_MAX_LENGTH)
    th = settings.OPTIONS_TH_INIT if threshold is None else float(threshold)
    if not math.isfinite(th) or th < 0:
        raise ValueError("the threshold must be a number of at least 0")
    order, resumed = store.open_order(number, "distinct images", threshold=th, images_per_second=None,
                                      resolution=settings.initial_resolution, camera=f"extract {Path(source).name}",
                                      descriptor=str(descriptor.status), max_length=settings.ORDER_NUMBER_MAX_LENGTH)
    keeper = Keeper(store, descriptor, order, threshold=th, settle_frames=settings.settle_frames,
                    jpeg_quality=settings.IMAGE_SAVE_QUALITY, camera_name=f"extract {Path(source).name}",
                    resume=resumed)
    result = Extraction(order, expected_frames=src.total)
    try:
        for frame in src.frames():
            prepared = descriptor.prepare(frame.image)
            image = fit_max_side(frame.image, settings.initial_resolution)
            original = frame.data if settings.KEEP_ORIGINAL_BYTES else None
            when = frame.captured_at or datetime.now(timezone.utc)
            offered = keeper.offer(image, prepared, when, still=src.stills, original=original)
            result.frames += 1
            if offered.record is not None:
                distance = offered.decision.distance
                result.kept.append({"source": frame.source, "file": offered.record.file_name,
                                    "distance": None if math.isinf(distance) else round(distance, 6)})
            if progress is not None:
                progress(result.frames, src.total, len(result.kept))
    finally:
        result.order = store.close_order(order.id)
    result.errors, result.stopped_at = src.errors, src.stopped_at
    if compute_stats:
        backfill(store, settings.AVERAGING_METHOD)
    logger.info("Extracted %d of %d frame(s) of %s into order %s", len(result.kept), result.frames, source,
                order.order_number)
    return result


__all__ = ["ExtractError", "Extraction", "StorageError", "default_order_number", "extract", "image_files",
           "order_number_from_name"]
