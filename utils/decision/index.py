"""Distances between frames and the index of the images kept for an order.

A feature vector is laid out by a :class:`Layout`: ``regions`` blocks of ``width`` values (one block per region of
the frame, a single block for the original global features) and, for the regional decision, one last value: the
log of the frame's brightness. The distance of two frames is

    max( max over regions of RMS(block_a - block_b),  gain_weight * |log brightness_a - log brightness_b| )

so a change confined to one region counts fully instead of being averaged away over the frame, and a change of the
light counts by how much the light changed. With one region and no brightness value it is the original app's
distance: the RMS of the whole feature difference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """How a feature vector is organised (see the module docstring)."""

    regions: int
    width: int
    gain_weight: float = 0.0  # 0: no brightness value at the end

    @property
    def has_gain(self) -> bool:
        return self.gain_weight > 0

    @property
    def dim(self) -> int:
        return self.regions * self.width + (1 if self.has_gain else 0)


ORIGINAL_LAYOUT = Layout(regions=1, width=576)


def _blocks(features: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, regions, width) blocks and the (n,) brightness values (None without) of row-stacked features."""
    f = np.asarray(features, dtype=np.float32).reshape(-1, layout.dim)
    blocks = f[:, : layout.regions * layout.width].reshape(-1, layout.regions, layout.width)
    return blocks, (f[:, -1] if layout.has_gain else None)


def region_distances(a: np.ndarray, b: np.ndarray, layout: Layout) -> tuple[np.ndarray, float]:
    """(RMS distance per region (regions,), distance of the light) of two frames."""
    ba, ga = _blocks(a, layout)
    bb, gb = _blocks(b, layout)
    diff = (ba[0] - bb[0]).astype(np.float64)
    per_region = np.sqrt((diff * diff).mean(axis=1))
    gain = 0.0 if ga is None or gb is None else layout.gain_weight * abs(float(ga[0]) - float(gb[0]))
    return per_region, gain


def pair_distance(a: np.ndarray, b: np.ndarray, layout: Layout, region_scale: np.ndarray | None = None) -> float:
    """The distance of two frames (see the module docstring); ``region_scale`` divides each region's distance
    (a region's noise allowance, :class:`utils.decision.Decider`)."""
    per_region, gain = region_distances(a, b, layout)
    if region_scale is not None:
        per_region = per_region / region_scale
    return max(float(per_region.max()), gain)


def distances(features: np.ndarray, query: np.ndarray, layout: Layout) -> np.ndarray:
    """Distance of ``query`` to every row of ``features`` (n, dim): one matrix-vector product per region."""
    blocks, gains = _blocks(features, layout)
    n = blocks.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float32)
    qb, qg = _blocks(query, layout)
    worst = np.zeros(n, dtype=np.float32)
    for r in range(layout.regions):
        rows = np.ascontiguousarray(blocks[:, r, :])
        q = qb[0, r]
        d2 = np.einsum("ij,ij->i", rows, rows) - 2.0 * (rows @ q) + float(q @ q)
        np.maximum(worst, d2, out=worst)
    out = np.sqrt(np.maximum(worst, 0.0) / layout.width, dtype=np.float32)
    if gains is not None and qg is not None:
        np.maximum(out, layout.gain_weight * np.abs(gains - qg[0]), out=out)
    return out


def rms_distances(features: np.ndarray, query: np.ndarray, sq_norms: np.ndarray | None = None) -> np.ndarray:
    """RMS distance of ``query`` (d,) to every row of ``features`` (n, d), in one matrix-vector product."""
    if features.shape[0] == 0:
        return np.empty(0, dtype=np.float32)
    if sq_norms is None:
        sq_norms = np.einsum("ij,ij->i", features, features)
    q = query.astype(np.float32, copy=False)
    d2 = sq_norms - 2.0 * (features @ q) + float(q @ q)
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2 / features.shape[1], dtype=np.float32)


class FeatureIndex:
    """The features of the images kept for one order, for fast nearest-distance queries.

    Stored region by region: one contiguous float32 array (capacity, width) per region, grown by 1.5x
    (untouched capacity is never written, so it costs no resident memory), with the squared norms of every row
    cached, so a query is one matrix-vector product per region.
    """

    def __init__(self, layout: Layout = ORIGINAL_LAYOUT, capacity: int = 64) -> None:
        self.layout = layout
        self.dim = layout.dim
        self._rows = np.empty((layout.regions, capacity, layout.width), dtype=np.float32)
        self._norms = np.empty((layout.regions, capacity), dtype=np.float32)
        self._gains = np.empty(capacity, dtype=np.float32)
        self._n = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    def _grow(self) -> None:
        cap = max(64, int(self._rows.shape[1] * 1.5))
        rows = np.empty((self.layout.regions, cap, self.layout.width), dtype=np.float32)
        rows[:, : self._n] = self._rows[:, : self._n]
        norms = np.empty((self.layout.regions, cap), dtype=np.float32)
        norms[:, : self._n] = self._norms[:, : self._n]
        gains = np.empty(cap, dtype=np.float32)
        gains[: self._n] = self._gains[: self._n]
        self._rows, self._norms, self._gains = rows, norms, gains

    def add(self, vector: np.ndarray) -> int:
        """Append one feature vector; returns its row index."""
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise ValueError(f"feature length {v.shape[0]} != {self.dim}")
        blocks, gain = _blocks(v, self.layout)
        with self._lock:
            if self._n == self._rows.shape[1]:
                self._grow()
            self._rows[:, self._n] = blocks[0]
            self._norms[:, self._n] = np.einsum("ij,ij->i", blocks[0], blocks[0])
            self._gains[self._n] = 0.0 if gain is None else gain[0]
            self._n += 1
            return self._n - 1

    def extend(self, vectors: np.ndarray) -> None:
        for v in np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim):
            self.add(v)

    def nearest(self, vector: np.ndarray, region_scale: np.ndarray | None = None) -> tuple[float, int]:
        """(smallest distance, row) to the kept features; (inf, -1) when none is kept. ``region_scale``
        divides each region's distance (see :func:`pair_distance`)."""
        with self._lock:
            n, rows, norms, gains = self._n, self._rows, self._norms, self._gains
        if n == 0:
            return float("inf"), -1
        qb, qg = _blocks(np.asarray(vector, dtype=np.float32).reshape(-1), self.layout)
        q = qb[0]  # (regions, width)
        dots = np.matmul(rows[:, :n], q[:, :, None])[:, :, 0]  # (regions, n): one batched product
        d2 = norms[:, :n] - 2.0 * dots + np.einsum("ij,ij->i", q, q)[:, None]
        if region_scale is not None:
            d2 = d2 / (np.asarray(region_scale, dtype=np.float32)[:, None] ** 2)
        d = np.sqrt(np.maximum(d2.max(axis=0), 0.0) / self.layout.width, dtype=np.float32)
        if qg is not None:
            np.maximum(d, self.layout.gain_weight * np.abs(gains[:n] - qg[0]), out=d)
        i = int(np.argmin(d))
        return float(d[i]), i

    def matrix(self) -> np.ndarray:
        """A copy of the kept features (n, dim), in the vectors' own layout."""
        with self._lock:
            n = self._n
            flat = self._rows[:, :n].transpose(1, 0, 2).reshape(n, -1)
            if not self.layout.has_gain:
                return flat.copy()
            return np.concatenate([flat, self._gains[:n, None]], axis=1)
