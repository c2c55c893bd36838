"""Image decoding, resizing and encoding helpers (Pillow), shared by the worker and the pages.

Images from outside (uploads, image URLs, ``POST /stats``, files the statistics indexer reads) are decoded within
bounds: :func:`open_bounded` reads the header first and refuses, before any pixel is decoded, an image whose
decoded size would pass :data:`MAX_DECODE_PIXELS`, :data:`MAX_DECODE_BYTES` or :data:`MAX_ASPECT_RATIO` (a JPEG
over the limits is decoded reduced instead), and :func:`decode_slot` lets at most :data:`MAX_PARALLEL_DECODES`
such decodes run at once in the process.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

# Pillow refuses images above MAX_IMAGE_PIXELS * 2 with DecompressionBombError and warns
# above MAX_IMAGE_PIXELS; 100 MP covers every industrial camera we know of.
Image.MAX_IMAGE_PIXELS = 100_000_000

DESCRIPTOR_SHORT_SIDE = 224


MAX_DECODE_PIXELS = Image.MAX_IMAGE_PIXELS  # pixels of one decoded image
MAX_DECODE_BYTES = 256 * 2**20  # Pillow's buffer of one decoded image: pixels x bytes per pixel
MAX_ASPECT_RATIO = 100  # longer side : shorter side (Pillow also keeps a pointer per row)
MAX_PARALLEL_DECODES = 2  # bounded decodes at once in one process (the API, the upload analysis, the indexer)
_JPEG_SCALES = (2, 4, 8)  # libjpeg's DCT scaling, Pillow's ``draft``
_decode_slots = threading.BoundedSemaphore(MAX_PARALLEL_DECODES)


class ImageDecodeError(ValueError):
    """Bytes that are not a readable image (unknown format, truncated, too large)."""


class ImageTooLarge(ImageDecodeError):
    """An image whose decoding would pass a limit of this module; the message names the limit."""


class DecodersBusy(RuntimeError):
    """Every decode slot stayed taken for as long as the caller was willing to wait."""


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel Pillow stores for ``mode``: 1 for 8-bit single-band (1, L, P), 2 for 16-bit, else 4."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def size_problem(size: tuple[int, int], mode: str) -> str | None:
    """Why an image of ``size`` in ``mode`` must not be decoded at that size (naming the limit), or None."""
    w, h = size
    if min(w, h) < 1:
        return None  # no pixels: the caller says so
    if max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        return f"{w} x {h} pixels has an aspect ratio beyond the limit of {MAX_ASPECT_RATIO}:1"
    if w * h > MAX_DECODE_PIXELS:
        return f"{w} x {h} = {w * h:,} pixels is more than the limit of {MAX_DECODE_PIXELS:,} pixels"
    need = w * h * pixel_bytes(mode)
    if need > MAX_DECODE_BYTES:
        return (f"{w} x {h} pixels in mode {mode} need {need / 2**20:,.0f} MiB decoded ({pixel_bytes(mode)} bytes "
                f"per pixel), more than the limit of {MAX_DECODE_BYTES / 2**20:,.0f} MiB")
    return None


def open_bounded(data: bytes) -> tuple[Image.Image, tuple[int, int]]:
    """Open ``data`` (header only) for a bounded decode: (the image, not yet loaded; its full size).

    A JPEG over the limits is set to decode at 1/2, 1/4 or 1/8 of its size (whichever is the first to fit);
    any other image over them raises :class:`ImageTooLarge` before a pixel is decoded. Pillow's own errors
    (not an image, broken header) pass through.
    """
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageTooLarge(f"more than twice the limit of {MAX_DECODE_PIXELS:,} pixels ({err})") from None
    full = img.size
    problem = size_problem(full, img.mode)
    if problem is None:
        return img, full
    if img.format == "JPEG" and "aspect" not in problem:
        for scale in _JPEG_SCALES:
            reduced = (math.ceil(full[0] / scale), math.ceil(full[1] / scale))
            if size_problem(reduced, img.mode) is None:
                img.draft(img.mode, (max(1, full[0] // scale), max(1, full[1] // scale)))
                if size_problem(img.size, img.mode) is None:
                    return img, full
                break
        problem += f", even decoded at 1/{_JPEG_SCALES[-1]} of its size"
    img.close()
    raise ImageTooLarge(f"image too large to decode: {problem}")


@contextlib.contextmanager
def decode_slot(wait: float | None = None) -> Iterator[None]:
    """Hold one of the process's :data:`MAX_PARALLEL_DECODES` decode slots; :class:`DecodersBusy` when none is
    free within ``wait`` seconds (None: wait as long as it takes)."""
    if not _decode_slots.acquire(timeout=wait):
        raise DecodersBusy(f"{MAX_PARALLEL_DECODES} images are being decoded already (the limit); "
                           "try again in a moment")
    try:
        yield
    finally:
        _decode_slots.release()


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
