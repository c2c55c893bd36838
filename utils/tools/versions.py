"""Results of the image tools kept as *versions*: new images linked to their source, never a changed original.

:func:`save_version` encodes a tool's result (PNG when it has transparency or is a line image, else JPEG at
``IMAGE_SAVE_QUALITY``) and keeps it in the source's order through :meth:`utils.storage.Store.save_image` (row,
atomic file, row: the same guarantees as a captured frame), with the operation, its parameters and the tool that
ran. :func:`open_source` reads a kept image for a tool, within the decompression-bomb and size limits.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from utils.imaging import size_problem
from utils.storage import ImageRecord, Store, utc_now
from utils.tools._common import normalise_mode


class ToolInputError(ValueError):
    """The image cannot be used by a tool; the message says why and what to do."""


def open_source(rec: ImageRecord, max_pixels: int, store: Store | None = None) -> Image.Image:
    """The kept image ``rec`` decoded (EXIF orientation applied), refused above ``max_pixels`` (TOOLS_MAX_PIXELS);
    with ``store``, also an image whose local copy is only in the central archive."""
    if rec.state != "ok":
        raise ToolInputError(f"Image #{rec.seq} is in the trash; restore it first.")
    if (rec.width or 0) * (rec.height or 0) > max_pixels:
        raise ToolInputError(f"Image #{rec.seq} has {rec.width} x {rec.height} pixels, more than TOOLS_MAX_PIXELS="
                             f"{max_pixels:,}; resize it first or raise the limit.")
    try:
        data = store.read_image(rec) if store is not None else rec.path.read_bytes()
    except OSError as err:
        raise ToolInputError(f"Cannot read {rec.file_name}: {err.strerror or err}.") from err
    return decode_for_tools(data, max_pixels, rec.file_name)


def decode_for_tools(data: bytes, max_pixels: int, name: str = "the image") -> Image.Image:
    """Decode image bytes for a tool: the size checked before any pixel is decoded, EXIF orientation applied,
    transparency kept (RGB, RGBA or L). Raises :class:`ToolInputError`."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > max_pixels:
            raise ToolInputError(f"{name} has {img.width} x {img.height} pixels, more than TOOLS_MAX_PIXELS="
                                 f"{max_pixels:,}; use a smaller image or raise the limit.")
        problem = size_problem(img.size, img.mode)
        if problem:
            raise ToolInputError(f"{name}: {problem}.")
        img.load()
        img = ImageOps.exif_transpose(img)
    except ToolInputError:
        raise
    except Image.DecompressionBombError as err:
        raise ToolInputError(f"{name} is too large to decode safely ({err}).") from None
    except UnidentifiedImageError:
        raise ToolInputError(f"{name} is not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP, ...).") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ToolInputError(f"{name} is broken or truncated: {err}") from None
    return normalise_mode(img)


def encode_result(img: Image.Image, jpeg_quality: int = 95) -> tuple[bytes, str]:
    """(bytes, suffix): PNG for images with an alpha channel or a palette, and for grey line images (edges, pencil
    sketch: JPEG would smear them); JPEG otherwise."""
    buf = io.BytesIO()
    if img.mode in ("RGBA", "LA", "P", "1") or (img.mode == "L" and _few_levels(img)):
        img.save(buf, format="PNG", optimize=False, compress_level=6)
        return buf.getvalue(), ".png"
    img.convert("RGB" if img.mode not in ("RGB", "L") else img.mode).save(buf, format="JPEG", quality=jpeg_quality)
    return buf.getvalue(), ".jpg"


def _few_levels(img: Image.Image) -> bool:
    hist = img.histogram()
    return sum(1 for h in hist if h) <= 16


def save_version(store: Store, source: ImageRecord, result: Image.Image, operation: dict[str, Any], tool: str,
                 jpeg_quality: int = 95) -> ImageRecord:
    """Keep ``result`` as a version of ``source`` (in its order); ``operation`` must have a short ``name``."""
    if "name" not in operation:
        raise ValueError("the operation needs a name (it goes into the file name)")
    data, suffix = encode_result(result, jpeg_quality)
    order = store.get_order(source.order_id)
    return store.save_image(order, data, None, utc_now(), width=result.width, height=result.height,
                            camera=source.camera, suffix=suffix, kind="version", source=source,
                            operation=operation, tool=tool)
