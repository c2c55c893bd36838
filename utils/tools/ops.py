"""Editing recipes: a list of operations applied in order to a copy of an image (the source is never changed).

A recipe is JSON-friendly: ``[{"op": "crop", "box": [10, 20, 130, 100]}, {"op": "rotate", "degrees": 90}]``.

==============  =====================================================================================================
op              parameters (defaults) and what it does
==============  =====================================================================================================
crop            ``box`` [x0, y0, x1, y1] in the image's real pixels (x1, y1 exclusive), clipped to the image
rotate          ``degrees`` (counter-clockwise, as Pillow; -90 or 270 turns clockwise); 90/180/270 exact (a
                transpose); other angles bicubic on an expanded canvas filled with ``fill`` (default white; for
                an RGBA image transparent white); ``fill``: [r, g, b], [r, g, b, a] or a CSS colour string
flip            ``axis`` "horizontal" (mirror left-right) or "vertical" (upside down)
resize          one of: ``width`` and/or ``height`` (one alone keeps the aspect), ``max_side`` (the longer side
                becomes that, up or down), ``scale``; LANCZOS; every side of the result within 1..16384
adjust          ``brightness`` (1.0), ``contrast`` (1.0): factors as Pillow's ImageEnhance, 0..4; ``gamma`` (1.0),
                0.1..10: out = 255 * (in / 255) ** (1 / gamma), so gamma > 1 brightens the mid-tones
greyscale       ITU-R 601 luma (Pillow "L"); an RGBA image stays RGBA with equal channels
blur            ``radius`` (2.0), 0..50: Gaussian (Pillow; alpha premultiplied so edges get no dark fringe)
sharpen         ``amount`` (1.0), 0..10 (1.0 = 100 %), ``radius`` (2.0), 0.1..50: Pillow's unsharp mask
edges           Canny (OpenCV, L2 gradient) on the grey image with thresholds ``low`` (50) and ``high`` (150)
                on 0..255; the result is an L image, edges 255 on 0 (the alpha channel is dropped)
sepia           the classic sepia matrix (R' = .393R + .769G + .189B, G' = .349R + .686G + .168B,
                B' = .272R + .534G + .131B, saturated at 255); an L image becomes RGB
clahe           ``clip_limit`` (2.0), 0.1..40, ``tile`` (8), 1..64 tiles a side: OpenCV CLAHE on the L channel of
                LAB for colour images, on the grey values for L images
style           ``preset``: one of :data:`utils.tools.style.PRESETS`
neural_style    ``model``: path of a fast-neural-style .onnx file (:class:`utils.tools.style.NeuralStyle`)
==============  =====================================================================================================

RGB, RGBA and L images are handled as they are (RGBA keeps its alpha through every operation but ``edges``);
other modes are converted first (see :func:`utils.tools._common.normalise_mode`). Errors are :class:`RecipeError`
whose message names the operation by position (1-based) and name, the parameter and what is accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageColor, ImageEnhance, ImageFilter, ImageOps

from utils.tools import style
from utils.tools._common import (
    join_alpha,
    normalise_mode,
    onnxruntime_version,
    opencv_version,
    pillow_version,
    split_alpha,
)

MAX_SIDE = 16384  # pixels a side of any result
Recipe = Sequence[dict[str, Any]]


class RecipeError(ValueError):
    """A recipe that cannot be applied: the message names the operation, the parameter and what is accepted."""


# ------------------------------------------------------------------------------------------------ the operations


@dataclass(frozen=True)
class Param:
    """One parameter of an operation: ``kind`` is "number", "int", "choice", "box", "colour" or "path"."""

    kind: str
    default: Any = None
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    def accepted(self) -> str:
        if self.kind in ("number", "int"):
            what = "a number" if self.kind == "number" else "an integer"
            return f"{what} from {self.lo:g} to {self.hi:g}" if self.lo is not None else what
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "box":
            return "[x0, y0, x1, y1] with x1 > x0 and y1 > y0 (pixels; x1 and y1 exclusive)"
        if self.kind == "colour":
            return "[r, g, b], [r, g, b, a] (0..255) or a colour name / #rrggbb"
        return "the path of an .onnx file"


OPS: dict[str, dict[str, Param]] = {
    "crop": {"box": Param("box", required=True)},
    "rotate": {"degrees": Param("number", required=True, lo=-3600, hi=3600), "fill": Param("colour")},
    "flip": {"axis": Param("choice", required=True, choices=("horizontal", "vertical"))},
    "resize": {
        "width": Param("int", lo=1, hi=MAX_SIDE),
        "height": Param("int", lo=1, hi=MAX_SIDE),
        "max_side": Param("int", lo=1, hi=MAX_SIDE),
        "scale": Param("number", lo=0.0001, hi=100),
    },
    "adjust": {
        "brightness": Param("number", 1.0, lo=0, hi=4),
        "contrast": Param("number", 1.0, lo=0, hi=4),
        "gamma": Param("number", 1.0, lo=0.1, hi=10),
    },
    "greyscale": {},
    "blur": {"radius": Param("number", 2.0, lo=0, hi=50)},
    "sharpen": {"amount": Param("number", 1.0, lo=0, hi=10), "radius": Param("number", 2.0, lo=0.1, hi=50)},
    "edges": {"low": Param("number", 50.0, lo=0, hi=1000), "high": Param("number", 150.0, lo=0, hi=1000)},
    "sepia": {},
    "clahe": {"clip_limit": Param("number", 2.0, lo=0.1, hi=40), "tile": Param("int", 8, lo=1, hi=64)},
    "style": {"preset": Param("choice", required=True, choices=tuple(style.PRESETS))},
    "neural_style": {"model": Param("path", required=True)},
}


def _where(i: int, name: str) -> str:
    return f"operation {i + 1} ({name})"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _check_param(where: str, key: str, p: Param, value: Any, check_files: bool = True) -> Any:
    """The normalised ``value`` of parameter ``key``, or :class:`RecipeError`."""

    def bad(extra: str = "") -> RecipeError:
        return RecipeError(f"{where}: parameter {key!r} must be {p.accepted()}, got {value!r}{extra}")

    if p.kind in ("number", "int"):
        x = _number(value)
        if x is None or (p.kind == "int" and x != int(x)):
            raise bad()
        if p.lo is not None and not p.lo <= x <= p.hi:
            raise bad()
        return int(x) if p.kind == "int" else x
    if p.kind == "choice":
        if not isinstance(value, str) or value.strip().lower() not in p.choices:
            raise bad()
        return value.strip().lower()
    if p.kind == "box":
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise bad()
        xs = [_number(v) for v in value]
        if any(x is None for x in xs):
            raise bad()
        x0, y0, x1, y1 = (round(x) for x in xs)
        if x1 <= x0 or y1 <= y0:
            raise bad(" (an empty box)")
        return [x0, y0, x1, y1]
    if p.kind == "colour":
        if isinstance(value, str):
            try:
                rgba = ImageColor.getcolor(value, "RGBA")
            except ValueError:
                raise bad() from None
            return list(rgba)
        if not isinstance(value, (list, tuple)) or len(value) not in (3, 4):
            raise bad()
        xs = [_number(v) for v in value]
        if any(x is None or x != int(x) or not 0 <= x <= 255 for x in xs):
            raise bad()
        return [int(x) for x in xs] + ([255] if len(xs) == 3 else [])
    # path
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise bad()
    path = Path(str(value).strip()).expanduser()
    if path.suffix.lower() != ".onnx":
        raise bad(" (not an .onnx file)")
    if check_files and not path.is_file():
        raise bad(" (no such file)")
    return str(path)


def validate_recipe(recipe: Recipe, *, check_files: bool = True) -> list[dict[str, Any]]:
    """A normalised copy of ``recipe`` (defaults filled in, numbers as int/float, names lower-case, colours as
    [r, g, b, a]); :class:`RecipeError` naming the first bad operation and parameter. ``check_files=False``
    skips the check that a ``neural_style`` model file exists (to describe a stored recipe)."""
    if isinstance(recipe, (str, bytes, dict)) or not isinstance(recipe, Sequence):
        raise RecipeError(f"a recipe is a list of operations ({{'op': ..., ...}}), got {type(recipe).__name__}")
    out = []
    for i, raw in enumerate(recipe):
        if not isinstance(raw, dict):
            raise RecipeError(f"operation {i + 1}: expected an object with an 'op' key, got {raw!r}")
        name = raw.get("op")
        if not isinstance(name, str) or name.strip().lower() not in OPS:
            raise RecipeError(f"operation {i + 1}: unknown op {name!r}; known ops: {', '.join(OPS)}")
        name = name.strip().lower()
        where, params = _where(i, name), OPS[name]
        unknown = sorted(set(raw) - set(params) - {"op"})
        if unknown:
            accepted = ", ".join(params) if params else "none"
            raise RecipeError(f"{where}: unknown parameter {unknown[0]!r}; accepted parameters: {accepted}")
        op: dict[str, Any] = {"op": name}
        for key, p in params.items():
            if raw.get(key) is None:
                if p.required:
                    raise RecipeError(f"{where}: parameter {key!r} is missing; it must be {p.accepted()}")
                if p.default is not None:
                    op[key] = p.default
                continue
            op[key] = _check_param(where, key, p, raw[key], check_files)
        if name == "resize":
            forms = [k for k in ("width", "height", "max_side", "scale") if k in op]
            if not forms or (len(forms) > 1 and set(forms) != {"width", "height"}):
                raise RecipeError(f"{where}: give either 'width' and/or 'height', or 'max_side', or 'scale' "
                                  f"(got {', '.join(forms) or 'none of them'})")
        if name == "edges" and op["low"] > op["high"]:
            raise RecipeError(f"{where}: parameter 'low' ({op['low']:g}) must not be above 'high' ({op['high']:g})")
        out.append(op)
    return out


# ------------------------------------------------------------------------------------------------ geometry


def _resize_target(size: tuple[int, int], op: dict[str, Any]) -> tuple[int, int]:
    w, h = size
    if "width" in op and "height" in op:
        return op["width"], op["height"]
    if "width" in op:
        return op["width"], max(1, round(h * op["width"] / w))
    if "height" in op:
        return max(1, round(w * op["height"] / h)), op["height"]
    s = op["max_side"] / max(w, h) if "max_side" in op else op["scale"]
    return max(1, round(w * s)), max(1, round(h * s))


def _right_angle(degrees: float) -> int | None:
    """0, 90, 180 or 270 when ``degrees`` is (within 1e-6) a multiple of 90, else None."""
    d = degrees % 360.0
    for k in (0, 90, 180, 270, 360):
        if abs(d - k) < 1e-6:
            return k % 360
    return None


def _clip_box(box: list[int], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(size[0], box[2]), min(size[1], box[3])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _result_size(size: tuple[int, int], op: dict[str, Any], where: str) -> tuple[int, int]:
    """The size of the result of ``op`` on an image of ``size`` (RecipeError where it has no pixels or is too
    large); the same for every op that does not change the geometry."""
    w, h = size
    name = op["op"]
    if name == "crop":
        clipped = _clip_box(op["box"], size)
        if clipped is None:
            raise RecipeError(f"{where}: the box {op['box']} lies outside the {w}x{h} image; give a box "
                              f"that overlaps 0..{w} x 0..{h}")
        out = (clipped[2] - clipped[0], clipped[3] - clipped[1])
    elif name == "rotate":
        k = _right_angle(op["degrees"])
        if k is not None:
            out = (h, w) if k in (90, 270) else (w, h)
        else:
            a = math.radians(op["degrees"])
            c, s = abs(math.cos(a)), abs(math.sin(a))
            out = (math.ceil(w * c + h * s - 1e-6), math.ceil(w * s + h * c - 1e-6))
    elif name == "resize":
        out = _resize_target(size, op)
    else:
        return size
    if max(out) > MAX_SIDE:
        raise RecipeError(f"{where}: the result would be {out[0]}x{out[1]} pixels; every side must be "
                          f"1..{MAX_SIDE}")
    return out


# ------------------------------------------------------------------------------------------------ pixels


def _colour_only(img: Image.Image, fn: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """``fn`` applied to the colour (or grey) part of ``img``; the alpha channel put back unchanged."""
    colour, alpha = split_alpha(img)
    return join_alpha(fn(colour), alpha)


def _fill(img: Image.Image, fill: list[int] | None) -> int | tuple[int, ...]:
    if fill is None:
        fill = [255, 255, 255, 0 if img.mode == "RGBA" else 255]
    if img.mode == "L":
        r, g, b, _ = fill
        return round(0.299 * r + 0.587 * g + 0.114 * b)
    return tuple(fill) if img.mode == "RGBA" else tuple(fill[:3])


def _rotate(img: Image.Image, op: dict[str, Any]) -> Image.Image:
    k = _right_angle(op["degrees"])
    if k == 0:
        return img.copy()
    if k is not None:
        turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
        return img.transpose(turn[k])
    fill = _fill(img, op.get("fill"))
    return img.rotate(op["degrees"], resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


def _adjust(img: Image.Image, op: dict[str, Any]) -> Image.Image:
    def run(c: Image.Image) -> Image.Image:
        if op["brightness"] != 1.0:
            c = ImageEnhance.Brightness(c).enhance(op["brightness"])
        if op["contrast"] != 1.0:
            c = ImageEnhance.Contrast(c).enhance(op["contrast"])
        if op["gamma"] != 1.0:
            lut = [round(255 * (i / 255) ** (1 / op["gamma"])) for i in range(256)]
            c = c.point(lut * len(c.getbands()))
        return c

    return _colour_only(img, run)


def _blur(img: Image.Image, radius: float) -> Image.Image:
    if radius <= 0:
        return img.copy()
    gauss = ImageFilter.GaussianBlur(radius)
    if img.mode == "RGBA":  # premultiplied: transparent pixels do not bleed their colour into the edges
        return img.convert("RGBa").filter(gauss).convert("RGBA")
    return img.filter(gauss)


def _edges(img: Image.Image, op: dict[str, Any]) -> Image.Image:
    grey = np.asarray(split_alpha(img)[0].convert("L"))
    return Image.fromarray(cv2.Canny(grey, op["low"], op["high"], L2gradient=True), "L")


SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def _sepia(colour: Image.Image) -> Image.Image:
    rgb = np.asarray(colour.convert("RGB"))
    return Image.fromarray(cv2.transform(rgb, SEPIA), "RGB")


def _clahe(colour: Image.Image, op: dict[str, Any]) -> Image.Image:
    clahe = cv2.createCLAHE(clipLimit=op["clip_limit"], tileGridSize=(op["tile"], op["tile"]))
    if colour.mode == "L":
        return Image.fromarray(clahe.apply(np.asarray(colour)), "L")
    lab = cv2.cvtColor(np.asarray(colour), cv2.COLOR_RGB2LAB)
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return Image.fromarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), "RGB")


def _apply_op(img: Image.Image, op: dict[str, Any], f: float, target: tuple[int, int]) -> Image.Image:
    """``op`` on ``img``; ``f`` is the preview's size factor (1.0 for the real image), ``target`` the size of the
    result at that factor for the ops that change the geometry."""
    name = op["op"]
    if name == "crop":
        x0, y0, x1, y1 = op["box"]
        box = [math.floor(x0 * f), math.floor(y0 * f), math.ceil(x1 * f), math.ceil(y1 * f)]
        return img.crop(_clip_box(box, img.size) or (0, 0, 1, 1))
    if name == "rotate":
        return _rotate(img, op)
    if name == "flip":
        return ImageOps.mirror(img) if op["axis"] == "horizontal" else ImageOps.flip(img)
    if name == "resize":
        return img.resize(target, Image.Resampling.LANCZOS)
    if name == "adjust":
        return _adjust(img, op)
    if name == "greyscale":
        return _colour_only(img, lambda c: c.convert("L"))
    if name == "blur":
        return _blur(img, op["radius"] * f)
    if name == "sharpen":
        unsharp = ImageFilter.UnsharpMask(radius=op["radius"] * f, percent=round(op["amount"] * 100), threshold=0)
        return _colour_only(img, lambda c: c.filter(unsharp))
    if name == "edges":
        return _edges(img, op)
    if name == "sepia":
        return _colour_only(img, _sepia)
    if name == "clahe":
        return _colour_only(img, lambda c: _clahe(c, op))
    if name == "style":
        return style.apply_preset(img, op["preset"])
    return style.load_neural_style(op["model"]).apply(img)


def _run(img: Image.Image, recipe: Recipe, real_size: tuple[int, int]) -> Image.Image:
    """The recipe on ``img``, a copy of an image of ``real_size`` at the same or a reduced size."""
    ops = validate_recipe(recipe)
    img = normalise_mode(img)
    out = img.copy()
    size = real_size
    real = img.size == real_size
    for i, op in enumerate(ops):
        where = _where(i, op["op"])
        new_size = _result_size(size, op, where)  # checked on the real sizes before any pixel work
        f = out.width / size[0]
        target = (max(1, round(new_size[0] * f)), max(1, round(new_size[1] * f)))
        try:
            out = _apply_op(out, op, f, target)
        except style.StyleError as exc:
            raise RecipeError(f"{where}: {exc}") from exc
        size = out.size if real else new_size
    return out


def apply_recipe(img: Image.Image, recipe: Recipe) -> Image.Image:
    """A new image: ``recipe`` applied in order to ``img`` (RGB, RGBA or L; other modes converted first)."""
    img = normalise_mode(img)
    return _run(img, recipe, img.size)


def preview(img: Image.Image, recipe: Recipe, max_side: int = 800,
            real_size: tuple[int, int] | None = None) -> Image.Image:
    """``recipe`` applied to a copy of ``img`` reduced to ``max_side`` pixels on its longer side: what
    :func:`apply_recipe` gives, at about that reduction. Crop boxes and resize sizes (given in the real image's
    pixels) and the blur and sharpen radii are scaled to the reduced copy; errors are those of the real image.

    ``real_size``: ``img`` is already a reduced copy of an image of that size (a page keeps the copy, not the
    full image, between reruns)."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise RecipeError(f"preview max_side must be a positive integer, got {max_side!r}")
    img = normalise_mode(img)
    small = img
    if max(img.size) > max_side:
        f = max_side / max(img.size)
        small = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.Resampling.BILINEAR)
    return _run(small, recipe, tuple(real_size) if real_size else img.size)


# ------------------------------------------------------------------------------------------------ words


def _g(x: float) -> str:
    return f"{x:g}"


DESCRIBE = {  # the operations whose words are their parameters in a template
    "rotate": "rotate {degrees:g}°",
    "flip": "flip {axis}",
    "blur": "blur radius {radius:g}",
    "sharpen": "sharpen {amount:g} (radius {radius:g})",
    "edges": "edges (Canny {low:g}/{high:g})",
    "clahe": "CLAHE clip {clip_limit:g}, {tile}x{tile} tiles",
}


def _describe_op(op: dict[str, Any]) -> str:
    name = op["op"]
    if name in DESCRIBE:
        return DESCRIBE[name].format(**op)
    if name == "crop":
        x0, y0, x1, y1 = op["box"]
        return f"crop {x1 - x0}x{y1 - y0} at ({x0},{y0})"
    if name == "resize":
        if "width" in op and "height" in op:
            return f"resize to {op['width']}x{op['height']}"
        if "width" in op or "height" in op:
            side = "width" if "width" in op else "height"
            return f"resize to {side} {op[side]}"
        return f"resize to longer side {op['max_side']}" if "max_side" in op else f"resize x{_g(op['scale'])}"
    if name == "adjust":
        parts = [f"{k} {_g(op[k])}" for k in ("brightness", "contrast", "gamma") if op[k] != 1.0]
        return "adjust " + ", ".join(parts) if parts else "adjust (no change)"
    if name == "style":
        return f"style {op['preset'].replace('_', ' ')}"
    if name == "neural_style":
        return f"neural style {Path(op['model']).stem}"
    return name  # greyscale, sepia


def describe_recipe(recipe: Recipe) -> str:
    """Short human text of ``recipe``: ``crop 120x80 at (10,20), rotate 90°``; "no change" for an empty one."""
    ops = validate_recipe(recipe, check_files=False)
    return ", ".join(_describe_op(op) for op in ops) if ops else "no change"


OPENCV_OPS = {"edges", "sepia", "clahe", "style"}


def tool_name(recipe: Recipe) -> str:
    """The libraries (with versions) that run ``recipe``: ``Pillow 11.x``, plus ``OpenCV 5.x`` and
    ``onnxruntime 1.x`` where its operations use them."""
    ops = validate_recipe(recipe, check_files=False)
    names = [pillow_version()]
    if any(op["op"] in OPENCV_OPS for op in ops):
        names.append(opencv_version())
    if any(op["op"] == "neural_style" for op in ops):
        names.append(onnxruntime_version())
    return ", ".join(names)
