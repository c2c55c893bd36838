"""Background removal: a cut-out of the object on the packing table, with its mask.

Methods (:func:`remove_background`):

* ``reference``: the camera is fixed, so the object is what differs from a frame of the empty station (or any
  chosen reference image). The reference is resized to the image; both are reduced to :data:`WORK_SIDE`, lightly
  blurred and the reference's per-channel gain is matched to the image (robust medians over the unchanged
  pixels; at most 1.5x, channels within 10 % of each other: a change of light, not of scene); the difference
  is taken in CIE LAB with the lightness at half weight (shadows count less than colour); its threshold is
  Otsu's, never below the camera noise (6 times the difference's first quartile: at least a quarter of the
  frame must be background); opening and closing clean the mask, holes are filled and specks below 0.1 % of
  the image dropped. :func:`cv2.grabCut` then refines it, started from that mask: far outside is sure
  background, a band around it probable background, the mask probable foreground, the eroded core of the
  thresholded difference (before closing and filling) and clearly changed pixels sure foreground; so GrabCut
  reopens the notches and holes (the table seen through a ring) that closing and filling had shut.
* ``grabcut``: :func:`cv2.grabCut` from a rectangle the user draws around the object (when there is no
  reference), run on the rectangle plus a margin.
* ``u2net``: a U²-Net ONNX model (``u2netp.onnx``, 4.6 MB, or ``u2net.onnx``) on onnxruntime (CPU), with rembg's
  pre- and post-processing: RGB resized to 320x320 (LANCZOS), divided by its maximum, normalised with ImageNet's
  mean and standard deviation; the first output, min-max normalised, resized back (LANCZOS). Its mask is soft
  (0..255), as rembg's; the others are 0/255. No model is downloaded: :func:`find_u2net_model` finds a file.
* ``auto``: ``u2net`` if a model is found, else ``reference`` if a reference is given, else ``grabcut`` if a
  rectangle is given, else :class:`BackgroundError` saying what to provide.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageColor

from utils.tools._common import file_md5, normalise_mode, onnx_session, onnxruntime_version, opencv_version

METHODS = ("auto", "reference", "grabcut", "u2net")
OUTPUTS = ("transparent", "white", "colour")
U2NET_FILES = ("u2netp.onnx", "u2net.onnx")  # looked for in this order: the small, fast one first
WORK_SIDE = 1024  # the reference and GrabCut methods work at most this many pixels a side
MIN_SIDE = 8
GRABCUT_ITERATIONS = 5


class BackgroundError(ValueError):
    """Background removal that cannot run as asked; the message says what to provide or fix."""


@dataclass
class Cutout:
    """The result: ``image`` (RGBA for "transparent", RGB for "white"/"colour"), ``mask`` (L, 255 = foreground,
    the image's size) and ``method``, the words for what ran (method, library versions, model file)."""

    image: Image.Image
    mask: Image.Image
    method: str


# ------------------------------------------------------------------------------------------------ helpers


def _rgb_array(img: Image.Image, what: str) -> np.ndarray:
    if not isinstance(img, Image.Image):
        raise BackgroundError(f"the {what} must be a PIL image, got {type(img).__name__}")
    img = normalise_mode(img)
    if min(img.size) < MIN_SIDE:
        raise BackgroundError(f"the {what} is {img.width}x{img.height} pixels; at least {MIN_SIDE}x{MIN_SIDE} "
                              f"are needed")
    return np.asarray(img.convert("RGB"))


def _work_size(size: tuple[int, int], side: int = WORK_SIDE) -> tuple[tuple[int, int], float]:
    """(the size to work at, its factor to the real size)."""
    f = min(1.0, side / max(size))
    return (max(1, round(size[0] * f)), max(1, round(size[1] * f))), f


def _shrink(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)


def _to_full(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0/255 work-size mask at the real ``size``: smooth upscale, cut at half (edges follow the shape)."""
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    up = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
    return np.where(up >= 128, 255, 0).astype(np.uint8)


def _ellipse(radius: int) -> np.ndarray:
    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _fill_and_drop_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Outer contours of ``mask`` filled (holes closed), those below ``min_area`` pixels dropped."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros_like(mask)
    keep = [c for c in contours if cv2.contourArea(c) >= min_area]
    cv2.drawContours(out, keep, -1, 255, thickness=cv2.FILLED)
    return out


def _clean(mask: np.ndarray, min_area: float) -> np.ndarray:
    """``mask`` without foreground specks below ``min_area`` pixels and with holes below it filled (larger holes,
    e.g. the table seen through a ring, stay)."""
    out = mask.copy()
    for value, fill in ((255, 0), (0, 255)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats((out == value).astype(np.uint8), connectivity=8)
        small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < min_area]
        if small:
            out[np.isin(labels, small)] = fill
    return out


def _grabcut(rgb: np.ndarray, gc_mask: np.ndarray, rect: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """GrabCut (OpenCV) on ``rgb`` started from ``gc_mask`` (GC_* labels) or, with ``rect``, from that
    rectangle; 0/255 foreground mask."""
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if rect is not None:
        x0, y0, x1, y1 = rect
        cv2.grabCut(bgr, gc_mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    else:
        cv2.grabCut(bgr, gc_mask, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return np.where((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)


def _roi(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (slice(max(0, ys.min() - margin), min(h, ys.max() + 1 + margin)),
            slice(max(0, xs.min() - margin), min(w, xs.max() + 1 + margin)))


# ------------------------------------------------------------------------------------------------ reference


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def difference_from_reference(img: Image.Image, reference: Image.Image) -> np.ndarray:
    """The colour difference (float32, LAB units, lightness at half weight) between ``img`` and ``reference``
    at the work size (:data:`WORK_SIDE`), after blurring both and matching the reference's gain to the image."""
    rgb = _rgb_array(img, "image")
    ref = _rgb_array(reference, "reference image")
    ih, iw = rgb.shape[:2]
    rh, rw = ref.shape[:2]
    if abs(iw / ih - rw / rh) > 0.05 * (iw / ih):
        raise BackgroundError(f"the reference image is {rw}x{rh} and the image {iw}x{ih}: their aspect ratios "
                              f"differ; use a frame of the same camera (same framing) as the reference")
    size, _ = _work_size((iw, ih))
    a = _shrink(rgb, size).astype(np.float32)
    b = cv2.resize(ref, size, interpolation=cv2.INTER_AREA if rw >= size[0] else cv2.INTER_LINEAR)
    b = b.astype(np.float32)
    sigma = max(0.8, 1.5 * size[0] / 1024)
    a = cv2.GaussianBlur(a, (0, 0), sigma)
    b = cv2.GaussianBlur(b, (0, 0), sigma)

    def weighted(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = _lab(np.clip(x, 0, 255)) - _lab(np.clip(y, 0, 255))
        d[..., 0] *= 0.5
        return np.sqrt((d * d).sum(axis=2))

    def light_change(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-channel gain from y to x: a change of light (at most 1.5x either way, channels within 10 %)."""
        g = np.clip(np.median(x, axis=0) / np.maximum(np.median(y, axis=0), 1.0), 2 / 3, 1.5)
        return np.clip(g, 0.9 * g.mean(), 1.1 * g.mean())

    gain = light_change(a.reshape(-1, 3), b.reshape(-1, 3))
    d = weighted(a, b * gain)
    still = d <= np.percentile(d, 50)  # pixels surely of the background: the gain from them alone
    return weighted(a, b * light_change(a[still], b[still]))


def reference_mask(img: Image.Image, reference: Image.Image, refine: bool = True) -> np.ndarray:
    """0/255 foreground mask (the image's size) of what differs from ``reference``: the difference thresholded
    and cleaned, then refined with GrabCut (``refine``)."""
    d = difference_from_reference(img, reference)
    h, w = d.shape
    typical = float(np.percentile(d, 25))  # the camera noise, while at least a quarter of the frame is background
    if typical > 8.0:
        raise BackgroundError("most of the image differs from the reference image: is the reference a frame of the "
                              "same camera, framing and light? For an object that fills most of the frame draw a "
                              "rectangle (method 'grabcut') or use the U²-Net model")
    noise = 6 * typical  # far in the tail of the noise's distribution: an empty station gives (almost) nothing
    scale = 255.0 / max(float(d.max()), 1e-6)
    otsu, _ = cv2.threshold(np.clip(d * scale, 0, 255).astype(np.uint8), 0, 255,
                            cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    thr = max(otsu / scale, noise, 2.0)  # 2 LAB units: below what an eye can tell apart
    k = max(1, round(min(h, w) / 200))
    raw = cv2.morphologyEx(np.where(d > thr, 255, 0).astype(np.uint8), cv2.MORPH_OPEN, _ellipse(k))
    mask = _fill_and_drop_specks(cv2.morphologyEx(raw, cv2.MORPH_CLOSE, _ellipse(3 * k)), 0.001 * h * w)
    if not mask.any():
        raise BackgroundError("nothing differs from the reference image: is the object in view, and is the "
                              "reference a frame of the same station without it?")
    if refine:
        rgb = _shrink(_rgb_array(img, "image"), (w, h))
        band = max(3, round(min(h, w) / 40))
        gc = np.full((h, w), cv2.GC_BGD, np.uint8)
        gc[cv2.dilate(mask, _ellipse(band)) > 0] = cv2.GC_PR_BGD
        gc[mask > 0] = cv2.GC_PR_FGD  # what closing and filling added stays only probable: notches, holes
        gc[(cv2.erode(raw, _ellipse(band)) > 0) & (mask > 0)] = cv2.GC_FGD
        gc[(mask > 0) & (d > 3 * thr)] = cv2.GC_FGD  # clearly changed pixels are the object whatever GrabCut says
        ys, xs = _roi(mask, 3 * band)
        roi = np.ascontiguousarray(gc[ys, xs])
        if (roi == cv2.GC_BGD).any() or (roi == cv2.GC_PR_BGD).any():  # GrabCut needs background to learn from
            out = np.zeros_like(mask)
            out[ys, xs] = _grabcut(np.ascontiguousarray(rgb[ys, xs]), roi)
            out = _clean(cv2.morphologyEx(out, cv2.MORPH_OPEN, _ellipse(k)), 0.001 * h * w)
            if out.any():
                mask = out
    return _to_full(mask, img.size)


# ------------------------------------------------------------------------------------------------ rectangle


def _check_rect(rect: object, size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = size
    want = "rect must be (x0, y0, x1, y1) in the image's pixels with x1 > x0 and y1 > y0"
    if not isinstance(rect, (list, tuple)) or len(rect) != 4:
        raise BackgroundError(f"{want}, got {rect!r}")
    try:
        x0, y0, x1, y1 = (round(float(v)) for v in rect)
    except (TypeError, ValueError):
        raise BackgroundError(f"{want}, got {rect!r}") from None
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise BackgroundError(f"{want}, at least 4 pixels a side inside the {w}x{h} image; got {tuple(rect)}")
    if x0 == 0 and y0 == 0 and x1 == w and y1 == h:
        raise BackgroundError(f"the rectangle {tuple(rect)} covers the whole {w}x{h} image: draw it around the "
                              f"object, leaving some background outside it")
    return x0, y0, x1, y1


def rect_mask(img: Image.Image, rect: tuple[float, float, float, float]) -> np.ndarray:
    """0/255 foreground mask (the image's size) by GrabCut from ``rect`` = (x0, y0, x1, y1), x1/y1 exclusive."""
    rgb = _rgb_array(img, "image")
    x0, y0, x1, y1 = _check_rect(rect, img.size)
    size, f = _work_size(img.size)
    small = _shrink(rgb, size)
    r = [round(x0 * f), round(y0 * f), max(round(x1 * f), round(x0 * f) + 2), max(round(y1 * f), round(y0 * f) + 2)]
    h, w = small.shape[:2]
    margin = max(8, round(0.15 * max(r[2] - r[0], r[3] - r[1])))
    cx0, cy0, cx1, cy1 = max(0, r[0] - margin), max(0, r[1] - margin), min(w, r[2] + margin), min(h, r[3] + margin)
    crop = np.ascontiguousarray(small[cy0:cy1, cx0:cx1])
    gc = np.zeros(crop.shape[:2], np.uint8)
    inner = (r[0] - cx0, r[1] - cy0, min(r[2], w) - cx0, min(r[3], h) - cy0)
    if inner == (0, 0, crop.shape[1], crop.shape[0]):  # the rectangle touches every border: keep a 1-pixel frame
        inner = (1, 1, crop.shape[1] - 1, crop.shape[0] - 1)
    part = _grabcut(crop, gc, inner)
    k = max(1, round(min(h, w) / 200))
    part = cv2.morphologyEx(part, cv2.MORPH_OPEN, _ellipse(k))
    part = _clean(part, 0.005 * (r[2] - r[0]) * (r[3] - r[1]))
    mask = np.zeros((h, w), np.uint8)
    mask[cy0:cy1, cx0:cx1] = part
    if not mask.any():
        raise BackgroundError(f"GrabCut found no object in the rectangle {tuple(rect)}: draw it closer around "
                              f"the object")
    return _to_full(mask, img.size)


# ------------------------------------------------------------------------------------------------ U²-Net


def find_u2net_model(model_path: str | os.PathLike[str] | None = None,
                     u2net_home: str | os.PathLike[str] | None = None) -> Path | None:
    """The U²-Net model file to use, or None: ``model_path`` if it is a file (a folder: ``u2netp.onnx`` or
    ``u2net.onnx`` in it); without one, those names in ``u2net_home``, else in ``$U2NET_HOME``, else in
    ``~/.u2net`` (rembg's folder). Nothing is downloaded."""
    if model_path:
        p = Path(model_path).expanduser()
        if p.is_file():
            return p
        folders = [p] if p.is_dir() else []
    else:
        home = u2net_home or os.environ.get("U2NET_HOME") or Path.home() / ".u2net"
        folders = [Path(home).expanduser()]
    for folder in folders:
        for name in U2NET_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


class U2Net:
    """A U²-Net salient-object model on onnxruntime (CPU) with rembg's pre- and post-processing."""

    def __init__(self, model_path: str | os.PathLike[str]):
        self.path = Path(model_path).expanduser()
        self.session = onnx_session(self.path, BackgroundError, "U²-Net")
        inputs = self.session.get_inputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or inputs[0].type != "tensor(float)" or (isinstance(shape[1], int) and shape[1] != 3):
            got = ", ".join(f"{i.name} {i.type} {list(i.shape)}" for i in inputs)
            raise BackgroundError(f"{self.path.name} is not a U²-Net model: expected one float input 1x3xHxW, got "
                                  f"{got}")
        self.input_name = inputs[0].name
        h, w = shape[2], shape[3]
        self.size = (w, h) if isinstance(h, int) and isinstance(w, int) else (320, 320)
        self.md5 = file_md5(self.path)

    @property
    def description(self) -> str:
        """``u2netp (onnxruntime 1.x, u2netp.onnx md5 <hex>)``."""
        return f"{self.path.stem} ({onnxruntime_version()}, {self.path.name} md5 {self.md5})"

    def mask(self, img: Image.Image) -> np.ndarray:
        """The soft foreground mask (uint8 0..255, the image's size) of ``img``."""
        rgb = Image.fromarray(_rgb_array(img, "image"), "RGB")
        x = np.asarray(rgb.resize(self.size, Image.Resampling.LANCZOS), np.float32)
        x = (x / max(float(x.max()), 1e-6) - MEAN) / STD
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)
        try:
            pred = np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32)
        except Exception as exc:  # onnxruntime's own error types
            raise BackgroundError(f"U²-Net model {self.path.name} failed: {str(exc).strip()[:300]}") from exc
        if pred.ndim < 2:
            raise BackgroundError(f"U²-Net model {self.path.name} returned shape {list(pred.shape)}; expected a map")
        pred = pred.reshape(-1, *pred.shape[-2:])[0]  # rembg: the first output's [:, 0, :, :]
        lo, hi = float(pred.min()), float(pred.max())
        pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
        soft = Image.fromarray((pred * 255).astype(np.uint8), "L").resize(img.size, Image.Resampling.LANCZOS)
        return np.asarray(soft)


@functools.lru_cache(maxsize=2)
def _cached_u2net(path: str, mtime_ns: int, size: int) -> U2Net:
    return U2Net(path)


def load_u2net(model_path: str | os.PathLike[str]) -> U2Net:
    """A :class:`U2Net` for ``model_path``, kept loaded while the file is unchanged."""
    p = Path(model_path).expanduser()
    if not p.is_file():
        raise BackgroundError(f"U²-Net model file {str(p)!r} does not exist: put u2netp.onnx (or u2net.onnx) "
                              f"there, in $U2NET_HOME or in ~/.u2net")
    st = p.stat()
    return _cached_u2net(str(p.resolve()), st.st_mtime_ns, st.st_size)


# ------------------------------------------------------------------------------------------------ the tool


def _colour(colour: object) -> tuple[int, int, int]:
    if isinstance(colour, str):
        try:
            return ImageColor.getrgb(colour)[:3]
        except ValueError:
            pass
    elif isinstance(colour, (list, tuple)) and len(colour) == 3 and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour):
        return int(colour[0]), int(colour[1]), int(colour[2])
    raise BackgroundError(f"colour must be (r, g, b) with 0..255 each or a colour name / #rrggbb, got {colour!r}")


def compose(img: Image.Image, mask: Image.Image, output: str = "transparent",
            colour: tuple[int, int, int] | str = (255, 255, 255)) -> Image.Image:
    """``img`` cut out by ``mask`` (L, 255 = foreground): RGBA with the mask as alpha ("transparent"; an alpha
    the image had is kept where it is lower), or RGB on white ("white") or on ``colour`` ("colour")."""
    if output not in OUTPUTS:
        raise BackgroundError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    img = normalise_mode(img)
    if mask.mode != "L" or mask.size != img.size:
        raise BackgroundError(f"the mask must be an L image of the image's size {img.size}, got {mask.mode} "
                              f"{mask.size}")
    if output == "transparent":
        out = img.convert("RGBA")
        alpha = mask if img.mode != "RGBA" else Image.fromarray(
            np.minimum(np.asarray(mask), np.asarray(img.getchannel("A"))), "L")
        out.putalpha(alpha)
        return out
    fill = (255, 255, 255) if output == "white" else _colour(colour)
    return Image.composite(img.convert("RGB"), Image.new("RGB", img.size, fill), mask)


def remove_background(img: Image.Image, *, reference: Image.Image | None = None,
                      rect: tuple[float, float, float, float] | None = None,
                      model_path: str | os.PathLike[str] | None = None, method: str = "auto",
                      output: str = "transparent", colour: tuple[int, int, int] | str = (255, 255, 255)) -> Cutout:
    """Cut the object out of ``img`` (see the module's doc for the methods); ``output``: "transparent" (RGBA),
    "white" or "colour" (RGB on ``colour``). :class:`BackgroundError` says what is missing or wrong."""
    if method not in METHODS:
        raise BackgroundError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if output not in OUTPUTS:
        raise BackgroundError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if output == "colour":
        _colour(colour)
    _rgb_array(img, "image")
    model = None
    if method in ("auto", "u2net"):
        model = find_u2net_model(model_path)
        if model is None and (model_path or method == "u2net"):
            where = repr(str(model_path)) if model_path else "$U2NET_HOME or ~/.u2net"
            raise BackgroundError(f"no U²-Net model found at {where}: put u2netp.onnx (or u2net.onnx) there or give "
                                  f"model_path; or use method 'reference' or 'grabcut'")
    if method == "auto":
        if model is not None:
            method = "u2net"
        elif reference is not None:
            method = "reference"
        elif rect is not None:
            method = "grabcut"
        else:
            raise BackgroundError("nothing to tell the object from the background: give a reference image of the "
                                  "empty station (reference=...), a rectangle around the object (rect=...), or "
                                  "install a U²-Net model (u2netp.onnx in $U2NET_HOME or ~/.u2net, or "
                                  "model_path=...)")
    if method == "reference":
        if reference is None:
            raise BackgroundError("method 'reference' needs a reference image of the empty station (reference=...)")
        mask = reference_mask(img, reference)
        what = f"reference difference + GrabCut ({opencv_version()})"
    elif method == "grabcut":
        if rect is None:
            raise BackgroundError("method 'grabcut' needs a rectangle around the object: rect=(x0, y0, x1, y1)")
        mask = rect_mask(img, rect)
        what = f"GrabCut from rectangle ({opencv_version()})"
    else:
        net = load_u2net(model)
        mask = net.mask(img)
        what = net.description
    mask_img = Image.fromarray(mask, "L")
    return Cutout(compose(img, mask_img, output, colour), mask_img, what)
