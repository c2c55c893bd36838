"""The decision of what to keep, frame by frame: one code path for the live capture, ``extract.py``, re-filtering
("Update images") and ``bench/quality.py``.

A frame is kept when

* the scene has **settled**: the last ``settle_frames`` frames were each close to the frame before them (their
  distance at most :data:`SETTLE_LIMIT`, whatever the threshold: still is still). A hand passing, a person walking through, a blurred frame:
  the scene moves, nothing is judged; the frame kept is the settled one after it. A still from a folder of images
  (the demo camera, ``extract.py`` on a folder) is a scene held still: it is settled at once. ``settle_frames=0``
  judges every frame alone (the original app);
* and it is **distinct**: its distance to the nearest image kept for the order is above the threshold
  (:mod:`utils.decision.index` defines the distance).

"Save image" (``force``) keeps the next frame whatever its distance and whether the scene has settled.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from utils.decision.index import FeatureIndex, Layout, distances, region_distances

SETTLE_LIMIT = 0.2  # consecutive frames at most this far apart (noise allowance applied) count as a still scene
NOISE_WINDOW = 30  # frames over which each region's noise is measured
NOISE_MIN_SAMPLES = 6  # measured noise is used once this many frame pairs were seen
NOISE_PERCENTILE = 25  # a region's noise: this percentile of its frame-to-frame distances (hands pass above it)
NOISE_REFERENCE = 0.05  # the noise the distance scale assumes; a noisier region's distances are divided down
NOISE_MAX_ALLOWANCE = 4.0  # ... by at most this: a scene that changes all the time is not noise


def is_distinct(distance: float, threshold: float) -> bool:
    """Distinct when the nearest kept image is farther than the threshold."""
    return distance > threshold


@dataclass(frozen=True)
class Decision:
    """What :meth:`Decider.step` decided about one frame (the live view shows it)."""

    keep: bool
    distance: float  # to the nearest kept image (inf: none kept yet)
    motion: float | None  # to the frame before (None: the first frame)
    settling: bool  # the scene is still moving: not judged yet
    forced: bool = False


class Decider:
    """Feed frames' features in capture order; says which to keep. Not thread-safe (one per run)."""

    def __init__(self, layout: Layout, threshold: float, settle_frames: int = 0,
                 index: FeatureIndex | None = None, settle_limit: float = SETTLE_LIMIT, adaptive: bool = True) -> None:
        self.layout = layout
        self.threshold = float(threshold)
        self.settle_frames = max(0, int(settle_frames))
        self.settle_limit = settle_limit
        self.adaptive = adaptive  # measure each region's noise (regional decision); off: the original rule
        self.index = index if index is not None else FeatureIndex(layout)
        self._prev: np.ndarray | None = None
        self._calm = 0  # consecutive frames close to the one before
        self._motions: deque[np.ndarray] = deque(maxlen=NOISE_WINDOW)  # per-region frame-to-frame distances

    def region_scale(self) -> np.ndarray | None:
        """Each region's noise allowance: its measured noise over :data:`NOISE_REFERENCE`, between 1 and
        :data:`NOISE_MAX_ALLOWANCE` (None while too few frames were seen, and for stills)."""
        if not self.adaptive or len(self._motions) < NOISE_MIN_SAMPLES:
            return None
        noise = np.percentile(np.stack(self._motions), NOISE_PERCENTILE, axis=0)
        return np.clip(noise / NOISE_REFERENCE, 1.0, NOISE_MAX_ALLOWANCE)

    def step(self, features: np.ndarray, still: bool = False, force: bool = False) -> Decision:
        """Decide about the next frame. The caller saves a kept frame, then calls :meth:`kept`."""
        motion = None
        if self._prev is not None:
            per_region, gain = region_distances(self._prev, features, self.layout)
            if not still:  # a still follows another scene: no measure of the camera's noise
                self._motions.append(per_region)
            scale = self.region_scale()
            motion = max(float((per_region if scale is None else per_region / scale).max()), gain)
        self._prev = features
        if still:
            self._calm = self.settle_frames
        elif motion is not None and motion <= self.settle_limit:
            self._calm += 1
        else:
            self._calm = 0
        settling = self._calm < self.settle_frames
        distance, _ = self.index.nearest(features, self.region_scale())
        if force:
            return Decision(True, distance, motion, settling, forced=True)
        return Decision(not settling and is_distinct(distance, self.threshold), distance, motion, settling)

    def kept(self, features: np.ndarray) -> None:
        """Record a frame that was saved (it is now compared with every later frame)."""
        self.index.add(features)


def refilter(features: np.ndarray, threshold: float, always_keep: np.ndarray | None = None,
             layout: Layout | None = None) -> np.ndarray:
    """Which kept images stay at ``threshold``, greedy in capture order ("Update images").

    The images were kept from settled scenes already, so only distinctness is judged again: image i stays when
    its distance to every image that stayed before it is above the threshold (the first always stays);
    ``always_keep`` marks images that stay regardless (saved by hand). Returns a boolean mask; one vectorized
    distance computation per staying image.
    """
    feats = np.asarray(features, dtype=np.float32)
    n = feats.shape[0]
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    layout = layout or Layout(1, feats.shape[1])
    forced = np.zeros(n, dtype=bool) if always_keep is None else np.asarray(always_keep, dtype=bool)
    nearest = np.full(n, np.inf, dtype=np.float32)  # distance of each image to the kept ones before it
    start = 0
    while start < n:
        candidates = (nearest[start:] > threshold) | forced[start:]
        if not candidates.any():
            break
        i = start + int(np.argmax(candidates))
        keep[i] = True
        d = distances(feats, feats[i], layout)
        d[: i + 1] = np.inf  # only later images are affected by keeping i
        np.minimum(nearest, d, out=nearest)
        start = i + 1
    return keep
