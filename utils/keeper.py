"""Keep the distinct frames of one order: the decision (:class:`utils.decision.Decider`) and the saving (JPEG with
EXIF, or the camera's bytes, through :meth:`utils.storage.Store.save_image`).

One code path for the live capture (``ImageProcessingThread.CaptureWorker``) and for ``extract.py`` (recorded
images and videos), so both decide and save alike.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from communication import sniff_image_type
from utils.decision import Decider, Decision, Descriptor, FeatureIndex
from utils.imaging import ImageDecodeError, decode_image, encode_jpeg, make_exif
from utils.storage import ImageRecord, OrderRecord, StorageError, Store

logger = logging.getLogger(__name__)


def kept_features(store: Store, order_id: int, descriptor: Descriptor) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(image ids, features, saved-by-hand flags) of an order's kept images, in the descriptor's layout.

    Images kept by another version or with another descriptor (features of another length, or none) are
    described again from their files, and the new features are stored.
    """
    dim = descriptor.layout.dim
    ids, rows, forced, redone = [], [], [], {}
    for image_id, blob, is_forced, path in store.feature_records(order_id):
        if blob is not None and len(blob) == 4 * dim:
            vector = np.frombuffer(blob, dtype=np.float32)
        else:
            try:
                vector = descriptor.describe(decode_image(path.read_bytes(), max_side=1024))
            except (OSError, ImageDecodeError) as err:
                logger.warning("Image %s of order %s left out of the comparison: %s", path.name, order_id, err)
                continue
            redone[image_id] = vector
        ids.append(image_id)
        rows.append(vector)
        forced.append(is_forced)
    if redone:
        store.set_features(redone)
        logger.info("Described %d kept image(s) of order %s again for %s", len(redone), order_id, descriptor.status.name)
    matrix = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return ids, matrix, np.array(forced, dtype=bool)


@dataclass(frozen=True)
class Offered:
    """What became of one frame offered to the :class:`Keeper`."""

    decision: Decision
    record: ImageRecord | None = None  # the saved image when it was kept and saved


class Keeper:
    """Decides about the frames of one order and saves the ones to keep. One per run; not thread-safe."""

    def __init__(self, store: Store, descriptor: Descriptor, order: OrderRecord, *, threshold: float,
                 settle_frames: int, jpeg_quality: int = 95, camera_name: str = "", resume: bool = False) -> None:
        self.store = store
        self.descriptor = descriptor
        self.order = order
        self.jpeg_quality = jpeg_quality
        self.camera_name = camera_name
        index = FeatureIndex(descriptor.layout)
        if resume:
            _, feats, _ = kept_features(store, order.id, descriptor)
            index.extend(feats)
        self.decider = Decider(descriptor.layout, threshold, settle_frames, index,
                               adaptive=descriptor.mode == "regional")

    @property
    def kept(self) -> int:
        return len(self.decider.index)

    def set_threshold(self, threshold: float) -> None:
        self.decider.threshold = float(threshold)

    def offer(self, image: Image.Image, prepared: Any, captured_at: datetime, *, still: bool = False,
              force: bool = False, original: bytes | None = None) -> Offered:
        """Decide about one frame (``prepared`` by the descriptor) and save it if it is to be kept.

        ``original``: the camera's bytes, saved untouched instead of a JPEG of ``image``. Raises StorageError
        when a kept frame cannot be saved (nothing is left half-written; a later frame of the scene is kept).
        """
        features = self.descriptor.describe_prepared(prepared)
        decision = self.decider.step(features, still=still, force=force)
        if not decision.keep:
            return Offered(decision)
        record = self._save(image, features, decision, captured_at, original)
        self.decider.kept(features)
        return Offered(decision, record)

    def _save(self, image: Image.Image, features: np.ndarray, decision: Decision, captured_at: datetime,
              original: bytes | None) -> ImageRecord:
        dist = None if np.isinf(decision.distance) else float(decision.distance)
        if original is not None:
            kind = sniff_image_type(original) or "jpeg"
            suffix = ".jpg" if kind == "jpeg" else f".{kind}"
            data = original
            width, height = Image.open(io.BytesIO(data)).size  # header only
        else:
            exif = make_exif(captured_at, self.order.order_number, dist, camera=self.camera_name)
            data = encode_jpeg(image, self.jpeg_quality, exif)
            suffix = ".jpg"
            width, height = image.size
        return self.store.save_image(
            self.order, data, features, captured_at, width=width, height=height, distance=dist,
            forced=decision.forced, camera=self.camera_name, suffix=suffix,
        )


__all__ = ["Keeper", "Offered", "StorageError", "kept_features"]
