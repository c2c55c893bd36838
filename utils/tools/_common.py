"""Plumbing shared by the image tools: the modes they accept, the alpha channel set aside and put back,
conversions between Pillow and OpenCV arrays, the library versions that ran, ONNX model files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

MODES = ("RGB", "RGBA", "L")


def normalise_mode(img: Image.Image) -> Image.Image:
    """``img`` in one of :data:`MODES`: "1" and 16/32-bit greys become L, modes with transparency
    (LA, PA, P with a transparent colour) RGBA, every other mode RGB. RGB, RGBA and L pass unchanged."""
    if not isinstance(img, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(img).__name__}")
    if img.mode in MODES:
        return img
    if img.mode in ("1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return img.convert("L")
    if img.mode in ("LA", "La", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("RGB")


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(the colour or grey part of ``img``, its alpha channel or None)."""
    img = normalise_mode(img)
    if img.mode == "RGBA":
        return img.convert("RGB"), img.getchannel("A")
    return img, None


def join_alpha(img: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """``img`` with ``alpha`` put back (an L image becomes RGBA with equal channels); unchanged without alpha."""
    if alpha is None:
        return img
    out = img.convert("RGB") if img.mode != "RGB" else img.copy()
    if alpha.size != out.size:
        alpha = alpha.resize(out.size, Image.Resampling.BILINEAR)
    out.putalpha(alpha)
    return out


def to_bgr(img: Image.Image) -> np.ndarray:
    """An RGB or L image as OpenCV's 8-bit BGR array (a copy)."""
    return cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)


def from_bgr(arr: np.ndarray) -> Image.Image:
    """An OpenCV 8-bit BGR (or single-channel) array as a PIL image (RGB or L)."""
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    return Image.fromarray(cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), "RGB")


def pillow_version() -> str:
    return f"Pillow {PIL.__version__}"


def opencv_version() -> str:
    return f"OpenCV {cv2.__version__}"


def onnxruntime_version() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def file_md5(path: str | Path) -> str:
    """The MD5 of a file (read in chunks), to name the exact model that ran."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_session(path: str | Path, error: type[Exception], what: str):
    """An onnxruntime CPU session for the model file ``path``; ``error`` (naming ``what`` the model is for and
    the path) for a missing, unreadable or invalid file."""
    import onnxruntime

    p = Path(path).expanduser()
    if not p.is_file():
        raise error(f"{what} model file {str(p)!r} does not exist: give the path of an .onnx file")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initializers in the console
    try:
        return onnxruntime.InferenceSession(str(p), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{what} model file {str(p)!r} is not a valid ONNX model ({first[:300]})") from exc
