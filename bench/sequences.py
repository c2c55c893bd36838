"""Labelled frame sequences for measuring which frames the capture keeps (the "distinct images" decision).

    python bench/sequences.py --out /tmp/seqs            # JPEG frames + labels.json per sequence
    python bench/sequences.py --out /tmp/seqs --sheet    # plus contact sheets (PNG) to check the labels by eye
    python bench/sequences.py --quick --list             # names, frame and state counts only

A fixed camera looks at a packing table. Every frame carries the label a person would give it: the
*state* of the table's content (``"s0"``, ``"s1"`` ...; the SAME id when the scene returns to an earlier
state, e.g. after an item is removed again) or ``"T"`` for a *transient* frame nobody wants kept (a hand or
arm in the picture, a person walking through, a motion-blurred frame).

Everything is built deterministically (fixed seeds) from

* real photographs: the sample images bundled in the scikit-image wheel (no download) used as table
  surfaces (``gravel``, ``grass``, ``brick``, ``moon``, ``hubble_deep_field``, ``immunohistochemistry``,
  ``coffee``) and as objects cut out with hard or soft masks (``coins``, ``coffee``, ``chelsea``,
  ``astronaut``, ``rocket``, ``camera``, ``page``, ``text``, ``logo``, ``retina``, ``colorwheel``,
  ``horse``, ``stereo_motorcycle``'s shelf of boxes, ``gravel``);
* the product's own synthetic generator (:func:`utils.synthetic.render`);
* the original app's 17 demo frames (``../shared/datasets/original-toydata``, skipped with a warning when
  missing) and the product's ``toydata/`` as folders of stills (``stills=True``).

Stream frames get what a real camera adds to a still scene, on every frame: Gaussian sensor noise
(sigma 2-4 grey levels; each frame takes its own crop of a per-sequence bank of i.i.d. Gaussian fields, so
the noise of any two frames is independent pixel by pixel), brightness flicker (+-2..3 % per frame), a fixed vignette,
1-pixel jitter (random shift by -1..1 px) and JPEG compression (quality 85-92). A persistent lighting
change (lights dimmed by 25-30 %) is a new state; flicker is not.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TRANSIENT = "T"
ORIGINAL_TOYDATA = ROOT.parent / "shared" / "datasets" / "original-toydata"
PROJECT_TOYDATA = ROOT / "toydata"

# The skimage images this module uses; all of them are bundled in the wheel (checked offline with
# scikit-image 0.26: they load without pooch; e.g. ``rough_wall``, ``skin``, ``lily`` would need a download).
SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "retina", "rocket",
    "stereo_motorcycle", "text",
)


@dataclass
class Sequence:
    """One labelled sequence of frames as a camera (or a folder of stills) delivers them."""

    name: str
    frames: list[bytes]  # JPEG bytes, in order
    labels: list[str]  # per frame: a state id ("s0", "s1", ...) or "T" (transient)
    stills: bool  # True: a folder of stills (each image a scene held still); False: a camera stream
    fps: float  # nominal frame rate
    description: str = ""  # what happens in it (for people)

    def states(self) -> list[str]:
        """Distinct state ids in order of first appearance."""
        return list(dict.fromkeys(label for label in self.labels if label != TRANSIENT))

    @property
    def transients(self) -> int:
        return sum(label == TRANSIENT for label in self.labels)


# ---------------------------------------------------------------- source photographs


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """A scikit-image sample as float32 RGB (H, W, 3) in 0..255 (grey images repeated on 3 channels)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    out = img[:, :, :3].astype(np.float32)
    out.setflags(write=False)
    return out


@dataclass
class Sprite:
    """An object cut out of a photograph: colour (h, w, 3) and coverage alpha (h, w) in 0..1."""

    rgb: np.ndarray
    alpha: np.ndarray
    _rotations: dict = field(default_factory=dict, repr=False)

    def rotated(self, angle: float) -> "Sprite":
        """The sprite turned by ``angle`` degrees (canvas grown so nothing is cut off); cached."""
        if not angle:
            return self
        if angle not in self._rotations:
            h, w = self.alpha.shape
            side = int(math.ceil(math.hypot(h, w))) + 2
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            m[0, 2] += (side - w) / 2
            m[1, 2] += (side - h) / 2
            rgb = cv2.warpAffine(self.rgb, m, (side, side), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(self.alpha, m, (side, side), flags=cv2.INTER_LINEAR)
            ys, xs = np.nonzero(alpha > 0.003)
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            self._rotations[angle] = Sprite(rgb[y0:y1, x0:x1].copy(), alpha[y0:y1, x0:x1].copy())
        return self._rotations[angle]


def _blob_mask(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """An irregular smooth closed shape filling most of a w x h box (uint8 0/255)."""
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0.03, 0.13) / math.sqrt(k - 1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r /= r.max()
    pts = np.stack([w / 2 + (w / 2 - 1) * r * np.cos(theta), h / 2 + (h / 2 - 1) * r * np.sin(theta)], axis=1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    return mask


def cutout(
    src: str,
    box: tuple[int, int, int, int] | None,
    mask: str,
    area: float,
    size: tuple[int, int],
    *,
    soft: float = 0.7,
    border: float = 0.0,
    tint: tuple[float, float, float] | None = None,
    seed: int = 0,
) -> Sprite:
    """Cut an object out of the photograph ``src``.

    ``box`` = (x0, y0, x1, y1) in the photograph; ``mask``: ``rect`` | ``ellipse`` | ``blob`` (irregular) |
    ``horse`` (the silhouette) | ``bright`` (pixels brighter than black); ``area``: the object's share of the
    frame ``size``; ``soft``: blur of the mask edge in pixels (hard ~0.7, soft 2-4); ``border``: a white
    paper border around a rectangle (a photo print), as a fraction of the shorter side; ``tint``: colour
    multipliers (grey photographs made bronze, green ...).
    """
    img = _photo(src)
    if box is not None:
        x0, y0, x1, y1 = box
        img = img[y0:y1, x0:x1]
    h, w = img.shape[:2]
    if mask == "rect":
        m = np.full((h, w), 255, np.uint8)
    elif mask == "ellipse":
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1, cv2.LINE_AA)
    elif mask == "blob":
        m = _blob_mask(w, h, np.random.default_rng(seed))
    elif mask == "horse":
        m = np.where(img[:, :, 0] < 128, 255, 0).astype(np.uint8)
    elif mask == "bright":
        m = cv2.GaussianBlur(np.where(img.mean(axis=2) > 22, 255, 0).astype(np.uint8), (0, 0), 2)
    else:
        raise ValueError(mask)
    if border > 0:
        b = max(2, int(round(border * min(h, w))))
        img = cv2.copyMakeBorder(np.ascontiguousarray(img), b, b, b, b, cv2.BORDER_CONSTANT, value=(236, 234, 228))
        m = cv2.copyMakeBorder(m, b, b, b, b, cv2.BORDER_CONSTANT, value=255)
        h, w = m.shape
    fill = float(m.mean()) / 255.0
    scale = math.sqrt(area * size[0] * size[1] / (fill * h * w))
    nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
    alpha = cv2.resize(m, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if soft > 0:
        pad = int(math.ceil(3 * soft)) + 1
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        alpha = cv2.GaussianBlur(cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0),
                                 (0, 0), soft)
    if tint is not None:
        rgb = rgb * np.asarray(tint, np.float32)
    return Sprite(np.clip(rgb, 0, 255).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32))


def solid(color: tuple[int, int, int], mask_src: str, area: float, size: tuple[int, int], texture: str = "moon",
          seed: int = 0) -> Sprite:
    """A one-coloured object (plastic) shaped like ``mask_src``'s silhouette, lightly textured and shaded."""
    base = cutout(mask_src, None, "horse", area, size, soft=0.8)
    h, w = base.alpha.shape
    tex = _photo(texture)[:h, :w, 0] if _photo(texture).shape[0] >= h and _photo(texture).shape[1] >= w else \
        cv2.resize(np.ascontiguousarray(_photo(texture)[:, :, 0]), (w, h))
    tex = (tex - tex.mean()) / (tex.std() + 1e-6)
    dist = cv2.distanceTransform((base.alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    shade = 0.75 + 0.35 * np.clip(dist / max(1.0, 0.04 * h), 0, 1)
    rgb = np.asarray(color, np.float32)[None, None, :] * (shade + 0.06 * tex)[:, :, None]
    return Sprite(np.clip(rgb, 0, 255).astype(np.float32), base.alpha)


# ---------------------------------------------------------------- table surfaces


def texture_background(
    src: str,
    size: tuple[int, int],
    *,
    scale: float = 1.0,
    mean: float = 140.0,
    contrast: float = 1.0,
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
    offset: tuple[int, int] = (0, 0),
    light_from: float = 0.0,
) -> np.ndarray:
    """A table surface from a photograph: scaled, mirror-tiled to ``size``, levels set, tinted, lit from a side."""
    w, h = size
    img = _photo(src)
    if scale != 1.0:
        img = cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    reps_y = math.ceil((h + offset[1]) / img.shape[0]) + 1
    reps_x = math.ceil((w + offset[0]) / img.shape[1]) + 1
    tiled = np.concatenate([img if i % 2 == 0 else img[::-1] for i in range(reps_y)], axis=0)
    tiled = np.concatenate([tiled if j % 2 == 0 else tiled[:, ::-1] for j in range(reps_x)], axis=1)
    out = tiled[offset[1]: offset[1] + h, offset[0]: offset[0] + w].astype(np.float32)
    out = mean + contrast * (out - out.mean())
    out = out * np.asarray(tint, np.float32)
    if light_from:
        ramp = np.linspace(-1, 1, w, dtype=np.float32)
        out = out * (1.0 + 0.06 * light_from * ramp)[None, :, None]
    return np.clip(out, 0, 255).astype(np.float32)


def photo_background(src: str, size: tuple[int, int], gain: float = 1.0) -> np.ndarray:
    """A whole photograph as a (busy) background, scaled to cover ``size`` and centre-cropped."""
    w, h = size
    img = _photo(src)
    s = max(w / img.shape[1], h / img.shape[0])
    img = cv2.resize(np.ascontiguousarray(img), (math.ceil(img.shape[1] * s), math.ceil(img.shape[0] * s)),
                     interpolation=cv2.INTER_CUBIC)
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.clip(img[y0: y0 + h, x0: x0 + w] * gain, 0, 255).astype(np.float32)


# ---------------------------------------------------------------- compositing


def _clip_box(shape: tuple[int, ...], x0: int, y0: int, h: int, w: int):
    H, W = shape[:2]
    ax0, ay0, ax1, ay1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if ax0 >= ax1 or ay0 >= ay1:
        return None
    return (slice(ay0, ay1), slice(ax0, ax1)), (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))


def blend(img: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-composite ``rgb``/``alpha`` onto ``img`` (in place) with its top-left corner at (x0, y0)."""
    boxes = _clip_box(img.shape, x0, y0, *alpha.shape)
    if boxes is None:
        return
    dst, src = boxes
    a = alpha[src][:, :, None]
    region = img[dst]
    region *= 1.0 - a
    region += rgb[src] * a


def blend_premultiplied(img: np.ndarray, premult: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    boxes = _clip_box(img.shape, x0, y0, *alpha.shape)
    if boxes is None:
        return
    dst, src = boxes
    region = img[dst]
    region *= 1.0 - alpha[src][:, :, None]
    region += premult[src]


def darken(img: np.ndarray, shadow: np.ndarray, x0: int, y0: int, strength: float) -> None:
    """Multiply ``img`` by ``1 - strength * shadow`` where ``shadow`` (0..1) lies."""
    boxes = _clip_box(img.shape, x0, y0, *shadow.shape)
    if boxes is None:
        return
    dst, src = boxes
    img[dst] *= (1.0 - strength * shadow[src])[:, :, None]


def place(img: np.ndarray, sprite: Sprite, cx: float, cy: float, shadow: float = 0.3) -> None:
    """Put ``sprite`` centred at pixel (cx, cy) on ``img`` with a soft drop shadow."""
    h, w = sprite.alpha.shape
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    if shadow > 0:
        s = math.sqrt(h * w)
        pad = int(0.08 * s) + 4
        sh = cv2.GaussianBlur(cv2.copyMakeBorder(sprite.alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0),
                              (0, 0), 0.025 * s + 1.0)
        darken(img, sh, x0 - pad + int(0.02 * s) + 1, y0 - pad + int(0.035 * s) + 1, shadow)
    blend(img, sprite.rgb, sprite.alpha, x0, y0)


def line_kernel(length: float, angle: float) -> np.ndarray | None:
    """Normalised motion-blur kernel: a line of ``length`` px at ``angle`` radians (None when < 2 px)."""
    if length < 2.0:
        return None
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(angle) * (length - 1) / 2, math.sin(angle) * (length - 1) / 2
    cv2.line(k, (round((c - dx) * 16), round((c - dy) * 16)), (round((c + dx) * 16), round((c + dy) * 16)), 1.0,
             1, cv2.LINE_AA, shift=4)
    return k / k.sum()


@dataclass
class Layer:
    """Something in front of the scene for one frame (a hand, a person): premultiplied colour, coverage
    and the shadow it casts, all (h, w) at (x0, y0) in frame pixels."""

    x0: int
    y0: int
    premult: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    shadow_strength: float

    def apply(self, img: np.ndarray) -> None:
        darken(img, self.shadow, self.x0, self.y0, self.shadow_strength)
        blend_premultiplied(img, self.premult, self.alpha, self.x0, self.y0)

    def visible_share(self, size: tuple[int, int]) -> float:
        boxes = _clip_box((size[1], size[0]), self.x0, self.y0, *self.alpha.shape)
        if boxes is None:
            return 0.0
        return float(self.alpha[boxes[1]].sum()) / (size[0] * size[1])


def _finish_layer(mask_rgb: np.ndarray, alpha: np.ndarray, ox: int, oy: int, s: float, blur: np.ndarray | None,
                  shadow_offset: tuple[float, float], shadow_sigma: float, shadow_strength: float) -> Layer:
    """Turn a drawn (rgb, alpha) canvas patch into a :class:`Layer`: shadow, motion blur."""
    premult = mask_rgb * alpha[:, :, None]
    sx, sy = int(round(shadow_offset[0] * s)), int(round(shadow_offset[1] * s))
    shadow = np.zeros_like(alpha)
    h, w = alpha.shape
    shadow[max(0, sy): h + min(0, sy), max(0, sx): w + min(0, sx)] = \
        alpha[max(0, -sy): h - max(0, sy), max(0, -sx): w - max(0, sx)]
    shadow = cv2.GaussianBlur(shadow, (0, 0), shadow_sigma * s)
    if blur is not None:
        premult = cv2.filter2D(premult, -1, blur, borderType=cv2.BORDER_CONSTANT)
        alpha = cv2.filter2D(alpha, -1, blur, borderType=cv2.BORDER_CONSTANT)
        shadow = cv2.filter2D(shadow, -1, blur, borderType=cv2.BORDER_CONSTANT)
    return Layer(ox, oy, premult, np.clip(alpha, 0, 1), np.clip(shadow, 0, 1), shadow_strength)


# ---------------------------------------------------------------- hands and people

SKIN_TONES = ((224, 176, 146), (205, 150, 115), (176, 120, 86), (140, 94, 62), (236, 196, 170), (110, 72, 50))
SLEEVES = (None, (46, 58, 92), (150, 150, 156), (40, 40, 44), (120, 36, 40), (58, 96, 70))
CLOTHES = ((38, 40, 48), (55, 46, 40), (30, 36, 62), (62, 62, 66), (48, 30, 30))


@dataclass(frozen=True)
class HandStyle:
    skin: tuple[int, int, int]
    sleeve: tuple[int, int, int] | None
    side: int  # +1 right hand, -1 left hand (where the thumb is)
    scale: float


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def hand_layer(size: tuple[int, int], wrist: np.ndarray, d: np.ndarray, style: HandStyle,
               carried: list[tuple[Sprite, float, float]], velocity: np.ndarray, exposure: float) -> Layer:
    """A skin-coloured forearm and hand reaching along ``d`` with its wrist at ``wrist`` (pixels), holding
    ``carried`` sprites (centred at pixel positions), motion-blurred by ``velocity`` (px/frame) x ``exposure``."""
    W, H = size
    s = H * style.scale
    speed = float(np.hypot(*velocity))
    kernel = line_kernel(exposure * speed, math.atan2(velocity[1], velocity[0])) if speed > 0 else None
    pad = int(0.35 * s + (kernel.shape[0] if kernel is not None else 0)) + 8
    CW, CH = W + 2 * pad, H + 2 * pad
    off = np.array([pad, pad], np.float64)
    n = np.array([-d[1], d[0]])
    skin = np.zeros((CH, CW), np.uint8)
    sleeve = np.zeros((CH, CW), np.uint8)
    sh = 16.0  # fixed-point drawing (4 fractional bits)

    def P(p: np.ndarray) -> tuple[int, int]:
        q = (p + off) * sh
        return int(round(q[0])), int(round(q[1]))

    def capsule(mask: np.ndarray, a: np.ndarray, b: np.ndarray, width: float) -> None:
        cv2.line(mask, P(a), P(b), 255, max(1, int(round(width))), cv2.LINE_AA, shift=4)

    wr = np.asarray(wrist, np.float64)
    far = wr - d * 1.6 * s
    aw_far, aw_wrist = 0.13 * s, 0.095 * s
    quad = np.array([far + n * aw_far / 2, wr + n * aw_wrist / 2, wr - n * aw_wrist / 2, far - n * aw_far / 2])
    cv2.fillPoly(skin, [np.array([P(p) for p in quad], np.int32)], 255, cv2.LINE_AA, shift=4)
    palm_c = wr + d * 0.075 * s
    angle = math.degrees(math.atan2(d[1], d[0]))
    cv2.ellipse(skin, P(palm_c), (int(0.085 * s * sh), int(0.06 * s * sh)), angle, 0, 360, 255, -1, cv2.LINE_AA,
                shift=4)
    lengths = (0.08, 0.095, 0.09, 0.07)
    for k, length in enumerate(lengths):
        base = wr + d * 0.13 * s + n * style.side * (-0.04 + 0.027 * k) * s
        fd = _rot(d, style.side * (-0.10 + 0.07 * k))
        capsule(skin, base, base + fd * length * s, 0.024 * s)
    tb = wr + d * 0.05 * s - n * style.side * 0.05 * s
    capsule(skin, tb, tb + _rot(d, -style.side * 0.8) * 0.075 * s, 0.028 * s)
    if style.sleeve is not None:
        sq = np.array([far + n * aw_far * 0.62, wr - d * 0.22 * s + n * aw_wrist * 0.66,
                       wr - d * 0.22 * s - n * aw_wrist * 0.66, far - n * aw_far * 0.62])
        cv2.fillPoly(sleeve, [np.array([P(p) for p in sq], np.int32)], 255, cv2.LINE_AA, shift=4)

    # bounding box of what was drawn, grown for carried items, blur and shadow
    both = cv2.max(skin, sleeve)
    x, y, bw, bh = cv2.boundingRect(both)
    boxes = [(x, y, x + bw, y + bh)]
    for spr, cx, cy in carried:
        h, w = spr.alpha.shape
        boxes.append((int(cx - w / 2 + pad), int(cy - h / 2 + pad), int(cx + w / 2 + pad) + 1,
                      int(cy + h / 2 + pad) + 1))
    grow = (kernel.shape[0] if kernel is not None else 0) + int(0.12 * s) + 4
    bx0 = max(0, min(b[0] for b in boxes) - grow)
    by0 = max(0, min(b[1] for b in boxes) - grow)
    bx1 = min(CW, max(b[2] for b in boxes) + grow)
    by1 = min(CH, max(b[3] for b in boxes) + grow)
    skin_a = skin[by0:by1, bx0:bx1].astype(np.float32) / 255.0
    sleeve_a = sleeve[by0:by1, bx0:bx1].astype(np.float32) / 255.0
    # skin shading: rounder (lighter) in the middle of the arm and fingers, darker at the edges
    dist = cv2.distanceTransform((skin[by0:by1, bx0:bx1] > 127).astype(np.uint8), cv2.DIST_L2, 3)
    shade = 0.72 + 0.3 * np.clip(dist / (0.03 * s), 0, 1)
    rgb = np.asarray(style.skin, np.float32)[None, None, :] * shade[:, :, None]
    if style.sleeve is not None:
        sdist = cv2.distanceTransform((sleeve[by0:by1, bx0:bx1] > 127).astype(np.uint8), cv2.DIST_L2, 3)
        sshade = (0.7 + 0.35 * np.clip(sdist / (0.04 * s), 0, 1))[:, :, None]
        rgb = rgb * (1 - sleeve_a[:, :, None]) + np.asarray(style.sleeve, np.float32) * sshade * sleeve_a[:, :, None]
    alpha = np.maximum(skin_a, sleeve_a)
    if carried:
        # the held items under the hand: composite (items first, then the hand over them)
        item_rgb = np.zeros(alpha.shape + (3,), np.float32)
        item_a = np.zeros(alpha.shape, np.float32)
        for spr, cx, cy in carried:
            h, w = spr.alpha.shape
            blend(item_rgb, spr.rgb, spr.alpha, int(round(cx - w / 2)) + pad - bx0, int(round(cy - h / 2)) + pad - by0)
            boxes2 = _clip_box(item_a.shape, int(round(cx - w / 2)) + pad - bx0, int(round(cy - h / 2)) + pad - by0,
                               h, w)
            if boxes2 is not None:
                dst, src = boxes2
                item_a[dst] = item_a[dst] + spr.alpha[src] * (1 - item_a[dst])
        # premultiplied: the hand over the items (item_rgb is premultiplied already); back to straight colour
        premult = rgb * alpha[:, :, None] + item_rgb * (1 - alpha[:, :, None])
        alpha = alpha + item_a * (1 - alpha)
        rgb = premult / np.maximum(alpha, 1e-4)[:, :, None]
    return _finish_layer(rgb.astype(np.float32), alpha.astype(np.float32), bx0 - pad, by0 - pad, H, kernel,
                         (0.025, 0.04), 0.025, 0.32)


def person_layer(size: tuple[int, int], centre: np.ndarray, d: np.ndarray, clothes: tuple[int, int, int],
                 swing: float, velocity: np.ndarray, exposure: float) -> Layer:
    """A person seen from above (shoulders, head, arms) walking along ``d`` - a large dark moving shape."""
    W, H = size
    s = float(H)
    speed = float(np.hypot(*velocity))
    kernel = line_kernel(exposure * speed, math.atan2(velocity[1], velocity[0])) if speed > 0 else None
    pad = int(0.7 * s) + (kernel.shape[0] if kernel is not None else 0) + 8
    CW, CH = W + 2 * pad, H + 2 * pad
    body = np.zeros((CH, CW), np.uint8)
    head = np.zeros((CH, CW), np.uint8)
    n = np.array([-d[1], d[0]])
    angle = math.degrees(math.atan2(d[1], d[0]))
    sh = 16.0

    def P(p):
        return int(round((p[0] + pad) * sh)), int(round((p[1] + pad) * sh))

    c = np.asarray(centre, np.float64)
    cv2.ellipse(body, P(c), (int(0.17 * s * sh), int(0.43 * s * sh)), angle, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    for side in (-1, 1):
        ac = c + n * side * 0.37 * s + d * side * swing * 0.09 * s
        cv2.ellipse(body, P(ac), (int(0.2 * s * sh), int(0.075 * s * sh)), angle, 0, 360, 255, -1, cv2.LINE_AA,
                    shift=4)
    cv2.circle(head, P(c + d * 0.04 * s), int(0.115 * s * sh), 255, -1, cv2.LINE_AA, shift=4)
    both = cv2.max(body, head)
    x, y, bw, bh = cv2.boundingRect(both)
    grow = (kernel.shape[0] if kernel is not None else 0) + int(0.2 * s)
    bx0, by0 = max(0, x - grow), max(0, y - grow)
    bx1, by1 = min(CW, x + bw + grow), min(CH, y + bh + grow)
    body_a = body[by0:by1, bx0:bx1].astype(np.float32) / 255.0
    head_a = head[by0:by1, bx0:bx1].astype(np.float32) / 255.0
    dist = cv2.distanceTransform((both[by0:by1, bx0:bx1] > 127).astype(np.uint8), cv2.DIST_L2, 3)
    shade = (0.7 + 0.45 * np.clip(dist / (0.12 * s), 0, 1))[:, :, None]
    rgb = np.asarray(clothes, np.float32) * shade * (1 - head_a[:, :, None]) + \
        np.asarray((34, 27, 22), np.float32) * shade * head_a[:, :, None]
    alpha = np.maximum(body_a, head_a)
    return _finish_layer(rgb.astype(np.float32), alpha, bx0 - pad, by0 - pad, s, kernel, (0.05, 0.08), 0.07, 0.45)


# ---------------------------------------------------------------- scene renderers

Placement = tuple[float, float, float]  # x, y (fractions of the frame: the object's centre), angle (degrees)


class PhotoScene:
    """State images: sprites (cut-outs of photographs) placed on a table surface."""

    def __init__(self, background: np.ndarray, sprites: dict[str, Sprite], static: list[tuple[str, Placement]] = ()):
        self.size = (background.shape[1], background.shape[0])
        self.sprites = sprites
        bg = background.copy()
        for name, p in static:  # clutter that never moves: part of the table
            self._place(bg, name, p)
        self.background = bg

    def _place(self, img: np.ndarray, name: str, p: Placement) -> None:
        x, y, a = p
        place(img, self.sprites[name].rotated(a), x * self.size[0], y * self.size[1])

    def render(self, content: tuple[tuple[str, Placement], ...]) -> np.ndarray:
        img = self.background.copy()
        for name, p in content:
            self._place(img, name, p)
        return img

    def carried(self, name: str, p: Placement) -> tuple[Sprite, float, float]:
        """The object as held in a hand: its sprite and its centre in pixels when at ``p``."""
        x, y, a = p
        return self.sprites[name].rotated(a), x * self.size[0], y * self.size[1]


class SyntheticScene:
    """State images drawn by the product's own generator (:func:`utils.synthetic.render`).

    Objects: ``box`` (placement x = the box's left edge), ``lid`` (the camera covered: a dark frame) and
    items ``name -> (shape, radius, colour)`` placed at their centres.
    """

    def __init__(self, size: tuple[int, int], items: dict[str, tuple[str, float, tuple[int, int, int]]]):
        self.size = size
        self.items = items
        self._carried: dict = {}

    def _scene(self, content):
        from utils.synthetic import Item, Scene

        box_x, dark, items = None, False, []
        for name, (x, y, _a) in content:
            if name == "box":
                box_x = x
            elif name == "lid":
                dark = True
            else:
                shape, r, color = self.items[name]
                items.append(Item(shape, x, y, r, color))
        return Scene(box_x=box_x, items=tuple(items), dark=dark)

    def render(self, content) -> np.ndarray:
        from utils.synthetic import render

        return np.asarray(render(self._scene(content), self.size, noise=0.0), np.float32).copy()

    def carried(self, name: str, p: Placement) -> tuple[Sprite, float, float]:
        """The object alone, cut out by comparing the empty table with the table holding only it."""
        key = (name, p)
        if key not in self._carried:
            empty = self.render(())
            alone = self.render(((name, p),))
            diff = np.abs(alone - empty).max(axis=2)
            m = cv2.GaussianBlur(cv2.dilate((diff > 6).astype(np.uint8) * 255, np.ones((3, 3), np.uint8)), (0, 0), 0.8)
            x, y, w, h = cv2.boundingRect((m > 0).astype(np.uint8))
            spr = Sprite(alone[y:y + h, x:x + w].copy(), m[y:y + h, x:x + w].astype(np.float32) / 255.0)
            self._carried[key] = (spr, x + w / 2, y + h / 2)
        return self._carried[key]


# ---------------------------------------------------------------- the stream builder


_NOISE_PAD = 64  # noise fields are this much larger than the frame: 2 x 64 x 64 x 2 distinct crops


class Stream:
    """Builds one camera stream event by event; labels each frame as it is made.

    Every event (an item put down, moved, removed by a hand; hands passing; a person walking through; a
    bumped camera; the lights dimmed) is followed by the new (or unchanged) state held for a while.
    """

    def __init__(self, name: str, scene, seed: int, *, fps: float = 5.0, description: str = "",
                 hold: tuple[int, int] = (3, 15), hand_frames: tuple[int, int] = (2, 8)):
        self.name, self.scene, self.fps, self.description = name, scene, fps, description
        self.size = scene.size
        self.rng = np.random.default_rng(seed)
        self.hold_range, self.hand_range = hold, hand_frames
        self.noise = float(self.rng.uniform(2.0, 4.0))
        self.flicker = float(self.rng.uniform(0.02, 0.03))
        self.quality = int(self.rng.integers(85, 93))
        self.exposure = float(self.rng.uniform(0.08, 0.2))  # shutter open for this share of the frame interval
        W, H = self.size
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        self.vignette = (1.0 - 0.07 * r2)[:, :, None].astype(np.float32)
        # Sensor noise: i.i.d. Gaussian fields, made once; each frame takes a crop at an offset not used before
        # in this sequence (and a sign), so any two frames get independent noise at every pixel - at a tenth of
        # the cost of drawing 3 x W x H new samples per frame.
        self._bank = self.rng.standard_normal((2, H + _NOISE_PAD, W + _NOISE_PAD, 3), dtype=np.float32)
        self._bank *= np.float32(self.noise)
        self._noise_codes = self.rng.permutation(2 * _NOISE_PAD * _NOISE_PAD * 2)
        self._noise_used = 0
        self.content: dict[str, Placement] = {}
        self.light = 1.0
        self.frames: list[bytes] = []
        self.labels: list[str] = []
        self._ids: dict = {}
        self._images: dict = {}

    # ------------------------------------------------------------ states and frames

    def _key(self, content: dict | None = None, light: float | None = None):
        content = self.content if content is None else content
        return (round(self.light if light is None else light, 4), tuple(sorted(content.items())))

    def _state_id(self) -> str:
        key = self._key()
        if key not in self._ids:
            self._ids[key] = f"s{len(self._ids)}"
        return self._ids[key]

    def _image(self, content: dict) -> np.ndarray:
        key = tuple(sorted(content.items()))
        if key not in self._images:
            self._images[key] = self.scene.render(key)
        return self._images[key]

    def _camera(self, img: np.ndarray, gain: float = 1.0) -> bytes:
        """What the camera delivers of the (clean, float) scene ``img``: shift, light, noise, JPEG."""
        rng = self.rng
        W, H = self.size
        dx, dy = (int(v) for v in rng.integers(-1, 2, size=2))
        flick = 1.0 + rng.uniform(-self.flicker, self.flicker)
        if dx or dy:
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            img = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        out = img * (self.vignette * np.float32(self.light * flick * gain))
        code = int(self._noise_codes[self._noise_used])
        self._noise_used += 1
        bank, rest = divmod(code, _NOISE_PAD * _NOISE_PAD * 2)
        oy, rest = divmod(rest, _NOISE_PAD * 2)
        ox, sign = divmod(rest, 2)
        noise = self._bank[bank, oy: oy + H, ox: ox + W]
        if sign:
            out += noise
        else:
            out -= noise
        np.clip(out, 0, 255, out=out)
        bgr = cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        assert ok
        return buf.tobytes()

    def _emit(self, label: str, img: np.ndarray, gain: float = 1.0) -> None:
        self.frames.append(self._camera(img, gain))
        self.labels.append(label)

    def hold(self, n: int | None = None) -> "Stream":
        """The current state, still, for ``n`` frames (random in the hold range when None)."""
        if n is None:
            n = int(self.rng.integers(self.hold_range[0], self.hold_range[1] + 1))
        label, img = self._state_id(), self._image(self.content)
        for _ in range(n):
            self._emit(label, img)
        return self

    # ------------------------------------------------------------ hands

    def _style(self) -> HandStyle:
        rng = self.rng
        return HandStyle(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], SLEEVES[int(rng.integers(len(SLEEVES)))],
                         int(rng.choice([-1, 1])), float(rng.uniform(1.0, 1.25)))

    def _approach(self, target: np.ndarray, edge: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Direction a hand comes from to reach pixel ``target``, and the length of its path from off-frame."""
        W, H = self.size
        rng = self.rng
        if edge is None:
            edge = str(rng.choice(["bottom", "left", "right", "top"], p=[0.5, 0.2, 0.2, 0.1]))
        lateral = rng.uniform(-0.25, 0.25)
        entry = {
            "bottom": (target[0] + lateral * W, H * 1.05),
            "top": (target[0] + lateral * W, -0.05 * H),
            "left": (-0.05 * W, target[1] + lateral * H),
            "right": (W * 1.05, target[1] + lateral * H),
        }[edge]
        d = target - np.asarray(entry, np.float64)
        d /= np.hypot(*d)
        return d, edge

    def _out_distance(self, p: np.ndarray, d: np.ndarray, reach: float) -> float:
        """How far back along -d from ``p`` until something of size ``reach`` ahead of it is off the frame."""
        W, H = self.size
        ts = []
        for pos, dir_, lim in ((p[0], -d[0], W), (p[1], -d[1], H)):
            if dir_ > 1e-6:
                ts.append((lim - pos) / dir_)
            elif dir_ < -1e-6:
                ts.append(pos / -dir_)
        return min(ts) + reach

    def _hand_frames(self, path: list[tuple[np.ndarray, list[tuple[Sprite, float, float]]]], d: np.ndarray,
                     style: HandStyle, bases: list[dict]):
        """Emit transient frames for wrist positions ``path`` (each with the items held then) over the table
        content ``bases[i]``; motion blur from the wrist's speed between neighbouring frames."""
        W, H = self.size
        for i, (wrist, carried) in enumerate(path):
            prev = path[i - 1][0] if i > 0 else None
            nxt = path[i + 1][0] if i + 1 < len(path) else None
            if prev is None:
                prev = wrist - (nxt - wrist if nxt is not None else np.zeros(2))
            if nxt is None:
                nxt = wrist + (wrist - prev)
            velocity = (nxt - prev) / 2.0
            layer = hand_layer(self.size, wrist, d, style, carried, velocity, self.exposure)
            for _ in range(20):  # a transient frame must show the hand: move it further in if it barely shows
                if layer.visible_share(self.size) >= 0.004:
                    break
                step = d * 0.04 * H
                wrist = wrist + step
                carried = [(spr, cx + step[0], cy + step[1]) for spr, cx, cy in carried]
                layer = hand_layer(self.size, wrist, d, style, carried, velocity, self.exposure)
            img = self._image(bases[i]).copy()
            layer.apply(img)
            self._emit(TRANSIENT, img, gain=1.0 - 0.02 * min(1.0, 20 * layer.visible_share(self.size)))

    def _leg(self, target_wrist: np.ndarray, d: np.ndarray, n: int, inward: bool, reach: float) -> list[np.ndarray]:
        """``n`` wrist positions coming in to (inward) or going out from ``target_wrist`` along ``d``."""
        rng = self.rng
        L = max(0.0, self._out_distance(target_wrist, d, 0.0)) + reach
        outside = target_wrist - d * L
        ts = []
        for k in range(1, n + 1):
            t = k / n if inward else 1.0 - k / (n + 1)
            t = 1.0 - (1.0 - t) ** 1.6 if inward else t ** 0.8
            if not (inward and k == n):
                t = float(np.clip(t + rng.uniform(-0.06, 0.06), 0.3, 0.97))
            ts.append(max(t, 0.3))
        return [outside + t * (target_wrist - outside) for t in ts]

    def _hand_counts(self, n: int | None, parts: int) -> list[int]:
        if n is None:
            n = int(self.rng.integers(self.hand_range[0], self.hand_range[1] + 1))
        n = max(n, parts)
        counts = [1] * parts
        for _ in range(n - parts):
            counts[int(self.rng.integers(parts))] += 1
        return counts

    def _grip(self, style: HandStyle) -> float:
        return 0.19 * self.size[1] * style.scale  # wrist to the middle of the held item

    def put(self, name: str, x: float, y: float, angle: float = 0.0, *, edge: str | None = None,
            frames: int | None = None, hold: int | None = None) -> "Stream":
        """A hand brings ``name`` in and puts it down at (x, y); the new state starts when the hand has left."""
        p = (x, y, angle)
        spr, cx, cy = self.scene.carried(name, p)
        target = np.array([cx, cy])
        d, _ = self._approach(target, edge)
        style = self._style()
        grip = self._grip(style)
        wrist1 = target - d * grip
        reach = 0.25 * self.size[1] + max(spr.alpha.shape) / 2
        n_in, n_out = self._hand_counts(frames, 2)
        path = []
        for w in self._leg(wrist1, d, n_in, True, reach):
            path.append((w, [(spr, w[0] + cx - wrist1[0], w[1] + cy - wrist1[1])]))
        after = dict(self.content)
        after[name] = p
        for w in self._leg(wrist1, d, n_out, False, reach):
            path.append((w, []))
        self._hand_frames(path, d, style, [self.content] * n_in + [after] * (len(path) - n_in))
        self.content = after
        return self.hold(hold)

    def remove(self, name: str, *, edge: str | None = None, frames: int | None = None,
               hold: int | None = None) -> "Stream":
        """A hand takes ``name`` away (the scene may return to an earlier state: same id)."""
        p = self.content[name]
        spr, cx, cy = self.scene.carried(name, p)
        target = np.array([cx, cy])
        d, _ = self._approach(target, edge)
        style = self._style()
        wrist1 = target - d * self._grip(style)
        reach = 0.25 * self.size[1] + max(spr.alpha.shape) / 2
        n_in, n_out = self._hand_counts(frames, 2)
        after = {k: v for k, v in self.content.items() if k != name}
        path = [(w, []) for w in self._leg(wrist1, d, n_in, True, reach)]
        for w in self._leg(wrist1, d, n_out, False, reach):
            path.append((w, [(spr, w[0] + cx - wrist1[0], w[1] + cy - wrist1[1])]))
        self._hand_frames(path, d, style, [self.content] * n_in + [after] * (len(path) - n_in))
        self.content = after
        return self.hold(hold)

    def move(self, name: str, x: float, y: float, angle: float | None = None, *, edge: str | None = None,
             frames: int | None = None, hold: int | None = None) -> "Stream":
        """A hand picks ``name`` up and puts it down elsewhere (optionally turned)."""
        p0 = self.content[name]
        p1 = (x, y, p0[2] if angle is None else angle)
        spr0, cx0, cy0 = self.scene.carried(name, p0)
        spr1, cx1, cy1 = self.scene.carried(name, p1)
        t0, t1 = np.array([cx0, cy0]), np.array([cx1, cy1])
        d, _ = self._approach((t0 + t1) / 2, edge)
        style = self._style()
        grip = self._grip(style)
        w0, w1 = t0 - d * grip, t1 - d * grip
        reach = 0.25 * self.size[1] + max(spr1.alpha.shape) / 2
        n_in, n_carry, n_out = self._hand_counts(frames, 3)
        during = {k: v for k, v in self.content.items() if k != name}
        after = dict(during)
        after[name] = p1
        path = [(w, []) for w in self._leg(w0, d, n_in, True, reach)]
        for k in range(1, n_carry + 1):
            f = k / (n_carry + 1)
            w = w0 + f * (w1 - w0)
            spr = spr0 if f < 0.5 else spr1
            path.append((w, [(spr, w[0] + grip * d[0], w[1] + grip * d[1])]))
        path += [(w, []) for w in self._leg(w1, d, n_out, False, reach)]
        # under the hand: the item at its old place, then lifted (gone), then at its new place
        self._hand_frames(path, d, style, [self.content] * n_in + [during] * n_carry + [after] * n_out)
        self.content = after
        return self.hold(hold)

    def change(self, name: str, p: Placement | None, *, under: str = "switch", edge: str | None = None,
               frames: int | None = None, hold: int | None = None) -> "Stream":
        """A hand changes something without carrying it visibly (closes a lid: ``p`` set; opens it: None).

        ``under``: what the hand frames show behind the hand: the scene ``before`` the change, ``after`` it, or
        before it while the hand comes in and after it while the hand goes away (``switch``).
        """
        W, H = self.size
        target = np.array([W * self.rng.uniform(0.35, 0.65), H * self.rng.uniform(0.35, 0.65)])
        d, _ = self._approach(target, edge)
        style = self._style()
        wrist1 = target - d * self._grip(style)
        n_in, n_out = self._hand_counts(frames, 2)
        after = {k: v for k, v in self.content.items() if k != name}
        if p is not None:
            after[name] = p
        reach = 0.25 * H
        path = [(w, []) for w in self._leg(wrist1, d, n_in, True, reach)]
        path += [(w, []) for w in self._leg(wrist1, d, n_out, False, reach)]
        switch = {"before": len(path), "after": 0, "switch": n_in}[under]
        self._hand_frames(path, d, style, [self.content] * switch + [after] * (len(path) - switch))
        self.content = after
        return self.hold(hold)

    def hands(self, *, edge: str | None = None, frames: int | None = None, hold: int | None = None) -> "Stream":
        """A hand passes through (reaches in, hovers, goes away); the state does not change."""
        W, H = self.size
        target = np.array([W * self.rng.uniform(0.2, 0.8), H * self.rng.uniform(0.2, 0.8)])
        d, _ = self._approach(target, edge)
        style = self._style()
        wrist1 = target - d * self._grip(style)
        n_in, n_out = self._hand_counts(frames, 2)
        path = [(w, []) for w in self._leg(wrist1, d, n_in, True, 0.25 * H)]
        path += [(w, []) for w in self._leg(wrist1, d, n_out, False, 0.25 * H)]
        self._hand_frames(path, d, style, [self.content] * len(path))
        return self.hold(hold)

    # ------------------------------------------------------------ other transients and lighting

    def walk(self, *, frames: int | None = None, hold: int | None = None) -> "Stream":
        """A person walks through between camera and table: a large dark shape crossing the frame."""
        W, H = self.size
        rng = self.rng
        n = int(frames if frames is not None else rng.integers(3, 7))
        horizontal = rng.uniform() < 0.7
        sign = float(rng.choice([-1.0, 1.0]))
        d = np.array([sign, 0.0]) if horizontal else np.array([0.0, sign])
        span = W if horizontal else H
        across = rng.uniform(0.3, 0.7) * (H if horizontal else W)
        clothes = CLOTHES[int(rng.integers(len(CLOTHES)))]
        start, end = 0.0, span
        img0 = self._image(self.content)
        step = (end - start) / max(1, n - 1)
        for k in range(n):
            along = start + (end - start) * (k / max(1, n - 1)) + rng.uniform(-0.04, 0.04) * span
            if sign < 0:
                along = span - along
            for _ in range(20):  # a large part of the person must be in the picture
                centre = np.array([along, across]) if horizontal else np.array([across, along])
                layer = person_layer(self.size, centre, d, clothes, math.sin(k * 1.7), d * step, self.exposure)
                if layer.visible_share(self.size) >= 0.05:
                    break
                along += 0.03 * span * (1 if along < span / 2 else -1)
            img = img0.copy()
            layer.apply(img)
            self._emit(TRANSIENT, img, gain=1.0 - 0.25 * min(1.0, 2.5 * layer.visible_share(self.size)))
        return self.hold(hold)

    def shake(self, *, hold: int | None = None) -> "Stream":
        """One frame blurred by a bumped camera (the table's state is unchanged)."""
        length = float(self.rng.uniform(10, 26)) * self.size[1] / 480
        k = line_kernel(length, float(self.rng.uniform(0, np.pi)))
        img = cv2.filter2D(self._image(self.content), -1, k, borderType=cv2.BORDER_REPLICATE)
        self._emit(TRANSIENT, img)
        return self.hold(hold)

    def dim(self, factor: float, *, hold: int | None = None) -> "Stream":
        """The lights are dimmed for good (a new state for a person, unlike the few-% flicker)."""
        self.light *= factor
        return self.hold(hold)

    def build(self) -> Sequence:
        return Sequence(self.name, self.frames, self.labels, False, self.fps, self.description)


# ---------------------------------------------------------------- object catalogue

COIN_CENTRES = ((45, 47, 23), (155, 45, 25), (213, 48, 24), (272, 120, 26), (215, 192, 28), (340, 185, 35),
                (100, 195, 22), (300, 260, 26))
BRONZE, SILVER, GREEN_TINT = (1.06, 0.84, 0.58), (0.98, 1.0, 1.05), (0.8, 1.05, 0.85)


def coin(i: int, area: float, size, tint=BRONZE) -> Sprite:
    x, y, r = COIN_CENTRES[i]
    return cutout("coins", (x - r, y - r, x + r, y + r), "ellipse", area, size, soft=0.8, tint=tint)


def catalogue(size: tuple[int, int]) -> dict[str, Callable[[float], Sprite]]:
    """Objects cut out of the photographs; each entry takes the object's share of the frame area."""
    return {
        "cup": lambda a: cutout("coffee", (75, 65, 485, 395), "ellipse", a, size, soft=2.5),
        "box_big": lambda a: cutout("stereo_motorcycle", (527, 31, 596, 97), "rect", a, size, soft=0.8),
        "box_med": lambda a: cutout("stereo_motorcycle", (590, 62, 637, 97), "rect", a, size, soft=0.8),
        "box_low": lambda a: cutout("stereo_motorcycle", (616, 186, 682, 250), "rect", a, size, soft=0.8),
        "bottle": lambda a: cutout("stereo_motorcycle", (401, 53, 419, 92), "rect", a, size, soft=0.8),
        "can": lambda a: cutout("stereo_motorcycle", (452, 67, 472, 90), "ellipse", a, size, soft=0.8),
        "tray": lambda a: cutout("stereo_motorcycle", (562, 140, 625, 167), "rect", a, size, soft=1.0),
        "crate": lambda a: cutout("stereo_motorcycle", (526, 181, 615, 250), "rect", a, size, soft=0.8),
        "cat_print": lambda a: cutout("chelsea", (60, 0, 400, 300), "rect", a, size, soft=0.7, border=0.05),
        "astro_card": lambda a: cutout("astronaut", (0, 0, 512, 512), "rect", a, size, soft=0.7),
        "rocket_card": lambda a: cutout("rocket", (180, 0, 480, 427), "rect", a, size, soft=0.7, border=0.04),
        "camera_print": lambda a: cutout("camera", (0, 0, 512, 512), "rect", a, size, soft=0.7, border=0.05),
        "page": lambda a: cutout("page", None, "rect", a, size, soft=0.7),
        "note": lambda a: cutout("text", None, "rect", a, size, soft=0.7),
        "sticker": lambda a: cutout("logo", (20, 40, 480, 460), "ellipse", a, size, soft=0.8),
        "orange": lambda a: cutout("retina", None, "bright", a, size, soft=1.5),
        "disc": lambda a: cutout("colorwheel", (8, 8, 362, 362), "ellipse", a, size, soft=1.0),
        "pouch": lambda a: cutout("astronaut", (10, 300, 210, 500), "blob", a, size, soft=2.0, seed=3),
        "bag": lambda a: cutout("immunohistochemistry", (100, 60, 400, 300), "blob", a, size, soft=2.5, seed=5),
        "stone1": lambda a: cutout("gravel", (100, 100, 180, 160), "blob", a, size, soft=1.5, seed=7,
                                   tint=(1.0, 0.95, 0.88)),
        "stone2": lambda a: cutout("gravel", (300, 280, 370, 340), "blob", a, size, soft=1.5, seed=11,
                                   tint=(0.95, 0.95, 1.0)),
        "horse": lambda a: solid((58, 44, 36), "horse", a, size),
        "horse_red": lambda a: solid((180, 40, 36), "horse", a, size),
    }


def _sprites(size, spec: dict[str, tuple]) -> dict[str, Sprite]:
    """``spec``: name -> (catalogue entry or ("coin", i, tint), area)."""
    cat = catalogue(size)
    out = {}
    for name, (kind, area) in spec.items():
        if isinstance(kind, tuple):
            _, i, tint = kind
            out[name] = coin(i, area, size, tint)
        else:
            out[name] = cat[kind](area)
    return out


# ---------------------------------------------------------------- the sequences


def seq_gravel_small() -> Sequence:
    size = (640, 480)
    bg = texture_background("gravel", size, scale=1.3, mean=138, contrast=0.75, tint=(1.0, 0.93, 0.82), light_from=1)
    sprites = _sprites(size, {
        "coin_a": (("coin", 0, BRONZE), 0.012), "coin_b": (("coin", 3, SILVER), 0.016),
        "can": ("can", 0.02), "bottle": ("bottle", 0.025), "box": ("box_med", 0.035), "sticker": ("sticker", 0.02),
    })
    b = Stream("photo-gravel-small-objects", PhotoScene(bg, sprites), 101,
               description="small objects (1.2-3.5 % of the frame) put down one by one on gravel; a coin moved, "
                           "a box put down and removed again, hands passing, a bumped camera")
    b.hold()
    b.put("coin_a", 0.3, 0.4).put("can", 0.66, 0.34).hands().put("coin_b", 0.5, 0.72)
    b.move("coin_a", 0.18, 0.7).put("box", 0.78, 0.66).remove("box").shake()
    b.put("sticker", 0.44, 0.28).hands().remove("coin_b").put("bottle", 0.62, 0.55, 30).hands()
    return b.build()


def seq_concrete_large() -> Sequence:
    size = (640, 480)
    bg = texture_background("moon", size, scale=1.3, mean=150, contrast=1.4, tint=(1.0, 0.98, 0.95), light_from=-1)
    sprites = _sprites(size, {
        "box": ("box_big", 0.14), "cup": ("cup", 0.11), "print": ("cat_print", 0.09), "page": ("page", 0.08),
        "tray": ("tray", 0.06),
    })
    b = Stream("photo-concrete-large-objects", PhotoScene(bg, sprites), 202,
               description="large objects (6-14 %) on concrete: box, cup, photo print, sheet, tray; the box moved "
                           "and turned, the cup removed, a person walking through")
    b.hold()
    b.put("box", 0.3, 0.38).put("cup", 0.72, 0.62).walk().move("box", 0.3, 0.68, 12).put("print", 0.7, 0.25, -8)
    b.remove("cup").hands().put("page", 0.72, 0.66).remove("print").put("tray", 0.68, 0.22).walk()
    return b.build()


def seq_granite_dim() -> Sequence:
    size = (640, 480)
    bg = texture_background("hubble_deep_field", size, scale=0.8, mean=52, contrast=1.6, tint=(0.95, 0.95, 1.0),
                            offset=(100, 150))
    sprites = _sprites(size, {
        "coin": (("coin", 5, SILVER), 0.02), "orange": ("orange", 0.03), "disc": ("disc", 0.025),
        "sticker": ("sticker", 0.022), "card": ("rocket_card", 0.06), "can": ("can", 0.018),
    })
    b = Stream("photo-granite-dim-lights", PhotoScene(bg, sprites), 303,
               description="a dark speckled countertop; objects put down, then the lights dimmed by 28 % for the "
                           "rest; more objects in the dim light, one removed again (earlier dim state)")
    b.hold()
    b.put("coin", 0.25, 0.3).put("orange", 0.7, 0.6).hands().put("disc", 0.45, 0.7)
    b.dim(0.72).shake().put("sticker", 0.72, 0.25).put("card", 0.2, 0.68, 5).remove("card").hands()
    b.put("can", 0.5, 0.4)
    return b.build()


def seq_cluttered() -> Sequence:
    size = (640, 480)
    bg = texture_background("immunohistochemistry", size, scale=1.25, mean=170, contrast=0.55,
                            tint=(1.0, 0.97, 0.97))
    sprites = _sprites(size, {
        "page": ("page", 0.08), "tray": ("tray", 0.05), "bottle": ("bottle", 0.02),
        "coin": (("coin", 2, BRONZE), 0.012), "can": ("can", 0.02), "sticker": ("sticker", 0.018),
        "box": ("box_med", 0.04),
    })
    scene = PhotoScene(bg, sprites, static=[("page", (0.15, 0.2, -6)), ("tray", (0.85, 0.85, 3)),
                                            ("bottle", (0.9, 0.18, 0))])
    b = Stream("photo-cluttered-table", scene, 404,
               description="a busy patterned cloth with clutter that never moves (sheet, tray, bottle); small items "
                           "added and removed, hands passing often")
    b.hold()
    b.hands().put("coin", 0.45, 0.45).hands().put("can", 0.6, 0.3).hands().put("sticker", 0.3, 0.65)
    b.remove("can").hands().put("box", 0.62, 0.62).move("coin", 0.42, 0.3).hands()
    return b.build()


def seq_mat_irregular() -> Sequence:
    size = (800, 600)
    bg = texture_background("grass", size, scale=1.0, mean=82, contrast=0.55, tint=(0.85, 1.0, 0.9), light_from=1)
    sprites = _sprites(size, {
        "pouch": ("pouch", 0.05), "stone1": ("stone1", 0.015), "stone2": ("stone2", 0.025), "horse": ("horse", 0.04),
        "bag": ("bag", 0.07), "sticker": ("sticker", 0.02),
    })
    b = Stream("photo-mat-irregular-800", PhotoScene(bg, sprites), 505,
               description="800x600, a dark fibre mat; irregular soft-edged objects (pouch, stones, a toy horse, a "
                           "patterned bag); moves with turns, removals back to earlier states")
    b.hold()
    b.put("pouch", 0.3, 0.35, 20).put("stone1", 0.7, 0.7).put("horse", 0.68, 0.3).hands()
    b.move("pouch", 0.28, 0.7, -35).put("stone2", 0.5, 0.5).remove("stone2").shake()
    b.put("bag", 0.33, 0.2).remove("stone1").move("horse", 0.63, 0.66, 180).put("sticker", 0.15, 0.45)
    return b.build()


def seq_brick_1280() -> Sequence:
    size = (1280, 960)
    bg = texture_background("brick", size, scale=1.5, mean=150, contrast=0.8, tint=(1.05, 0.88, 0.78), light_from=-1)
    sprites = _sprites(size, {
        "box": ("box_big", 0.12), "box_low": ("box_low", 0.08), "crate": ("crate", 0.1), "cup": ("cup", 0.06),
    })
    b = Stream("photo-brick-1280-walkthrough", PhotoScene(bg, sprites), 606,
               description="1280x960, a tiled surface; big boxes and a crate, people walking through twice, a bumped "
                           "camera, the lights dimmed at the end")
    b.hold()
    b.put("box", 0.28, 0.35).walk().put("crate", 0.7, 0.65).shake().put("cup", 0.72, 0.25).walk()
    b.remove("box").put("box_low", 0.3, 0.62).dim(0.7)
    return b.build()


def seq_low_contrast() -> Sequence:
    size = (640, 480)
    bg = texture_background("moon", size, scale=1.0, mean=185, contrast=0.9, tint=(1.0, 1.0, 0.98), offset=(40, 20))
    sprites = _sprites(size, {
        "page": ("page", 0.07), "stone1": ("stone1", 0.02), "stone2": ("stone2", 0.015),
        "print": ("camera_print", 0.05), "note": ("note", 0.04),
    })
    # stones tinted to the surface: low contrast
    for k in ("stone1", "stone2"):
        sprites[k] = Sprite(np.clip(sprites[k].rgb * 0.55 + 80, 0, 255).astype(np.float32), sprites[k].alpha)
    b = Stream("photo-low-contrast", PhotoScene(bg, sprites), 707,
               description="light grey surface, objects close to it in colour: a printed sheet, pale stones, a grey "
                           "photo print, a note; hard to see changes")
    b.hold()
    b.put("page", 0.3, 0.35, 4).put("stone1", 0.7, 0.7).hands().put("note", 0.7, 0.3, -10).put("stone2", 0.25, 0.75)
    b.move("stone1", 0.5, 0.55).remove("note").put("print", 0.72, 0.3).hands()
    return b.build()


def seq_coffee_busy() -> Sequence:
    size = (640, 480)
    bg = photo_background("coffee", size)
    sprites = _sprites(size, {
        "coin": (("coin", 4, BRONZE), 0.015), "card": ("rocket_card", 0.05), "note": ("note", 0.05),
        "can": ("can", 0.018), "disc": ("disc", 0.02),
    })
    b = Stream("photo-coffee-busy", PhotoScene(bg, sprites), 808,
               description="a busy real photograph as the table (wood, cup and saucer, spoon); small and medium "
                           "items added on it, one moved, one removed")
    b.hold()
    b.put("coin", 0.85, 0.8).put("card", 0.12, 0.75, -12).hands().put("can", 0.85, 0.2)
    b.move("coin", 0.6, 0.9).walk().put("note", 0.88, 0.55, 80).remove("card").put("disc", 0.1, 0.25)
    return b.build()


GREY, BLUE, RED, GREEN = (128, 128, 128), (40, 80, 200), (200, 50, 40), (60, 160, 70)


def seq_synthetic_box() -> Sequence:
    size = (640, 480)
    items = {"c1": ("circle", 0.15, GREY), "tri": ("triangle", 0.14, BLUE), "c2": ("circle", 0.15, GREY),
             "sq": ("square", 0.11, RED), "g1": ("circle", 0.05, GREEN), "g2": ("circle", 0.05, GREEN)}
    b = Stream("synthetic-box-packing", SyntheticScene(size, items), 909,
               description="utils.synthetic: the demo story as a stream: a box slid in by hand, items put in, "
                           "the triangle moved, lights dimmed 30 %, the lid closed (dark), opened again")
    b.hold()
    b.put("box", 0.2, 0.0, edge="left")
    b.put("c1", 0.35, 0.42).put("tri", 0.58, 0.55).move("tri", 0.64, 0.7).put("c2", 0.52, 0.36).hands()
    b.put("sq", 0.36, 0.7).put("g1", 0.6, 0.3).put("g2", 0.68, 0.3).dim(0.7)
    # the lid covers the camera: the hand closing or opening it is seen against the lit scene only
    b.change("lid", (0.0, 0.0, 0.0), under="before").change("lid", None, under="after")
    return b.build()


def seq_synthetic_small_1280() -> Sequence:
    size = (1280, 960)
    items = {f"g{i}": ("circle", 0.065, GREEN) for i in range(4)}  # about 1 % of the frame each
    items.update({"r": ("square", 0.055, RED), "b": ("triangle", 0.07, BLUE)})
    b = Stream("synthetic-small-items-1280", SyntheticScene(size, items), 1010,
               description="utils.synthetic at 1280x960: a box in place; small items (about 1 % of the frame) added "
                           "one by one, one moved, one removed")
    b.content = {"box": (0.2, 0.0, 0.0)}
    b.hold()
    b.put("g0", 0.3, 0.4).put("g1", 0.4, 0.4).hands().put("r", 0.6, 0.7).put("g2", 0.5, 0.4)
    b.move("r", 0.35, 0.72).remove("g1").put("b", 0.62, 0.35)
    return b.build()


def seq_rapid() -> Sequence:
    size = (640, 480)
    bg = texture_background("gravel", size, scale=1.3, mean=110, contrast=0.6, tint=(0.9, 0.95, 1.0))
    sprites = _sprites(size, {
        "coin": (("coin", 1, BRONZE), 0.014), "can": ("can", 0.02), "box": ("box_med", 0.04),
        "sticker": ("sticker", 0.02),
    })
    b = Stream("photo-rapid-short-holds", PhotoScene(bg, sprites), 1111, hold=(3, 5), hand_frames=(2, 3),
               description="fast work: states held only 3-5 frames, hands for 2-3 frames; an item removed and "
                           "put back at the same place (earlier state again)")
    b.hold()
    b.put("coin", 0.3, 0.3).put("can", 0.6, 0.6).hands().put("box", 0.7, 0.28).remove("box")
    b.put("sticker", 0.25, 0.7).remove("sticker").put("sticker", 0.25, 0.7).shake()
    return b.build()


def seq_hands_busy() -> Sequence:
    size = (640, 480)
    bg = texture_background("grass", size, scale=1.2, mean=120, contrast=0.5, tint=(0.95, 0.9, 0.8), offset=(60, 0))
    sprites = _sprites(size, {
        "cup": ("cup", 0.07), "coin": (("coin", 6, SILVER), 0.015), "print": ("astro_card", 0.05),
    })
    b = Stream("photo-hands-busy", PhotoScene(bg, sprites), 1212,
               description="few changes, many transients: hands reaching in and out, people walking through, a "
                           "bumped camera")
    b.hold()
    b.hands().hands().put("cup", 0.35, 0.4).hands().walk().hands().put("coin", 0.7, 0.7).shake().hands()
    b.hands(frames=8).walk().put("print", 0.7, 0.3).hands().shake()
    return b.build()


# ---------------------------------------------------------------- the stills


def original_toydata(folder: Path = ORIGINAL_TOYDATA) -> Sequence | None:
    """The original app's 17 frames, labelled from their README (14 states, no transient)."""
    files = sorted(folder.glob("*.JPG")) + sorted(folder.glob("*.jpg"))
    if len(files) != 17:
        warnings.warn(f"original toydata not found in {folder}: sequence skipped", stacklevel=2)
        return None
    # 01,02 | 03 | 04,05 | 06 | 07 | 08 | 09 | 10,11 | 12 | 13 | 14 | 15 | 16 | 17
    groups = [[1, 2], [3], [4, 5], [6], [7], [8], [9], [10, 11], [12], [13], [14], [15], [16], [17]]
    label = {i: f"s{k}" for k, g in enumerate(groups) for i in g}
    return Sequence("original-toydata", [f.read_bytes() for f in files], [label[i] for i in range(1, 18)], True, 1.0,
                    "the original app's demo frames (378x302): a box slides in, items added, grey background, dark")


def project_toydata(folder: Path = PROJECT_TOYDATA) -> Sequence | None:
    """The product's ``toydata/``: labels from its README ("(same)" = the state of the frame before)."""
    readme = folder / "README.md"
    if not readme.is_file():
        warnings.warn(f"{readme} missing: sequence skipped", stacklevel=2)
        return None
    entries = re.findall(r"^- (\d+\.jpg): (.+)$", readme.read_text(), flags=re.M)
    frames, labels, n = [], [], -1
    for fname, what in entries:
        if not what.strip().endswith("(same)") or n < 0:
            n += 1
        frames.append((folder / fname).read_bytes())
        labels.append(f"s{n}")
    return Sequence("toydata", frames, labels, True, 1.0, "the product's demo frames (utils.synthetic), 640x480")


STREAMS: dict[str, Callable[[], Sequence]] = {
    "photo-gravel-small-objects": seq_gravel_small,
    "photo-concrete-large-objects": seq_concrete_large,
    "photo-granite-dim-lights": seq_granite_dim,
    "photo-cluttered-table": seq_cluttered,
    "photo-mat-irregular-800": seq_mat_irregular,
    "photo-brick-1280-walkthrough": seq_brick_1280,
    "photo-low-contrast": seq_low_contrast,
    "photo-coffee-busy": seq_coffee_busy,
    "synthetic-box-packing": seq_synthetic_box,
    "synthetic-small-items-1280": seq_synthetic_small_1280,
    "photo-rapid-short-holds": seq_rapid,
    "photo-hands-busy": seq_hands_busy,
}
QUICK = ("photo-rapid-short-holds", "synthetic-box-packing")


def all_sequences(quick: bool = False, only: Iterable[str] = ()) -> list[Sequence]:
    """Every labelled sequence (stills folders first); ``quick``: a small subset for tests (a few seconds);
    ``only``: just the sequences with these names."""
    only = set(only)
    out = []
    for name, make in (("original-toydata", original_toydata), ("toydata", project_toydata)):
        if not only or name in only:
            seq = make()
            if seq is not None:
                out.append(seq)
    for name, make in STREAMS.items():
        if (not quick or name in QUICK) and (not only or name in only):
            out.append(make())
    return out


# ---------------------------------------------------------------- CLI: frames, labels, contact sheets

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
            (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180)]


def contact_sheets(seq: Sequence, folder: Path, cols: int = 8, rows: int = 6, thumb: tuple[int, int] = (240, 180)
                   ) -> list[Path]:
    """PNG pages of thumbnails, each with its frame number and label (state ids coloured, T in red)."""
    tw, th = thumb
    per = cols * rows
    states = seq.states()
    paths = []
    for page in range(math.ceil(len(seq.frames) / per)):
        sheet = np.full((rows * (th + 22) + 4, cols * (tw + 4) + 4, 3), 32, np.uint8)
        for k in range(per):
            i = page * per + k
            if i >= len(seq.frames):
                break
            img = cv2.imdecode(np.frombuffer(seq.frames[i], np.uint8), cv2.IMREAD_COLOR)
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
            r, c = divmod(k, cols)
            y, x = 4 + r * (th + 22), 4 + c * (tw + 4)
            label = seq.labels[i]
            color = (40, 40, 255) if label == TRANSIENT else _PALETTE[states.index(label) % len(_PALETTE)][::-1]
            sheet[y: y + th, x: x + tw] = img
            cv2.rectangle(sheet, (x - 2, y - 2), (x + tw + 1, y + th + 1), color, 2)
            cv2.putText(sheet, f"{i:03d} {label}", (x + 2, y + th + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, color, 1,
                        cv2.LINE_AA)
        path = folder / f"sheet-{page + 1:02d}.png"
        cv2.imwrite(str(path), sheet)
        paths.append(path)
    return paths


def write_sequence(seq: Sequence, folder: Path, sheet: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, data in enumerate(seq.frames):
        name = f"{i:04d}.jpg"
        (folder / name).write_bytes(data)
        names.append(name)
    (folder / "labels.json").write_text(json.dumps({
        "name": seq.name, "stills": seq.stills, "fps": seq.fps, "description": seq.description,
        "states": len(seq.states()), "transients": seq.transients,
        "frames": [{"file": f, "label": lab} for f, lab in zip(names, seq.labels)],
    }, indent=1))
    if sheet:
        contact_sheets(seq, folder)


def summary(seq: Sequence) -> dict:
    return {"name": seq.name, "frames": len(seq.frames), "states": len(seq.states()), "transients": seq.transients,
            "stills": seq.stills, "fps": seq.fps, "description": seq.description}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write frames, labels.json (and sheets) per sequence here")
    parser.add_argument("--sheet", action="store_true", help="also write contact sheets (PNG) to check the labels")
    parser.add_argument("--quick", action="store_true", help="only the small test subset")
    parser.add_argument("--only", action="append", default=[], help="only this sequence (repeatable)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    seqs = all_sequences(quick=args.quick, only=args.only)
    build_s = time.perf_counter() - t0
    for s in seqs:
        info = summary(s)
        print(f"{s.name:32s} {info['frames']:5d} frames {info['states']:3d} states {info['transients']:4d} transient"
              f"  {s.description}")
        if args.out:
            write_sequence(s, args.out / s.name, args.sheet)
    total = sum(len(s.frames) for s in seqs)
    print(f"{len(seqs)} sequences, {total} frames, built in {build_s:.1f} s")
    if args.out:
        (args.out / "index.json").write_text(json.dumps({"build_s": round(build_s, 2),
                                                         "sequences": [summary(s) for s in seqs]}, indent=1))


if __name__ == "__main__":
    main()
