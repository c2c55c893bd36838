"""The Editor page's controls as a recipe, and the crop box drawn on the screen copy in the image's real pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EditControls:
    """What the editor's widgets say; neutral values mean "not this operation"."""

    crop: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in real pixels
    rotate: float = 0.0  # degrees, counter-clockwise
    flip_horizontal: bool = False
    flip_vertical: bool = False
    scale_percent: float = 100.0
    brightness: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    greyscale: bool = False
    blur: float = 0.0
    sharpen: float = 0.0
    edges: bool = False
    sepia: bool = False
    clahe: bool = False


def recipe_from_controls(c: EditControls) -> list[dict[str, Any]]:
    """The recipe of the controls, in the editor's fixed order: geometry first (crop, rotate, flip, resize), then
    tone (adjust, greyscale), then filters (blur, sharpen, CLAHE, sepia), edges last."""
    recipe: list[dict[str, Any]] = []
    if c.crop is not None:
        recipe.append({"op": "crop", "box": [int(v) for v in c.crop]})
    if c.rotate % 360:
        recipe.append({"op": "rotate", "degrees": float(c.rotate)})
    if c.flip_horizontal:
        recipe.append({"op": "flip", "axis": "horizontal"})
    if c.flip_vertical:
        recipe.append({"op": "flip", "axis": "vertical"})
    if abs(c.scale_percent - 100.0) > 1e-9:
        recipe.append({"op": "resize", "scale": round(c.scale_percent / 100.0, 4)})
    if (c.brightness, c.contrast, c.gamma) != (1.0, 1.0, 1.0):
        recipe.append({"op": "adjust", "brightness": c.brightness, "contrast": c.contrast, "gamma": c.gamma})
    if c.greyscale:
        recipe.append({"op": "greyscale"})
    if c.blur > 0:
        recipe.append({"op": "blur", "radius": float(c.blur)})
    if c.sharpen > 0:
        recipe.append({"op": "sharpen", "amount": float(c.sharpen)})
    if c.clahe:
        recipe.append({"op": "clahe"})
    if c.sepia:
        recipe.append({"op": "sepia"})
    if c.edges:
        recipe.append({"op": "edges"})
    return recipe


def box_to_real(box: dict[str, float], shown: tuple[int, int], real: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box ``{left, top, width, height}`` drawn on a copy of ``shown`` size, as (x0, y0, x1, y1) in the pixels of
    the real image of ``real`` size: scaled, rounded outwards to whole pixels, clipped to the image, at least one
    pixel wide and high."""
    sx, sy = real[0] / shown[0], real[1] / shown[1]
    left, top = float(box["left"]), float(box["top"])
    right, bottom = left + float(box["width"]), top + float(box["height"])
    x0 = min(max(0, int(left * sx)), real[0] - 1)
    y0 = min(max(0, int(top * sy)), real[1] - 1)
    x1 = max(x0 + 1, min(real[0], math.ceil(right * sx - 1e-6)))
    y1 = max(y0 + 1, min(real[1], math.ceil(bottom * sy - 1e-6)))
    return x0, y0, x1, y1
