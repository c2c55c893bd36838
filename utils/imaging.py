"""Image decoding, resizing and encoding helpers (Pillow), shared by the worker and the pages."""

from __future__ import annotations

import io
import json
import math
from datetime import datetime
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

# Pillow refuses images above MAX_IMAGE_PIXELS * 2 with DecompressionBombError and warns
# above MAX_IMAGE_PIXELS; 100 MP covers every industrial camera we know of.
Image.MAX_IMAGE_PIXELS = 100_000_000

DESCRIPTOR_SHORT_SIDE = 224


class ImageDecodeError(ValueError):
    """Bytes that are not a readable image (unknown format, truncated, too large)."""


def needed_size(size: tuple[int, int], max_side: int | None, short_side: int = DESCRIPTOR_SHORT_SIDE) -> tuple[int, int]:
    """Smallest size (same aspect) that still has ``max_side`` on its longer and ``short_side`` on its shorter side."""
    w, h = size
    scale = short_side / min(w, h)
    if max_side:
        scale = max(scale, max_side / max(w, h))
    scale = min(scale, 1.0)
    return max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))


def decode_image(data: bytes, max_side: int | None = None) -> Image.Image:
    """Decode encoded image bytes to an RGB or L image.

    For JPEG, only as many pixels are decoded as later steps need (DCT scaling,
    Pillow's ``draft``): at least ``max_side`` on the longer side and 224 on the shorter.
    ``max_side=None`` decodes at full size.
    """
    try:
        img = Image.open(io.BytesIO(data))
        if max_side is not None and img.format == "JPEG":
            img.draft(img.mode if img.mode in ("RGB", "L") else "RGB", needed_size(img.size, max_side))
        img.load()
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"image too large to decode safely ({err})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(f"not an image (first bytes {data[:8]!r}, {len(data)} bytes)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageDecodeError(f"broken or truncated image: {err}") from None
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    return img


def from_array(array: np.ndarray) -> Image.Image:
    """An RGB (HxWx3) or mono (HxW) uint8 array as a Pillow image."""
    if array.dtype != np.uint8:
        raise ImageDecodeError(f"expected 8-bit frames, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    return Image.fromarray(np.ascontiguousarray(array))


def fit_max_side(img: Image.Image, max_side: int) -> Image.Image:
    """Shrink ``img`` so that its longer side is at most ``max_side`` (never enlarges)."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    scale = max_side / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(new, Image.Resampling.BICUBIC, reducing_gap=2.0)


def make_exif(
    captured_at: datetime,
    order_number: str,
    distance: float | None,
    camera: str = "",
    software: str = "extract-unique-images",
) -> Image.Exif:
    """EXIF with capture time (local time + offset), order number and distance to the nearest kept image."""
    exif = Image.Exif()
    local = captured_at.astimezone()
    stamp = local.strftime("%Y:%m:%d %H:%M:%S")
    offset = local.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else ""
    exif[ExifTags.Base.DateTime] = stamp
    exif[ExifTags.Base.ImageDescription] = f"order {order_number}"
    exif[ExifTags.Base.Software] = software
    if camera:
        exif[ExifTags.Base.Model] = camera[:120]
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = stamp
    ifd[ExifTags.Base.SubsecTimeOriginal] = f"{local.microsecond // 1000:03d}"
    if offset:
        ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    comment: dict[str, Any] = {"order": order_number, "distance": None if distance is None else round(distance, 6)}
    ifd[ExifTags.Base.UserComment] = b"ASCII\x00\x00\x00" + json.dumps(comment).encode("ascii", "replace")
    return exif


def read_user_comment(img: Image.Image) -> dict[str, Any]:
    """The JSON written by :func:`make_exif` into EXIF UserComment, or {}."""
    raw = img.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
    if isinstance(raw, bytes):
        raw = raw[8:].decode("ascii", "replace") if raw[:8] == b"ASCII\x00\x00\x00" else raw.decode("utf-8", "replace")
    try:
        return json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}


def encode_jpeg(img: Image.Image, quality: int, exif: Image.Exif | None = None) -> bytes:
    """JPEG bytes of ``img`` at ``quality`` with optional EXIF."""
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": quality}
    if exif is not None:
        kwargs["exif"] = exif
    img.save(buf, format="JPEG", **kwargs)
    return buf.getvalue()
