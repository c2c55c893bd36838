"""Style effects: OpenCV's non-photorealistic filters as named presets, and fast neural style transfer with an
ONNX model on onnxruntime (CPU).

Presets (:data:`PRESETS`) work on RGB, RGBA (the alpha channel is kept as it was) and L images:

* ``stylization``: :func:`cv2.stylization` (sigma_s 60, sigma_r 0.45), a watercolour-like look;
* ``pencil_grey`` / ``pencil_colour``: the two results of :func:`cv2.pencilSketch` (sigma_s 60, sigma_r 0.07,
  shade 0.05); the grey one is an L image (RGBA with equal channels when the input had alpha);
* ``detail_enhance``: :func:`cv2.detailEnhance` (sigma_s 10, sigma_r 0.15);
* ``smooth``: edge-preserving smoothing, :func:`cv2.edgePreservingFilter` (recursive filter, sigma_s 60,
  sigma_r 0.4);
* ``cartoon``: colours flattened by repeated :func:`cv2.bilateralFilter` at half size, lightness quantised in bands
  of 24 (of 255) in LAB, with dark outlines from :func:`cv2.adaptiveThreshold` on the median-blurred grey image.

Neural style (:class:`NeuralStyle`) runs a "fast neural style" network (Johnson et al.; the ONNX model zoo's
``mosaic``/``candy``/``udnie``/``rain-princess``/``pointilism`` models, or the PyTorch example's export): one input
``1x3xHxW`` float RGB in NCHW order, first output ``1x3xH'xW'`` in the same value range. The range is 0..255 (the
model zoo's convention) unless the model's metadata says ``input_range`` = ``0-1`` or the caller asks for it. A
model with fixed H and W gets the image resized to that size and the result resized back to the image's size; a
model with dynamic H/W runs at the image's own size (reduced to ``max_side`` and rounded to a multiple of 4, the
network's downsampling factor).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from utils.tools._common import (
    file_md5,
    from_bgr,
    join_alpha,
    onnx_session,
    onnxruntime_version,
    split_alpha,
    to_bgr,
)

PRESETS: dict[str, str] = {
    "stylization": "watercolour-like stylization (OpenCV stylization)",
    "pencil_grey": "pencil sketch in grey (OpenCV pencilSketch)",
    "pencil_colour": "pencil sketch in colour (OpenCV pencilSketch)",
    "detail_enhance": "detail enhancement (OpenCV detailEnhance)",
    "smooth": "edge-preserving smoothing (OpenCV edgePreservingFilter)",
    "cartoon": "cartoon: bilateral-filtered flat colours with adaptive-threshold outlines (OpenCV)",
}

INPUT_RANGES = ("auto", "0-255", "0-1")


class StyleError(ValueError):
    """A style effect that cannot run as asked (unknown preset, bad parameter); the message says what to fix."""


class StyleModelError(StyleError):
    """A neural style model file that is missing, not an ONNX model, or not of the supported signature."""


def _cartoon(bgr: np.ndarray) -> np.ndarray:
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    for _ in range(5):
        small = cv2.bilateralFilter(small, d=9, sigmaColor=30, sigmaSpace=7)
    colour = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    lab = cv2.cvtColor(colour, cv2.COLOR_BGR2LAB)
    lab[..., 0] = (lab[..., 0] // 24) * 24 + 12  # lightness in bands: flat areas, hues untouched
    colour = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
    grey = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 7)
    block = max(3, (min(h, w) // 100) | 1)  # odd, about 1 % of the short side
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 4)
    return cv2.bitwise_and(colour, colour, mask=edges)


def _run_preset(bgr: np.ndarray, name: str) -> np.ndarray:
    if name == "stylization":
        return cv2.stylization(bgr, sigma_s=60, sigma_r=0.45)
    if name in ("pencil_grey", "pencil_colour"):
        grey, colour = cv2.pencilSketch(bgr, sigma_s=60, sigma_r=0.07, shade_factor=0.05)
        return grey if name == "pencil_grey" else colour
    if name == "detail_enhance":
        return cv2.detailEnhance(bgr, sigma_s=10, sigma_r=0.15)
    if name == "smooth":
        return cv2.edgePreservingFilter(bgr, flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.4)
    return _cartoon(bgr)


def apply_preset(img: Image.Image, name: str) -> Image.Image:
    """``img`` with the style preset ``name`` (one of :data:`PRESETS`); a new image of the same size (RGB; L for
    ``pencil_grey``; RGBA when the input had alpha)."""
    if name not in PRESETS:
        raise StyleError(f"unknown style preset {name!r}: choose one of {', '.join(PRESETS)}")
    colour, alpha = split_alpha(img)
    if min(colour.size) < 2:
        raise StyleError(f"style {name!r} needs an image of at least 2x2 pixels, got {colour.width}x{colour.height}")
    return join_alpha(from_bgr(_run_preset(to_bgr(colour), name)), alpha)


class NeuralStyle:
    """A fast-neural-style ONNX model on onnxruntime (CPU); :meth:`apply` styles one image.

    ``input_range``: ``"auto"`` (the model's metadata ``input_range`` if it has one, else 0..255), ``"0-255"``
    or ``"0-1"``; the output is read in the same range and clipped. ``max_side`` bounds the size a model with
    dynamic H/W runs at (CPU time and memory grow with the pixels).
    """

    def __init__(self, model_path: str | os.PathLike[str], *, input_range: str = "auto", max_side: int = 1024):
        if input_range not in INPUT_RANGES:
            raise StyleError(f"input_range must be one of {', '.join(INPUT_RANGES)}, got {input_range!r}")
        if not isinstance(max_side, int) or max_side < 16:
            raise StyleError(f"max_side must be an integer of at least 16, got {max_side!r}")
        self.path = Path(model_path).expanduser()
        self.session = onnx_session(self.path, StyleModelError, "neural style")
        self.max_side = max_side
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        where = f"neural style model {self.path.name!r}"
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise StyleModelError(f"{where} has {len(inputs)} inputs ({names}); a fast-neural-style model has one "
                                  f"image input 1x3xHxW")
        inp = inputs[0]
        shape = list(inp.shape)
        if inp.type != "tensor(float)" or len(shape) != 4:
            raise StyleModelError(f"{where}: input {inp.name!r} is {inp.type} of shape {shape}; expected a float "
                                  f"tensor 1x3xHxW (NCHW, RGB)")
        n, c, h, w = shape
        if (isinstance(n, int) and n != 1) or (isinstance(c, int) and c != 3):
            raise StyleModelError(f"{where}: input {inp.name!r} has shape {shape}; expected 1x3xHxW (one RGB image)")
        out_shape = list(outputs[0].shape) if outputs else []
        if not outputs or len(out_shape) != 4 or (isinstance(out_shape[1], int) and out_shape[1] != 3):
            raise StyleModelError(f"{where}: first output has shape {out_shape}; expected 1x3xHxW (an RGB image)")
        self.input_name = inp.name
        self.fixed_size: tuple[int, int] | None = (w, h) if isinstance(h, int) and isinstance(w, int) else None
        if input_range == "auto":
            meta = self.session.get_modelmeta().custom_metadata_map
            input_range = "0-1" if meta.get("input_range", "").replace(" ", "") in ("0-1", "0..1") else "0-255"
        self.scale = 1.0 if input_range == "0-1" else 255.0
        self.md5 = file_md5(self.path)

    @property
    def description(self) -> str:
        """What runs, for the version record: ``fast neural style <file> md5 <hex> (onnxruntime 1.x)``."""
        return f"fast neural style {self.path.name} md5 {self.md5} ({onnxruntime_version()})"

    def _run_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.fixed_size is not None:
            return self.fixed_size
        w, h = size
        f = min(1.0, self.max_side / max(w, h))
        return max(4, round(w * f / 4) * 4), max(4, round(h * f / 4) * 4)

    def apply(self, img: Image.Image) -> Image.Image:
        """``img`` styled by the model: a new RGB image of the same size (RGBA with the same alpha if it had one)."""
        colour, alpha = split_alpha(img)
        rgb = colour.convert("RGB")
        run = self._run_size(rgb.size)
        if run != rgb.size:
            rgb = rgb.resize(run, Image.Resampling.BICUBIC)
        x = np.asarray(rgb, np.float32).transpose(2, 0, 1)[None] * (self.scale / 255.0)
        try:
            y = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        except Exception as exc:  # onnxruntime's own error types
            raise StyleModelError(f"neural style model {self.path.name!r} failed on a {run[0]}x{run[1]} image: "
                                  f"{str(exc).strip()[:300]}") from exc
        y = np.asarray(y)
        if y.ndim != 4 or y.shape[0] != 1 or y.shape[1] != 3:
            raise StyleModelError(f"neural style model {self.path.name!r} returned shape {list(y.shape)}; "
                                  f"expected 1x3xHxW")
        out = np.clip(y[0].transpose(1, 2, 0) * (255.0 / self.scale), 0, 255)
        styled = Image.fromarray(np.rint(out).astype(np.uint8), "RGB")
        if styled.size != colour.size:
            styled = styled.resize(colour.size, Image.Resampling.BICUBIC)
        return join_alpha(styled, alpha)


@functools.lru_cache(maxsize=4)
def _cached_style(path: str, mtime_ns: int, size: int) -> NeuralStyle:
    return NeuralStyle(path)


def load_neural_style(model_path: str | os.PathLike[str]) -> NeuralStyle:
    """A :class:`NeuralStyle` for ``model_path`` with the default settings, kept loaded while the file is unchanged
    (the session is reused across calls)."""
    p = Path(model_path).expanduser()
    try:
        st = p.stat()
    except OSError:
        raise StyleModelError(f"neural style model file {str(p)!r} does not exist: give the path of an .onnx "
                              f"file") from None
    return _cached_style(str(p.resolve()), st.st_mtime_ns, st.st_size)
