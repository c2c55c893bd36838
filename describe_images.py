"""Describe frames with MobileNetV3-small features and compare them with the images kept so far.

Distance (the original app's meaning, so its thresholds carry over): the root of the mean
squared difference between two feature vectors, ``sqrt(mean((a - b) ** 2))``. A frame is
distinct when its smallest distance to every kept image is above the threshold.

Descriptors, in order of preference (see :func:`load_descriptor`):

1. MobileNetV3-small, ImageNet weights from ``DESCRIPTOR_WEIGHTS_FILE`` (offline sites);
2. the same weights through torchvision (``MobileNet_V3_Small_Weights.IMAGENET1K_V1``,
   torch hub cache, downloaded there if ``DESCRIPTOR_DOWNLOAD``);
3. a fallback (``DESCRIPTOR_FALLBACK``): ``thumbnail`` = the frame shrunk to 16x12 RGB
   (576 values, same length as the network's features), scaled so that typical scene
   changes land in the slider's range; ``untrained`` = the network with seeded random
   weights (tests; its raw outputs are ~1e-8, so they are multiplied by one fixed factor,
   1 / RMS of the features of a reference gradient image); ``error`` = no capture. The fallback is always announced in the log
   and in :attr:`Descriptor.status`, never passed off as pretrained.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from utils.imaging import DESCRIPTOR_SHORT_SIDE

logger = logging.getLogger(__name__)

FEATURE_DIM = 576
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
_MAX_ASPECT = 2.0  # longer side at most twice the shorter one (very wide frames are squeezed)

# 16 x 12 x 3 = 576 values in 0..1; multiplied so that an object covering a tenth of the
# frame with medium contrast is about 0.3 away (calibrated on the original demo frames).
THUMBNAIL_SIZE = (16, 12)
THUMBNAIL_SCALE = 4.0

DescriptorKind = Literal["pretrained", "fallback", "untrained"]


@dataclass(frozen=True)
class DescriptorStatus:
    """Which descriptor is in use and why; shown in the UI's sidebar and logged at start."""

    kind: DescriptorKind
    name: str
    reason: str

    @property
    def pretrained(self) -> bool:
        return self.kind == "pretrained"

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


class DescriptorUnavailable(RuntimeError):
    """No pretrained weights and DESCRIPTOR_FALLBACK=error."""


class Descriptor:
    """Turns frames into feature vectors of length :data:`FEATURE_DIM`.

    ``prepare`` (cheap, any thread) and ``describe`` (the network) are separate so that a
    pipeline can prepare the next frame on one core while the other runs the network.
    """

    def __init__(
        self, status: DescriptorStatus, network: object | None = None, torch_threads: int = 1, scale: float = 1.0
    ) -> None:
        self.status = status
        self._net = network
        self._lock = threading.Lock()
        self._scale = np.float32(scale)
        if network is not None:
            import torch

            torch.set_num_threads(torch_threads)

    @property
    def uses_network(self) -> bool:
        return self._net is not None

    def prepare(self, img: Image.Image) -> np.ndarray:
        """Network input for ``img``: the whole frame (no crop), shorter side 224, float32 CHW normalised."""
        if self._net is None:
            small = img.convert("RGB").resize(THUMBNAIL_SIZE, Image.Resampling.BOX)
            return np.asarray(small, dtype=np.float32).reshape(-1) * (THUMBNAIL_SCALE / 255.0)
        w, h = img.size
        s = DESCRIPTOR_SHORT_SIDE / min(w, h)
        nw = min(round(w * s), int(DESCRIPTOR_SHORT_SIDE * _MAX_ASPECT))
        nh = min(round(h * s), int(DESCRIPTOR_SHORT_SIDE * _MAX_ASPECT))
        small = img.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        arr = np.asarray(small, dtype=np.float32).transpose(2, 0, 1) * (1.0 / 255.0)
        return (arr - _MEAN) / _STD

    def describe_prepared(self, prepared: np.ndarray) -> np.ndarray:
        """Feature vector (float32, length 576) of one prepared input."""
        if self._net is None:
            return prepared.astype(np.float32, copy=False)
        import torch

        with self._lock, torch.inference_mode():
            out = self._net(torch.from_numpy(np.ascontiguousarray(prepared))[None])
        features = out.reshape(-1).numpy().astype(np.float32, copy=True)
        if self._scale != 1.0:
            features *= self._scale
        return features

    def describe(self, img: Image.Image) -> np.ndarray:
        """Feature vector of one image."""
        return self.describe_prepared(self.prepare(img))


# ---------------------------------------------------------------- loading

_WEIGHTS_NAME = "MobileNet_V3_Small_Weights.IMAGENET1K_V1"


def _feature_network(state_dict: dict | None, seed: int | None = None) -> object:
    """MobileNetV3-small without its classifier: features -> global average pool -> 576 values."""
    import torch
    from torch import nn
    from torchvision.models import mobilenet_v3_small

    if seed is not None:
        torch.manual_seed(seed)
    model = mobilenet_v3_small(weights=None)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    net = nn.Sequential(model.features, model.avgpool, nn.Flatten())
    net.eval()
    return net


def _torchvision_state_dict(allow_download: bool) -> dict:
    """ImageNet weights through torchvision's cache; downloads only if allowed. Raises on failure."""
    import os

    import torch
    from torchvision.models import MobileNet_V3_Small_Weights

    weights = MobileNet_V3_Small_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.exists() and not allow_download:
        raise FileNotFoundError(f"not in the torch hub cache ({cached}) and DESCRIPTOR_DOWNLOAD is off")
    return weights.get_state_dict(progress=False, check_hash=True)


def _file_state_dict(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"DESCRIPTOR_WEIGHTS_FILE {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def load_descriptor(
    weights_file: Path | None = None,
    allow_download: bool = True,
    fallback: Literal["thumbnail", "untrained", "error"] = "thumbnail",
    torch_threads: int = 1,
    seed: int = 0,
) -> Descriptor:
    """Build the best available descriptor and log which one and why (see module docstring)."""
    problems: list[str] = []
    if weights_file is not None:
        try:
            net = _feature_network(_file_state_dict(Path(weights_file)))
            status = DescriptorStatus("pretrained", "MobileNetV3-small (ImageNet)", f"weights from {weights_file}")
            logger.info("Descriptor: %s", status)
            return Descriptor(status, net, torch_threads)
        except Exception as err:  # noqa: BLE001 - any failure means: try the next source, and say why
            problems.append(f"weights file failed: {err}")
            logger.error("Could not load DESCRIPTOR_WEIGHTS_FILE=%s: %s", weights_file, err)
    try:
        net = _feature_network(_torchvision_state_dict(allow_download))
        status = DescriptorStatus("pretrained", "MobileNetV3-small (ImageNet)", f"torchvision {_WEIGHTS_NAME}")
        logger.info("Descriptor: %s", status)
        return Descriptor(status, net, torch_threads)
    except Exception as err:  # noqa: BLE001
        problems.append(f"torchvision weights unavailable: {type(err).__name__}: {err}")

    why = "pretrained weights not available (" + "; ".join(problems) + ")"
    if fallback == "error":
        logger.error("Descriptor: %s and DESCRIPTOR_FALLBACK=error: capture is disabled", why)
        raise DescriptorUnavailable(why + ". Set DESCRIPTOR_WEIGHTS_FILE or DESCRIPTOR_FALLBACK.")
    if fallback == "untrained":
        desc = untrained_descriptor(seed, torch_threads, reason=why + ": fallback")
        logger.warning("Descriptor: %s. Distances do not mean what the threshold assumes.", desc.status)
        return desc
    status = DescriptorStatus("fallback", "colour thumbnail 16x12", why + ": fallback")
    logger.warning("Descriptor: %s. Put the weights file in place for MobileNetV3 features.", status)
    return Descriptor(status, None)


def untrained_descriptor(seed: int = 0, torch_threads: int = 1, reason: str | None = None) -> Descriptor:
    """MobileNetV3-small with seeded random weights (``weights=None``), for tests and benchmarks.

    Its raw features are tiny (~1e-8); they are rescaled by one constant so that the RMS of
    the features of a reference gradient image is 1.
    """
    status = DescriptorStatus(
        "untrained", "MobileNetV3-small (UNTRAINED, seeded)", reason or f"weights=None, seed={seed}"
    )
    desc = Descriptor(status, _feature_network(None, seed=seed), torch_threads)
    ref = desc.describe(Image.linear_gradient("L").convert("RGB"))
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    desc._scale = np.float32(1.0 / rms if rms > 0 else 1.0)
    return desc


# ---------------------------------------------------------------- comparison


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

    Rows live in one contiguous float32 array grown by 1.5x (untouched capacity is never
    written, so it costs no resident memory); squared norms are cached per row.
    """

    def __init__(self, dim: int = FEATURE_DIM, capacity: int = 64) -> None:
        self.dim = dim
        self._rows = np.empty((capacity, dim), dtype=np.float32)
        self._norms = np.empty(capacity, dtype=np.float32)
        self._n = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    def add(self, vector: np.ndarray) -> int:
        """Append one feature vector; returns its row index."""
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise ValueError(f"feature length {v.shape[0]} != {self.dim}")
        with self._lock:
            if self._n == self._rows.shape[0]:
                cap = max(64, int(self._rows.shape[0] * 1.5))
                rows = np.empty((cap, self.dim), dtype=np.float32)
                rows[: self._n] = self._rows[: self._n]
                norms = np.empty(cap, dtype=np.float32)
                norms[: self._n] = self._norms[: self._n]
                self._rows, self._norms = rows, norms
            self._rows[self._n] = v
            self._norms[self._n] = float(v @ v)
            self._n += 1
            return self._n - 1

    def extend(self, vectors: np.ndarray) -> None:
        for v in np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim):
            self.add(v)

    def nearest(self, vector: np.ndarray) -> tuple[float, int]:
        """(smallest distance, row) to the kept features; (inf, -1) when none is kept."""
        with self._lock:
            n, rows, norms = self._n, self._rows, self._norms
        if n == 0:
            return float("inf"), -1
        d = rms_distances(rows[:n], np.asarray(vector, dtype=np.float32).reshape(-1), norms[:n])
        i = int(np.argmin(d))
        return float(d[i]), i

    def matrix(self) -> np.ndarray:
        """A copy of the kept features (n, dim)."""
        with self._lock:
            return self._rows[: self._n].copy()


def is_distinct(distance: float, threshold: float) -> bool:
    """The decision rule: distinct when the nearest kept image is farther than the threshold."""
    return distance > threshold


def refilter(features: np.ndarray, threshold: float, always_keep: np.ndarray | None = None) -> np.ndarray:
    """Which images stay at ``threshold``, greedy in capture order ("Update images").

    Image i stays when its distance to every image that stayed before it is above the
    threshold (the first always stays); ``always_keep`` marks images that stay regardless
    (frames the operator saved by hand). Returns a boolean mask. The loop runs once per
    *kept* image, each step one vectorized distance computation over all images.
    """
    feats = np.asarray(features, dtype=np.float32)
    n = feats.shape[0]
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    forced = np.zeros(n, dtype=bool) if always_keep is None else np.asarray(always_keep, dtype=bool)
    norms = np.einsum("ij,ij->i", feats, feats)
    nearest = np.full(n, np.inf, dtype=np.float32)  # distance of each image to the kept ones before it
    start = 0
    while start < n:
        candidates = (nearest[start:] > threshold) | forced[start:]
        if not candidates.any():
            break
        i = start + int(np.argmax(candidates))
        keep[i] = True
        d = rms_distances(feats, feats[i], norms)
        d[: i + 1] = np.inf  # only later images are affected by keeping i
        np.minimum(nearest, d, out=nearest)
        start = i + 1
    return keep
