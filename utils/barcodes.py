"""Order numbers read by the camera: barcodes and QR codes on the order sheet, decoded with zxing-cpp.

Before Start the operator holds the order sheet under the camera and presses *Read the order number*: the frame is
searched for codes (QR, Data Matrix, Code 128, Code 39, EAN/UPC, ...); the first one whose text is a valid order
number is proposed in the input, for the operator to check and confirm with Start. Nothing is started by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from utils.storage import OrderNumberError, validate_order_number


@dataclass(frozen=True)
class CodeRead:
    """What the camera read: the order number to propose (or None) and a sentence for the operator."""

    number: str | None
    message: str


def decode_codes(img: Image.Image | np.ndarray) -> list[tuple[str, str]]:
    """(text, format name) of every barcode or QR code in the image, in the decoder's order."""
    import zxingcpp

    arr = np.asarray(img.convert("L") if isinstance(img, Image.Image) else img)
    return [(r.text, str(r.format).rsplit(".", 1)[-1]) for r in zxingcpp.read_barcodes(arr) if r.valid and r.text]


def order_number_from_image(img: Image.Image | np.ndarray, max_length: int = 64) -> CodeRead:
    """The order number on the sheet in ``img`` (the first code whose text is a valid order number)."""
    try:
        codes = decode_codes(img)
    except ImportError:
        return CodeRead(None, "Reading codes needs the zxing-cpp package (pip install zxing-cpp).")
    if not codes:
        return CodeRead(None, "No barcode or QR code found: hold the order sheet flat under the camera, fully in "
                              "view and lit, then try again.")
    problems = []
    for text, kind in codes:
        try:
            return CodeRead(validate_order_number(text, max_length), f"Read “{text}” ({kind}) on the sheet: check "
                                                                     "it, then press Start.")
        except OrderNumberError as err:
            problems.append(f"“{text}” ({kind}): {err}")
    return CodeRead(None, "A code was found but is not an order number: " + "; ".join(problems))


def read_order_number(camera: Any, max_length: int = 64) -> CodeRead:
    """Grab one frame from the camera and read the order number on it (camera problems said in words)."""
    from utils.camera_frames import grab_image

    img, problem = grab_image(camera)
    if img is None:
        return CodeRead(None, f"The camera gave no image: {problem}")
    return order_number_from_image(img, max_length)
