"""Per-image statistics: EXIF (JSON-safe, GPS decoded), colours, brightness, contrast, sharpness.

Pure functions on bytes and Pillow images, vectorized with numpy/OpenCV; nothing here touches the
database or the network (see :mod:`utils.stats_store` and :mod:`utils.url_fetch`).

* **EXIF**: every standard tag of the main, Exif and GPS directories by name; rationals become
  numbers (``None`` for 0/0), bytes become text when they are printable (``UserComment`` with its
  character-code prefix decoded) and are dropped otherwise; nothing raises.
* **Colours**: over the *opaque* pixels only (alpha >= 128) of a thumbnail of at most
  ``THUMBNAIL_MAX_SIDE`` pixels (like the original stats API): the average colour by
  arithmetic, geometric or harmonic mean, and the dominant colour from a histogram in HSV space.
* **Brightness / contrast**: mean and standard deviation of the luminance (Rec. 601) of the opaque
  pixels, 0..1. **Sharpness**: variance of the Laplacian of the full-size grey image (0..255 scale).
* **Memory**: decoding is bounded by :mod:`utils.imaging` (pixels, bytes per pixel, aspect ratio, decodes at
  once; a large JPEG is decoded at 1/2, 1/4 or 1/8 scale and described at that scale); the decoded image is then
  turned into arrays one strip of about a megapixel at a time (:class:`PixelStats`), with the same results as
  the whole image at once, so no full-size array is ever made.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args

import cv2
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from utils.imaging import (  # also sets Image.MAX_IMAGE_PIXELS
    ImageTooLarge,
    decode_slot,
    open_bounded,
)

AveragingMethod = Literal["arithmetic", "geometric", "harmonic"]
AVERAGING_METHODS: tuple[str, ...] = get_args(AveragingMethod)
THUMBNAIL_MAX_SIDE = 512
ALPHA_OPAQUE = 128  # pixels with alpha below this are transparent (the original API's rule)
_EPS = 1e-8  # zeros are clamped to this (on the 0..255 scale) for the geometric and harmonic means, as the original
_MAX_TEXT = 4000  # longest EXIF text kept

# dominant colour histogram: 12 hue sectors of 30 deg centred on red, yellow, green, ..., 4 saturation x 4 value
# levels; pixels with saturation or value below _GREY_LIMIT are achromatic and binned by value only (8 levels).
_HUE_BINS, _SAT_BINS, _VAL_BINS, _GREY_BINS = 12, 4, 4, 8
_GREY_LIMIT = 38  # 0.15 * 255


_LEVEL = np.arange(256, dtype=np.int32)
# hue 0..255 (= 0..360 deg) to sectors centred on 0, 30, 60, ... deg; the keys of the chromatic bins start after the grey ones
_HUE_LUT = (_GREY_BINS + ((_LEVEL * 2 * _HUE_BINS + 256) // 512) % _HUE_BINS * _SAT_BINS * _VAL_BINS).astype(np.int16)
_SAT_LUT = (_LEVEL * _SAT_BINS // 256 * _VAL_BINS).astype(np.int16)
_VAL_LUT = (_LEVEL * _VAL_BINS // 256).astype(np.int16)
_GREY_LUT = (_LEVEL * _GREY_BINS // 256).astype(np.int16)


class ImageStatsError(ValueError):
    """Bytes that are not a readable image (unknown format, truncated, too large)."""


class ImageTooLargeError(ImageStatsError):
    """An image over the decoding limits of :mod:`utils.imaging`, refused before decoding (the message says which)."""


# ----------------------------------------------------------------- EXIF

_DROP = object()
_POINTER_TAGS = {ExifTags.Base.ExifOffset, ExifTags.Base.GPSInfo, ExifTags.Base.ExifInteroperabilityOffset}
_CHARSET_PREFIXES = {b"ASCII\x00\x00\x00": "ascii", b"UNICODE\x00": "utf-16", b"JIS\x00\x00\x00\x00\x00": "shift_jis"}


def _text(value: str) -> str:
    return value.replace("\x00", "").strip()[:_MAX_TEXT]


def _decode_bytes(value: bytes, tag: str | None = None) -> Any:
    """Printable text from EXIF bytes, or _DROP for binary data."""
    if tag == "UserComment" and len(value) >= 8:
        codec = _CHARSET_PREFIXES.get(value[:8])
        if codec is not None or value[:8] == b"\x00" * 8:
            try:
                text = _text(value[8:].decode(codec or "utf-8"))
            except (UnicodeDecodeError, LookupError):
                return _DROP
            return text if text.isprintable() else _DROP
    try:
        text = value.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return _DROP
    return _text(text) if text.isprintable() else _DROP


def json_safe(value: Any, tag: str | None = None) -> Any:
    """``value`` as plain JSON types: numbers, text, lists, dicts; ``_DROP`` for what cannot be shown."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes):
        return _decode_bytes(value, tag)
    if hasattr(value, "numerator") and hasattr(value, "denominator"):  # IFDRational, Fraction
        try:
            number = float(value)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            safe = json_safe(v, str(k))
            if safe is not _DROP:
                out[str(k)] = safe
        return out
    if isinstance(value, (tuple, list)):
        items = [json_safe(v) for v in value]
        return _DROP if any(i is _DROP for i in items) else items
    try:
        return _text(str(value))
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the statistics
        return _DROP


def exif_data(img: Image.Image) -> dict[str, Any]:
    """Every standard EXIF tag of ``img`` by name, JSON-safe; ``GPSInfo`` as a named dict and, when the
    position is valid, ``GPSPosition`` = {latitude, longitude, altitude} in decimal degrees / metres."""
    out: dict[str, Any] = {}
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - corrupt EXIF must not stop the statistics
        return out
    directories: list[Any] = [exif]
    for ifd_id in (ExifTags.IFD.Exif, ExifTags.IFD.Interop):
        try:
            directories.append(exif.get_ifd(ifd_id))
        except Exception:  # noqa: BLE001
            pass
    for directory in directories:
        for tag, value in directory.items():
            name = ExifTags.TAGS.get(tag)
            if name is None or tag in _POINTER_TAGS:
                continue
            safe = json_safe(value, name)
            if safe is not _DROP:
                out[name] = safe
    try:
        gps_raw = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # noqa: BLE001
        gps_raw = {}
    if gps_raw:
        named = {ExifTags.GPSTAGS.get(k, str(k)): v for k, v in gps_raw.items() if k in ExifTags.GPSTAGS}
        safe_gps = json_safe(named)
        if safe_gps:
            out["GPSInfo"] = safe_gps
        position = gps_position(named)
        if position is not None:
            out["GPSPosition"] = position
    return out


def _dms(value: Any) -> float | None:
    """Degrees from an EXIF (degrees, minutes, seconds) triple (or a single number); None if unusable."""
    if isinstance(value, (tuple, list)):
        parts = [json_safe(v) for v in value]
        if not parts or len(parts) > 3 or any(not isinstance(p, (int, float)) or isinstance(p, bool) for p in parts):
            return None
        parts = [float(p) for p in parts] + [0.0] * (3 - len(parts))
        if parts[1] < 0 or parts[2] < 0 or parts[1] >= 60 or parts[2] >= 60:
            return None
        return parts[0] + parts[1] / 60 + parts[2] / 3600
    number = json_safe(value)
    return float(number) if isinstance(number, (int, float)) and not isinstance(number, bool) else None


def _ref(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    return str(value or "").replace("\x00", "").strip().upper()[:1]


def gps_position(gps: dict[str, Any]) -> dict[str, float | None] | None:
    """Decimal latitude/longitude (and altitude in metres, negative below sea level) from named GPS tags.

    None when latitude or longitude is missing, empty, not a number, out of range, or both are exactly 0
    (the placeholder cameras write without a fix). Real coordinates such as 30.0 are kept.
    """
    lat, lon = _dms(gps.get("GPSLatitude")), _dms(gps.get("GPSLongitude"))
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if _ref(gps.get("GPSLatitudeRef")) == "S":
        lat = -lat
    if _ref(gps.get("GPSLongitudeRef")) == "W":
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    altitude = _dms(gps.get("GPSAltitude")) if not isinstance(gps.get("GPSAltitude"), (tuple, list)) else None
    if altitude is not None and math.isfinite(altitude):
        ref = gps.get("GPSAltitudeRef")
        below = ref in (1, b"\x01", "1") or (isinstance(ref, (tuple, list)) and list(ref)[:1] == [1])
        altitude = -abs(altitude) if below else altitude
    else:
        altitude = None
    return {"latitude": round(lat, 8), "longitude": round(lon, 8), "altitude": altitude}


_EXIF_TIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
#: capture times outside [start, end) in UTC are placeholders or forgeries (0001-01-01, 9999-12-31): ignored
CAPTURE_TIME_RANGE = (datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc))


def _exif_offset(exif: dict[str, Any]) -> timezone | None:
    """``OffsetTimeOriginal`` (``+HH:MM``, at most 14 h) as a time zone, None when missing or invalid."""
    offset = _OFFSET.match(str(exif.get("OffsetTimeOriginal") or "").strip())
    if offset is None:
        return None
    delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if offset.group(1) == "-" else delta)


def exif_capture_time(exif: dict[str, Any]) -> datetime | None:
    """``DateTimeOriginal`` (with ``SubsecTimeOriginal`` and ``OffsetTimeOriginal``) as an aware datetime.

    Without an offset the time is taken as the local time of this machine. None when missing, invalid, or
    outside :data:`CAPTURE_TIME_RANGE` once converted to UTC (``0001:01:01 00:00:00 +14:00`` and
    ``9999:12:31 23:59:59 -12:00`` are not capture times; the EXIF tag itself is kept as it is).
    """
    raw = exif.get("DateTimeOriginal")
    match = _EXIF_TIME.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        return None
    subsec = str(exif.get("SubsecTimeOriginal") or "").strip()
    micro = int(subsec[:6].ljust(6, "0")) if subsec.isdigit() else 0
    zone = _exif_offset(exif)
    try:  # 0000:00:00 placeholders; dates that leave datetime's range when moved to UTC or local time
        value = datetime(*(int(g) for g in match.groups()), micro)  # type: ignore[misc]
        value = value.replace(tzinfo=zone) if zone is not None else value.astimezone()
        in_utc = value.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    start, end = CAPTURE_TIME_RANGE
    return value if start <= in_utc < end else None


CaptureTimeSource = Literal["exif", "database", "file"]


def resolve_capture_time(
    exif_time: datetime | None, db_time: datetime | None, file_time: datetime | None
) -> tuple[datetime | None, CaptureTimeSource | None]:
    """Capture time in UTC and where it came from: EXIF DateTimeOriginal, else the database, else the file time."""
    for value, source in ((exif_time, "exif"), (db_time, "database"), (file_time, "file")):
        if value is not None:
            aware = value if value.tzinfo is not None else value.astimezone()
            return aware.astimezone(timezone.utc), source  # type: ignore[return-value]
    return None, None


# ----------------------------------------------------------------- pixels


def open_image(data: bytes) -> tuple[Image.Image, tuple[int, int]]:
    """Decode ``data`` (first frame) within the limits of :mod:`utils.imaging`: (the image, its full size).

    A large JPEG comes back decoded at 1/2, 1/4 or 1/8 of its full size; :class:`ImageTooLargeError` for other
    images over the limits (before decoding), :class:`ImageStatsError` with a clear reason for unreadable data.
    """
    if not data:
        raise ImageStatsError("empty file (0 bytes)")
    try:
        img, full = open_bounded(data)
        img.load()
    except ImageTooLarge as err:
        raise ImageTooLargeError(str(err)) from None
    except UnidentifiedImageError:
        raise ImageStatsError(f"not an image (first bytes {data[:8]!r}, {len(data)} bytes)") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as err:
        raise ImageStatsError(f"broken or truncated image: {err}") from None
    if img.width < 1 or img.height < 1:
        raise ImageStatsError("image without pixels")
    return img, full


_GREY_DEEP = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def grey_top(img: Image.Image) -> float:
    """The value that maps to white for a 16/32-bit grey image: 65535 for 16-bit, else its largest finite value
    (at least 1)."""
    if img.mode.startswith("I;16"):
        return 65535.0
    top = 1.0
    for rows in strip_rows(img.width, img.height):
        strip = np.asarray(img.crop((0, rows.start, img.width, rows.stop)), dtype=np.float64)
        finite = strip[np.isfinite(strip)]
        if finite.size:
            top = max(top, float(finite.max()))
    return top


def to_rgb_alpha(img: Image.Image, top: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB uint8 HxWx3, alpha uint8 HxW or None) for any Pillow mode; 16/32-bit grey scaled to 8 bits
    (``top`` maps to white: :func:`grey_top` of the whole image when ``img`` is a part of it)."""
    mode = img.mode
    if mode in _GREY_DEEP:
        arr = np.asarray(img, dtype=np.float64)
        top = grey_top(img) if top is None else top
        grey = np.clip(np.nan_to_num(arr) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        arr = np.asarray(img.convert("RGBA"))
        return np.ascontiguousarray(arr[:, :, :3]), np.ascontiguousarray(arr[:, :, 3])
    if mode == "RGB":
        return np.asarray(img), None
    if mode == "L":
        grey = np.asarray(img)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    return np.asarray(img.convert("RGB")), None


def thumbnail_pixels(rgb: np.ndarray, alpha: np.ndarray | None, max_side: int = THUMBNAIL_MAX_SIDE) -> np.ndarray:
    """Opaque pixels (N x 3 uint8) of the image shrunk (area averaging) to at most ``max_side`` pixels."""
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    pixels = rgb.reshape(-1, 3)
    if alpha is not None:
        pixels = pixels[alpha.reshape(-1) >= ALPHA_OPAQUE]
    return pixels


_LEVELS = np.maximum(np.arange(256, dtype=np.float64), _EPS)
_LOG_LUT = np.log(_LEVELS)
_INV_LUT = 1.0 / _LEVELS


def average_color(pixels: np.ndarray, method: str = "arithmetic") -> np.ndarray:
    """Mean colour (3 floats in 0..1) of N x 3 uint8 pixels by ``arithmetic``, ``geometric`` or ``harmonic`` mean.

    Zeros are clamped to 1e-8 (on the 0..255 scale) like the original API, so a channel that is 0 in
    half of the pixels has a geometric or harmonic mean of (almost) 0.
    """
    if method not in AVERAGING_METHODS:
        raise ValueError(f"averaging method must be one of {', '.join(AVERAGING_METHODS)}, got {method!r}")
    if len(pixels) == 0:
        raise ValueError("no pixels to average")
    if method == "arithmetic":
        mean = pixels.mean(axis=0, dtype=np.float64)
    elif method == "geometric":
        mean = np.exp(_LOG_LUT[pixels].mean(axis=0))
    else:
        mean = 1.0 / _INV_LUT[pixels].mean(axis=0)
    return np.clip(mean / 255.0, 0.0, 1.0)


def dominant_color(pixels: np.ndarray) -> np.ndarray:
    """Dominant colour (3 floats in 0..1) of N x 3 uint8 pixels: the fullest bin of an HSV histogram.

    Bins: 12 hue sectors of 30 degrees centred on red, orange, yellow, ... (so reds on both sides of 0 degrees
    fall together) x 4 saturation x 4 value levels. **Greys**: pixels with saturation or value below 0.15 have
    no reliable hue; they go into 8 achromatic bins by value only (black ... white). **Ties**: the bin with the
    lowest index wins, i.e. achromatic bins (dark to light) before chromatic ones, then by hue starting at red,
    then by saturation and value. The answer is the mean RGB of the pixels in the winning bin.
    """
    if len(pixels) == 0:
        raise ValueError("no pixels")
    # one row of N pixels: OpenCV converts it in one pass (N rows of one pixel cost ~5x more)
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels, dtype=np.uint8).reshape(1, -1, 3), cv2.COLOR_RGB2HSV_FULL)[0]
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    key = np.take(_HUE_LUT, h) + np.take(_SAT_LUT, s) + np.take(_VAL_LUT, v)
    grey = (s < _GREY_LIMIT) | (v < _GREY_LIMIT)
    key[grey] = _GREY_LUT[v[grey]]
    best = int(np.argmax(np.bincount(key, minlength=_GREY_BINS + _HUE_BINS * _SAT_BINS * _VAL_BINS)))
    return pixels[key == best].mean(axis=0, dtype=np.float64) / 255.0


def rgb_hex(rgb: np.ndarray | tuple[float, float, float] | list[float]) -> str:
    """``#rrggbb`` of a colour with channels in 0..1 (rounded to the nearest level)."""
    r, g, b = (int(min(255, max(0, round(float(c) * 255)))) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luminance (uint8 HxW) of an RGB uint8 image."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


# ----------------------------------------------------------------- large images, strip by strip

STRIP_PIXELS = 1 << 20  # pixels turned into arrays at a time: the working memory does not grow with the image


def strip_rows(width: int, height: int) -> list[range]:
    """The rows of the horizontal strips (about :data:`STRIP_PIXELS` pixels each) an image is processed in."""
    step = max(1, STRIP_PIXELS // max(width, 1))
    return [range(y, min(height, y + step)) for y in range(0, height, step)]


def thumbnail_size(width: int, height: int, max_side: int = THUMBNAIL_MAX_SIDE) -> tuple[int, int] | None:
    """Size of the colour thumbnail (same aspect, longer side ``max_side``); None when the image is not larger."""
    if max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class PixelStats:
    """Brightness, contrast, sharpness and the colour thumbnail of an image fed strip by strip, top to bottom.

    The strips' sums add up to the whole image's, so the figures are those of the whole image at once:
    brightness and contrast are the mean and standard deviation of the luminance of the opaque pixels; sharpness
    is the variance of the Laplacian (3x3 aperture, reflected border) over all pixels, each strip seeing one row
    of its neighbours; the thumbnail is an area average, first across each strip, then down the stacked result.
    """

    def __init__(self, width: int, height: int) -> None:
        self.lum = np.zeros(3)  # opaque pixels: count, sum, sum of squares of the luminance
        self.lap = np.zeros(3)  # every pixel: count, sum, sum of squares of the Laplacian
        self.flat = min(width, height) < 3  # too small for a Laplacian: sharpness 0
        self.size = thumbnail_size(width, height)
        self.pixels = width * height
        # one strip: kept as it is for thumbnail_pixels; several: each shrunk across into one buffer, then down
        self.two_pass = self.size is not None and len(strip_rows(width, height)) > 1
        self.parts: list[tuple[np.ndarray, np.ndarray | None]] = []
        self.row = 0  # rows of the buffers filled so far
        self.across: tuple[np.ndarray, np.ndarray] | None = None  # (RGB, alpha) float32, full height, thumbnail width
        if self.two_pass:
            shape = (height, self.size[0])  # type: ignore[index]
            self.across = np.empty((*shape, 3), np.float32), np.empty(shape, np.float32)

    def add(self, rgb: np.ndarray, alpha: np.ndarray | None, core: slice) -> None:
        """One strip: ``rgb``/``alpha`` hold its rows plus up to one row above and below; ``core`` its own rows."""
        grey = luminance(rgb)
        if not self.flat:
            self.lap += _sums(cv2.Laplacian(grey, cv2.CV_16S)[core])  # -1020..1020: exact in 16 bits
        rgb, grey = rgb[core], grey[core]
        alpha = None if alpha is None else alpha[core]
        self.lum += _sums(grey if alpha is None else grey[alpha >= ALPHA_OPAQUE])
        if self.across is None:
            self.parts.append((rgb, alpha))
            return
        rows = slice(self.row, self.row + rgb.shape[0])
        self.row = rows.stop
        size = (self.size[0], rgb.shape[0])  # type: ignore[index]
        cv2.resize(rgb.astype(np.float32), size, dst=self.across[0][rows], interpolation=cv2.INTER_AREA)
        if alpha is None:
            self.across[1][rows] = 255.0
        else:
            cv2.resize(alpha.astype(np.float32), size, dst=self.across[1][rows], interpolation=cv2.INTER_AREA)

    def brightness_contrast(self) -> tuple[float | None, float | None]:
        """Mean and standard deviation (0..1) of the opaque pixels' luminance; None without opaque pixels."""
        mean, std = _mean_std(self.lum)
        return (None, None) if mean is None else (mean / 255.0, std / 255.0)

    def sharpness(self) -> float:
        """Variance of the Laplacian on the 0..255 scale; 0 for images narrower than 3 pixels."""
        _, std = _mean_std(self.lap)
        return 0.0 if std is None else std**2

    def thumbnail(self) -> np.ndarray:
        """Opaque pixels (N x 3 uint8) of the thumbnail (see :func:`thumbnail_pixels`)."""
        if self.across is None:
            rgb = np.concatenate([p[0] for p in self.parts])
            alphas = [p[1] for p in self.parts]
            alpha = None if alphas[0] is None else np.concatenate(alphas)  # type: ignore[arg-type]
            return thumbnail_pixels(rgb, alpha)
        rgb, alpha = (_to_uint8(cv2.resize(a, self.size, interpolation=cv2.INTER_AREA)) for a in self.across)
        return rgb.reshape(-1, 3)[alpha.reshape(-1) >= ALPHA_OPAQUE]

    @property
    def opaque_fraction(self) -> float:
        return float(self.lum[0]) / self.pixels


def _sums(values: np.ndarray) -> np.ndarray:
    """count, sum, sum of squares of pixel values (from OpenCV's mean and deviation, summed in doubles)."""
    n = values.size
    if not n:
        return np.zeros(3)
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(values.reshape(-1, 1)))
    return np.array([n, mean * n, (std * std + mean * mean) * n])


def _mean_std(sums: np.ndarray) -> tuple[float | None, float | None]:
    n, total, squares = sums
    if not n:
        return None, None
    mean = total / n
    return mean, math.sqrt(max(squares / n - mean * mean, 0.0))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def pixel_stats(img: Image.Image) -> PixelStats:
    """:class:`PixelStats` of a decoded image, converted to arrays one strip (plus a row each side) at a time."""
    w, h = img.size
    top = grey_top(img) if img.mode in _GREY_DEEP else None
    stats = PixelStats(w, h)
    for rows in strip_rows(w, h):
        first, stop = max(0, rows.start - 1), min(h, rows.stop + 1)
        strip = img if (first, stop) == (0, h) else img.crop((0, first, w, stop))
        rgb, alpha = to_rgb_alpha(strip, top)
        stats.add(rgb, alpha, slice(rows.start - first, rows.stop - first))
    return stats


# ----------------------------------------------------------------- all together


@dataclass(frozen=True)
class ColorInfo:
    rgb: tuple[float, float, float]  # 0..1
    hex: str


@dataclass
class ImageStats:
    """Everything computed for one image (see the module docstring for the definitions)."""

    width: int
    height: int
    format: str | None
    mode: str
    file_size: int
    averaging_method: str
    opaque_fraction: float
    avg_color: ColorInfo | None
    dominant_color: ColorInfo | None
    brightness: float | None
    contrast: float | None
    sharpness: float
    exif: dict[str, Any] = field(default_factory=dict)
    exif_captured_at: datetime | None = None
    decoded_scale: int = 1  # 2, 4 or 8: a large JPEG decoded reduced; the pixel figures are of that image

    @property
    def gps(self) -> dict[str, float | None] | None:
        return self.exif.get("GPSPosition")

    def color_data(self) -> dict[str, Any] | None:
        """The original stats API's ``color_data``; None when no pixel is opaque."""
        if self.avg_color is None or self.dominant_color is None:
            return None
        return {
            "avg_color": {"rgb": list(self.avg_color.rgb), "hex": self.avg_color.hex, "method": self.averaging_method},
            "dominant_color": {"rgb": list(self.dominant_color.rgb), "hex": self.dominant_color.hex},
        }

    def as_row(self) -> dict[str, Any]:
        """Flat values for a table (the columns of the ``image_stats`` table and the CSV export)."""
        gps = self.gps or {}
        avg = self.avg_color.rgb if self.avg_color else (None, None, None)
        dom = self.dominant_color.rgb if self.dominant_color else (None, None, None)
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "mode": self.mode,
            "file_size": self.file_size,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "sharpness": self.sharpness,
            "opaque_fraction": self.opaque_fraction,
            "avg_method": self.averaging_method,
            "avg_r": avg[0],
            "avg_g": avg[1],
            "avg_b": avg[2],
            "avg_hex": self.avg_color.hex if self.avg_color else None,
            "dom_r": dom[0],
            "dom_g": dom[1],
            "dom_b": dom[2],
            "dominant_hex": self.dominant_color.hex if self.dominant_color else None,
            "exif_captured_at": self.exif_captured_at,
            "gps_latitude": gps.get("latitude"),
            "gps_longitude": gps.get("longitude"),
            "gps_altitude": gps.get("altitude"),
        }


def _color(values: np.ndarray) -> ColorInfo:
    rgb = tuple(float(c) for c in values)
    return ColorInfo(rgb, rgb_hex(values))  # type: ignore[arg-type]


def stats_of_image(img: Image.Image, file_size: int, method: str = "arithmetic",
                   full_size: tuple[int, int] | None = None) -> ImageStats:
    """Statistics of an already decoded image (see :func:`compute_stats`); ``full_size`` is the image's size when
    ``img`` was decoded reduced (a large JPEG)."""
    if method not in AVERAGING_METHODS:
        raise ValueError(f"averaging method must be one of {', '.join(AVERAGING_METHODS)}, got {method!r}")
    exif = exif_data(img)
    try:
        pix = pixel_stats(img)
    except (OSError, ValueError) as err:
        raise ImageStatsError(f"cannot convert the pixels ({img.mode}): {err}") from None
    brightness, contrast = pix.brightness_contrast()
    pixels = pix.thumbnail()
    avg = dom = None
    if len(pixels):
        avg, dom = _color(average_color(pixels, method)), _color(dominant_color(pixels))
    width, height = full_size or img.size
    return ImageStats(
        width=width,
        height=height,
        format=img.format,
        mode=img.mode,
        file_size=int(file_size),
        averaging_method=method,
        opaque_fraction=round(pix.opaque_fraction, 6),
        avg_color=avg,
        dominant_color=dom,
        brightness=None if brightness is None else round(brightness, 6),
        contrast=None if contrast is None else round(contrast, 6),
        sharpness=round(pix.sharpness(), 4),
        exif=exif,
        exif_captured_at=exif_capture_time(exif),
        decoded_scale=max(1, round(width / img.width)),
    )


def compute_stats(data: bytes, method: str = "arithmetic", *, slot_wait: float | None = None) -> ImageStats:
    """All statistics of encoded image bytes; :class:`ImageStatsError` for unreadable or truncated data,
    :class:`ImageTooLargeError` for images over the decoding limits (:mod:`utils.imaging`).

    The decode runs in one of the process's decode slots: waits for one, at most ``slot_wait`` seconds (None: as
    long as it takes), else :class:`utils.imaging.DecodersBusy`. A JPEG over the limits is decoded at 1/2, 1/4
    or 1/8 of its size and its statistics are those of that reduced image (``decoded_scale``). EXIF orientation
    is not applied: statistics describe the stored pixels.
    """
    with decode_slot(slot_wait):
        img, full_size = open_image(data)
        try:
            return stats_of_image(img, len(data), method, full_size)
        finally:
            img.close()


def color_data(img: Image.Image, method: str = "arithmetic") -> dict[str, Any] | None:
    """Only the colours (the original API's ``color_data``) of a decoded image; None without opaque pixels."""
    rgb, alpha = to_rgb_alpha(img)
    pixels = thumbnail_pixels(rgb, alpha)
    if not len(pixels):
        return None
    avg, dom = _color(average_color(pixels, method)), _color(dominant_color(pixels))
    return {
        "avg_color": {"rgb": list(avg.rgb), "hex": avg.hex, "method": method},
        "dominant_color": {"rgb": list(dom.rgb), "hex": dom.hex},
    }
