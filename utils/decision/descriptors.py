"""Descriptors: frames -> feature vectors (MobileNetV3-small, or a colour thumbnail without its weights).

Two decision modes (``DECISION_MODE``):

* ``regional`` (default): the frame is seen region by region. The network's spatial feature map (or a 32x24
  colour thumbnail) is pooled to a coarse grid, one feature block per region, so that an item covering 2 % of the
  frame changes its region's block clearly instead of being averaged away over the whole frame. The frame is
  first brought to a fixed brightness (flicker of a few percent changes nothing) and its brightness is kept as
  one value of its own (a real change of the light still counts). Each descriptor's values are scaled so that
  the distance means the same for all of them: camera noise and flicker well below 0.15, an item of 1-2 % of the
  frame put down well above 0.5 (calibrated on ``bench/quality.py``'s sequences).
* ``original``: the original app's decision: globally pooled MobileNetV3 features (576 values; the 16x12 thumbnail
  without weights), RMS distance, every frame judged alone.

Weights, in order of preference (see :func:`load_descriptor`): ``DESCRIPTOR_WEIGHTS_FILE``; torchvision's
``MobileNet_V3_Small_Weights.IMAGENET1K_V1`` through its cache (downloaded there if ``DESCRIPTOR_DOWNLOAD``); the
fallback ``DESCRIPTOR_FALLBACK``: ``thumbnail``, ``untrained`` (seeded random weights, for tests) or ``error``.
The fallback is always announced in the log and in :attr:`Descriptor.status`, never passed off as pretrained.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from utils.decision.index import ORIGINAL_LAYOUT, Layout
from utils.imaging import DESCRIPTOR_SHORT_SIDE

logger = logging.getLogger(__name__)

DecisionMode = Literal["regional", "original"]
DescriptorKind = Literal["pretrained", "fallback", "untrained"]
FEATURE_DIM = 576  # the original global features

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
_MAX_ASPECT = 2.0  # longer side at most twice the shorter one (very wide frames are squeezed)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# original mode: 16 x 12 x 3 = 576 values in 0..1, times 4 (calibrated on the original demo frames)
THUMBNAIL_SIZE = (16, 12)
THUMBNAIL_SCALE = 4.0

# regional mode
GRID = (4, 4)  # regions across x down (thumbnail)
REGIONAL_THUMBNAIL_SIZE = (32, 24)  # cells: 8 x 6 per region of the 4 x 4 grid
THUMBNAIL_BLUR = 0.7  # Gaussian sigma in thumbnail cells: a 1-pixel jitter of the camera moves no cell's value
NET_GRID = (6, 4)  # the network's early feature map (56 x 75 for a 4:3 frame) pooled to 6 x 4 regions
NET_LAYERS = 2  # MobileNetV3-small's stem and first block: 16 channels of local edges and colours
NET_BLUR = 3.0  # Gaussian sigma in pixels of the 224-pixel network input: sensor noise and jitter averaged out
TARGET_LUMINANCE = 0.45  # every frame is brought to this mean brightness before it is described
LUMINANCE_FLOOR = 0.12  # darker frames (lid closed) are not brightened further (their noise would be too)
GAIN_WEIGHT = 2.2  # distance of a change of the light: 2.2 x |log ratio|; 20 % darker = 0.49, 3 % flicker = 0.07
# distance scales (calibrated: python bench/quality.py --calibrate)
# network features are first normalised (the RMS of a reference gradient image's features is 1), then multiplied
REGIONAL_SCALE = {"thumbnail": 15.0, "untrained": 8.0, "pretrained": 8.0}


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


def _grid_blocks(cells: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(rows, cols, channels) cells -> (regions, values) blocks of a ``grid`` (x, y), region by region."""
    gx, gy = grid
    h, w, c = cells.shape
    blocks = cells.reshape(gy, h // gy, gx, w // gx, c).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(gx * gy, -1)


def _brightness(rgb: np.ndarray) -> float:
    """Mean luminance (0..1) of an HxWx3 float image in 0..1."""
    return float(rgb.reshape(-1, 3).mean(axis=0) @ _LUMA)


class Descriptor:
    """Turns frames into feature vectors laid out by :attr:`layout`.

    ``prepare`` (cheap, any thread) and ``describe_prepared`` (the network) are separate so that a pipeline can
    prepare the next frame on one core while the other runs the network.
    """

    def __init__(
        self,
        status: DescriptorStatus,
        network: Any = None,
        torch_threads: int = 1,
        scale: float = 1.0,
        mode: DecisionMode = "regional",
    ) -> None:
        self.status = status
        self.mode = mode
        self._net = network
        self._lock = threading.Lock()
        self._scale = np.float32(scale)
        if network is not None:
            import torch

            torch.set_num_threads(torch_threads)
        if mode == "original":
            self.layout = ORIGINAL_LAYOUT
        elif network is None:
            gx, gy = GRID
            tw, th = REGIONAL_THUMBNAIL_SIZE
            self.layout = Layout(gx * gy, (tw // gx) * (th // gy) * 3, GAIN_WEIGHT)
        else:
            gx, gy = NET_GRID
            self.layout = Layout(gx * gy, _net_channels(network), GAIN_WEIGHT)

    @property
    def uses_network(self) -> bool:
        return self._net is not None

    @property
    def key(self) -> str:
        """Which calibration applies: thumbnail, untrained or pretrained."""
        return "thumbnail" if self._net is None else ("pretrained" if self.status.pretrained else "untrained")

    # ---------------------------------------------------------------- preparation (acquire thread)
    def prepare(self, img: Image.Image) -> Any:
        """What :meth:`describe_prepared` needs of ``img`` (the whole frame, no crop)."""
        if self._net is None:
            size = THUMBNAIL_SIZE if self.mode == "original" else REGIONAL_THUMBNAIL_SIZE
            small = np.asarray(img.convert("RGB").resize(size, Image.Resampling.BOX), dtype=np.float32) / 255.0
            if self.mode == "original":
                return small.reshape(-1) * THUMBNAIL_SCALE
            return small
        w, h = img.size
        s = DESCRIPTOR_SHORT_SIDE / min(w, h)
        nw = min(round(w * s), int(DESCRIPTOR_SHORT_SIDE * _MAX_ASPECT))
        nh = min(round(h * s), int(DESCRIPTOR_SHORT_SIDE * _MAX_ASPECT))
        small = img.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        arr = np.asarray(small, dtype=np.float32) * (1.0 / 255.0)
        log_b = 0.0
        if self.mode == "regional":
            arr = cv2.GaussianBlur(arr, (0, 0), NET_BLUR)
            b = max(_brightness(arr), LUMINANCE_FLOOR)
            arr = np.clip(arr * (TARGET_LUMINANCE / b), 0.0, 1.0)
            log_b = math.log(b)
        net_in = (arr.transpose(2, 0, 1) - _MEAN) / _STD
        return (net_in, log_b) if self.mode == "regional" else net_in

    # ---------------------------------------------------------------- description (process thread)
    def describe_prepared(self, prepared: Any) -> np.ndarray:
        """Feature vector (float32, ``layout.dim`` values) of one prepared frame."""
        if self._net is None:
            if self.mode == "original":
                return np.asarray(prepared, dtype=np.float32)
            return self._thumbnail_features(prepared)
        import torch

        net_in, log_b = prepared if self.mode == "regional" else (prepared, 0.0)
        with self._lock, torch.inference_mode():
            out = self._net(torch.from_numpy(np.ascontiguousarray(net_in))[None])
            if self.mode == "regional":
                gx, gy = NET_GRID
                out = torch.nn.functional.adaptive_avg_pool2d(out, (gy, gx))  # (1, C, gy, gx)
                out = out[0].permute(1, 2, 0).reshape(gx * gy, -1)  # region by region
        features = out.reshape(-1).numpy().astype(np.float32, copy=True)
        if self._scale != 1.0:
            features *= self._scale
        if self.mode == "regional":
            features = np.append(features, np.float32(log_b))
        return features

    def _thumbnail_features(self, small: np.ndarray) -> np.ndarray:
        small = cv2.GaussianBlur(small, (0, 0), THUMBNAIL_BLUR)
        b = max(_brightness(small), LUMINANCE_FLOOR)
        cells = np.clip(small * (TARGET_LUMINANCE / b), 0.0, 1.0) * self._scale
        return np.append(_grid_blocks(cells, GRID).reshape(-1), np.float32(math.log(b))).astype(np.float32)

    def describe(self, img: Image.Image) -> np.ndarray:
        """Feature vector of one image."""
        return self.describe_prepared(self.prepare(img))


# ---------------------------------------------------------------- loading

_WEIGHTS_NAME = "MobileNet_V3_Small_Weights.IMAGENET1K_V1"


def _net_channels(network: Any) -> int:
    return int(getattr(network, "channels", FEATURE_DIM))


def _feature_network(state_dict: dict | None, seed: int | None = None, mode: DecisionMode = "original") -> Any:
    """MobileNetV3-small without its classifier.

    original: features -> global average pool -> 576 values. regional: the 16-channel map of the stem and the
    first block (56 x 75 for a 4:3 frame), pooled to the regions by :meth:`Descriptor.describe_prepared`.
    """
    import torch
    from torch import nn
    from torchvision.models import mobilenet_v3_small

    if seed is not None:
        torch.manual_seed(seed)
    model = mobilenet_v3_small(weights=None)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    if mode == "regional":
        net = nn.Sequential(*list(model.features)[:NET_LAYERS])
        net.channels = 16  # type: ignore[attr-defined]
    else:
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


def _normalised(desc: Descriptor, calibration: float) -> Descriptor:
    """Scale a network descriptor's features: RMS 1 on a reference gradient image, times ``calibration``."""
    desc._scale = np.float32(1.0)
    ref = desc.describe(Image.linear_gradient("L").convert("RGB"))
    ref = ref[:-1] if desc.mode == "regional" else ref
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    desc._scale = np.float32(calibration / rms if rms > 0 else 1.0)
    return desc


def _pretrained(state: dict, status: DescriptorStatus, torch_threads: int, mode: DecisionMode) -> Descriptor:
    desc = Descriptor(status, _feature_network(state, mode=mode), torch_threads, mode=mode)
    return _normalised(desc, REGIONAL_SCALE["pretrained"]) if mode == "regional" else desc


def load_descriptor(
    weights_file: Path | None = None,
    allow_download: bool = True,
    fallback: Literal["thumbnail", "untrained", "error"] = "thumbnail",
    torch_threads: int = 1,
    seed: int = 0,
    mode: DecisionMode = "regional",
) -> Descriptor:
    """Build the best available descriptor for ``mode`` and log which one and why (see module docstring)."""
    problems: list[str] = []
    if weights_file is not None:
        try:
            state = _file_state_dict(Path(weights_file))
            status = DescriptorStatus("pretrained", "MobileNetV3-small (ImageNet)", f"weights from {weights_file}")
            desc = _pretrained(state, status, torch_threads, mode)
            logger.info("Descriptor: %s, %s decision", status, mode)
            return desc
        except Exception as err:  # noqa: BLE001 - any failure means: try the next source, and say why
            problems.append(f"weights file failed: {err}")
            logger.error("Could not load DESCRIPTOR_WEIGHTS_FILE=%s: %s", weights_file, err)
    try:
        state = _torchvision_state_dict(allow_download)
        status = DescriptorStatus("pretrained", "MobileNetV3-small (ImageNet)", f"torchvision {_WEIGHTS_NAME}")
        desc = _pretrained(state, status, torch_threads, mode)
        logger.info("Descriptor: %s, %s decision", status, mode)
        return desc
    except Exception as err:  # noqa: BLE001
        problems.append(f"torchvision weights unavailable: {type(err).__name__}: {err}")

    why = "pretrained weights not available (" + "; ".join(problems) + ")"
    if fallback == "error":
        logger.error("Descriptor: %s and DESCRIPTOR_FALLBACK=error: capture is disabled", why)
        raise DescriptorUnavailable(why + ". Set DESCRIPTOR_WEIGHTS_FILE or DESCRIPTOR_FALLBACK.")
    if fallback == "untrained":
        desc = untrained_descriptor(seed, torch_threads, reason=why + ": fallback", mode=mode)
        logger.warning("Descriptor: %s. Distances do not mean what the threshold assumes.", desc.status)
        return desc
    name = "colour thumbnail 16x12" if mode == "original" else "colour thumbnail 32x24, 4x4 regions"
    status = DescriptorStatus("fallback", name, why + ": fallback")
    logger.warning("Descriptor: %s. Put the weights file in place for MobileNetV3 features.", status)
    scale = REGIONAL_SCALE["thumbnail"] if mode == "regional" else 1.0
    return Descriptor(status, None, scale=scale, mode=mode)


def untrained_descriptor(
    seed: int = 0, torch_threads: int = 1, reason: str | None = None, mode: DecisionMode = "regional"
) -> Descriptor:
    """MobileNetV3-small with seeded random weights (``weights=None``), for tests and benchmarks.

    Its raw features are tiny (~1e-8); they are rescaled by one constant so that the RMS of the features of a
    reference gradient image is 1 (times the regional calibration in regional mode).
    """
    status = DescriptorStatus(
        "untrained", "MobileNetV3-small (UNTRAINED, seeded)", reason or f"weights=None, seed={seed}"
    )
    desc = Descriptor(status, _feature_network(None, seed=seed, mode=mode), torch_threads, mode=mode)
    return _normalised(desc, REGIONAL_SCALE["untrained"] if mode == "regional" else 1.0)
