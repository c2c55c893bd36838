"""The image tools on kept images, as the dashboard and the HTTP API call them: each call reads the source, runs
the tool and keeps the result as a version (:mod:`utils.tools.versions`); the source is never changed.

* :func:`edit` applies an editing recipe (:mod:`utils.tools.ops`; style presets and neural style are recipe
  operations too); :func:`edit_order` applies one recipe to every image of an order (batch, with progress).
* :func:`cut_out` removes the background (:mod:`utils.tools.background`), by default against the order's first
  frame (the empty station), which a fixed camera offers.
* :func:`label` labels one image now (:mod:`utils.tools.labels`; the scheduled job labels the others);
  :func:`detect_objects` finds COCO objects with boxes where the detector's weights are present.

At most :data:`MAX_PARALLEL_TOOLS` tools run at once in a process (they use the CPU fully); a call that waits longer
than ``wait`` seconds gets :class:`ToolsBusy`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from utils.config import Settings
from utils.storage import ImageRecord, Store
from utils.tools.versions import ToolInputError, open_source, save_version

logger = logging.getLogger(__name__)

MAX_PARALLEL_TOOLS = 2
_slots = threading.BoundedSemaphore(MAX_PARALLEL_TOOLS)


class ToolsBusy(RuntimeError):
    """Every tool slot stayed taken for as long as the caller would wait."""


@contextlib.contextmanager
def tool_slot(wait: float | None = 60.0) -> Iterator[None]:
    """Hold one of the :data:`MAX_PARALLEL_TOOLS` slots (``wait``: seconds, None: as long as it takes)."""
    if not _slots.acquire(timeout=wait):
        raise ToolsBusy(f"{MAX_PARALLEL_TOOLS} image tools are running already; try again in a moment")
    try:
        yield
    finally:
        _slots.release()


def recipe_name(recipe: list[dict[str, Any]]) -> str:
    """A short name of a recipe for the version's file name: ``crop-rotate``, ``style-cartoon``."""
    words = []
    for op in recipe:
        word = op.get("op", "edit")
        if word == "style":
            word = f"style-{op.get('preset', '')}"
        if word not in words:
            words.append(word)
    return "-".join(words) or "edit"


def _source(store: Store, image_id: int) -> ImageRecord:
    try:
        return store.get_image(int(image_id))
    except KeyError:
        raise ToolInputError(f"There is no image {image_id}.") from None


def edit(store: Store, settings: Settings, image_id: int, recipe: list[dict[str, Any]],
         wait: float | None = 60.0) -> ImageRecord:
    """Apply ``recipe`` to the image at full resolution and keep the result as its version.

    Raises :class:`utils.tools.ops.RecipeError` (bad recipe), :class:`ToolInputError` (bad image),
    :class:`utils.storage.StorageError` (not kept), :class:`ToolsBusy`."""
    from utils.tools.ops import RecipeError, apply_recipe, describe_recipe, tool_name, validate_recipe

    ops = validate_recipe(recipe)
    if not ops:
        raise RecipeError("the recipe is empty: choose at least one operation")
    src = _source(store, image_id)
    with tool_slot(wait):
        img = open_source(src, settings.TOOLS_MAX_PIXELS, store)
        result = apply_recipe(img, ops)
    if result.width * result.height > settings.TOOLS_MAX_PIXELS:
        raise RecipeError(f"the result would have {result.width} x {result.height} pixels, more than "
                          f"TOOLS_MAX_PIXELS={settings.TOOLS_MAX_PIXELS:,}; resize to less")
    operation = {"name": recipe_name(ops), "recipe": ops, "description": describe_recipe(ops)}
    rec = save_version(store, src, result, operation, tool_name(ops), settings.IMAGE_SAVE_QUALITY)
    logger.info("Version #%d of image %d (order %d): %s", rec.seq, src.id, src.order_id, operation["description"])
    return rec


@dataclass
class BatchResult:
    """What a batch edit made and what it could not."""

    made: list[ImageRecord] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (image seq, why)


def edit_order(store: Store, settings: Settings, order_id: int, recipe: list[dict[str, Any]],
               progress: Callable[[int, int], None] | None = None,
               stop: threading.Event | None = None) -> BatchResult:
    """Apply ``recipe`` to every kept image of the order (not to versions); one failing image never stops the
    others. ``progress(done, total)`` after each image."""
    from utils.storage import PRIMARY_KINDS
    from utils.tools.ops import RecipeError, validate_recipe

    ops = validate_recipe(recipe)
    if not ops:
        raise RecipeError("the recipe is empty: choose at least one operation")
    images = store.images(order_id, kinds=PRIMARY_KINDS)
    result = BatchResult()
    for i, rec in enumerate(images):
        if stop is not None and stop.is_set():
            break
        try:
            result.made.append(edit(store, settings, rec.id, ops, wait=None))
        except (RecipeError, ToolInputError, OSError) as err:
            result.failed.append((rec.seq, str(err)))
            logger.warning("Batch edit of order %d: image #%d: %s", order_id, rec.seq, err)
        if progress is not None:
            progress(i + 1, len(images))
    return result


def first_frame(store: Store, rec: ImageRecord) -> ImageRecord | None:
    """The order's first captured image (the empty station), unless that is ``rec`` itself."""
    first = store.images(rec.order_id, kinds=("capture",), limit=1)
    return first[0] if first and first[0].id != rec.id else None


def cut_out(store: Store, settings: Settings, image_id: int, *, method: str = "auto",
            reference_id: int | None = None, rect: tuple[float, float, float, float] | None = None,
            output: str = "transparent", colour: Any = (255, 255, 255), save: bool = True,
            wait: float | None = 60.0) -> tuple[Any, ImageRecord | None, str]:
    """Remove the background of the image: (the cut-out as a PIL image, its version or None with ``save=False``,
    the method that ran).

    ``method``: "reference" (difference against ``reference_id``, default the order's first frame, refined with
    GrabCut), "grabcut" (from ``rect``), "u2net" (BACKGROUND_MODEL_FILE / U2NET_HOME), or "auto": the model where
    one is installed, else the reference, else the rectangle. Raises
    :class:`utils.tools.background.BackgroundError` saying what is missing."""
    from utils.tools.background import BackgroundError, remove_background

    src = _source(store, image_id)
    ref_rec = None
    if reference_id is not None or method == "reference" or (method == "auto" and rect is None):
        ref_rec = _source(store, reference_id) if reference_id is not None else first_frame(store, src)
        if ref_rec is not None and ref_rec.id == src.id:
            raise BackgroundError("the reference must be another image: a frame of the empty station")
    if method == "reference" and ref_rec is None:
        raise BackgroundError("this image is the order's first frame; choose another image of the empty station "
                              "as reference, or draw a rectangle around the object")
    with tool_slot(wait):
        img = open_source(src, settings.TOOLS_MAX_PIXELS, store)
        reference = open_source(ref_rec, settings.TOOLS_MAX_PIXELS, store) if ref_rec is not None else None
        model = settings.BACKGROUND_MODEL_FILE
        cut = remove_background(img, reference=reference, rect=rect, model_path=model, method=method,
                                output=output, colour=colour)
    if not save:
        return cut.image, None, cut.method
    operation: dict[str, Any] = {"name": "background", "method": cut.method, "output": output,
                                 "description": f"background removed ({cut.method}), {output}"}
    if output == "colour":
        operation["colour"] = colour
    if ref_rec is not None and "reference" in cut.method:
        operation["reference_image_id"] = ref_rec.id
        operation["description"] += f", reference #{ref_rec.seq}"
    if rect is not None and "rectangle" in cut.method:
        operation["rect"] = [round(float(v), 1) for v in rect]
    rec = save_version(store, src, cut.image, operation, cut.method, settings.IMAGE_SAVE_QUALITY)
    return cut.image, rec, cut.method


_models: dict[tuple[str, str, bool], Any] = {}
_models_missing: dict[tuple[str, str, bool], tuple[float, Exception]] = {}
_models_lock = threading.Lock()
RETRY_WEIGHTS_S = 300.0  # weights found missing are looked for again after this long (someone may copy them in)


def _cached_model(kind: str, weights_file: Any, allow_download: bool, load: Callable[[Any, bool], Any],
                  unavailable: type[Exception]) -> Any:
    """The process's model of ``kind`` for these weight sources, loaded once; a failure (``unavailable``) is
    remembered for :data:`RETRY_WEIGHTS_S`, so pages that ask at every rerun do not search and log each time."""
    key = (kind, str(weights_file or ""), allow_download)
    with _models_lock:
        if key in _models:
            return _models[key]
        missing = _models_missing.get(key)
        if missing is not None and time.monotonic() - missing[0] < RETRY_WEIGHTS_S:
            raise missing[1]
        try:
            _models[key] = load(weights_file, allow_download)
        except unavailable as err:
            _models_missing[key] = (time.monotonic(), err)
            raise
        _models_missing.pop(key, None)
        return _models[key]


def get_labeler(settings: Settings) -> Any:
    """The process's labeller (MobileNetV3-small's ImageNet head, the descriptor's weights); raises
    :class:`utils.tools.labels.LabelsUnavailable` saying why and how to get the weights."""
    from utils.tools.labels import LabelsUnavailable, load_labeler

    return _cached_model("labels", settings.DESCRIPTOR_WEIGHTS_FILE, settings.DESCRIPTOR_DOWNLOAD, load_labeler,
                         LabelsUnavailable)


def get_detector(settings: Settings) -> Any:
    """The process's object detector (SSDlite320-MobileNetV3-large, COCO; ``DETECTOR_WEIGHTS_FILE`` or
    torchvision's weights in the torch hub cache); raises :class:`utils.tools.labels.DetectorUnavailable`."""
    from utils.tools.labels import DetectorUnavailable, load_detector

    return _cached_model("detector", settings.DETECTOR_WEIGHTS_FILE, settings.DESCRIPTOR_DOWNLOAD, load_detector,
                         DetectorUnavailable)


def draw_detections(img: Any, detections: list[Any]) -> Any:
    """A copy of ``img`` (RGB) with each detection's box and "name score" drawn on it."""
    from PIL import ImageDraw

    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 400))
    for det in detections:
        x0, y0, x1, y1 = det.box
        draw.rectangle((x0, y0, x1, y1), outline=(255, 64, 0), width=width)
        text = f"{det.name} {det.score:.0%}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font_size=max(12, 6 * width))
        y = max(0, y0 - (bottom - top) - 2 * width)  # above the box, or inside it at the image's top edge
        draw.rectangle((x0, y, x0 + (right - left) + 2 * width, y + (bottom - top) + 2 * width), fill=(255, 64, 0))
        draw.text((x0 + width - left, y + width - top), text, fill=(255, 255, 255), font_size=max(12, 6 * width))
    return out


def detect_objects(store: Store, settings: Settings, image_id: int, min_score: float = 0.5, *, save: bool = False,
                   wait: float | None = 60.0) -> tuple[list[Any], Any, ImageRecord | None]:
    """COCO objects in the image with boxes: (detections best first, the image with the boxes drawn, its version or
    None). With ``save`` the drawn image is kept as a version whose operation lists the boxes (not when nothing
    was found)."""
    detector = get_detector(settings)
    src = _source(store, image_id)
    with tool_slot(wait):
        img = open_source(src, settings.TOOLS_MAX_PIXELS, store)
        found = detector.detect(img, min_score=min_score)
        drawn = draw_detections(img, found)
    if not save or not found:  # nothing found: nothing to keep (a copy of the image would only be clutter)
        return found, drawn, None
    boxes = [{"name": d.name, "score": round(float(d.score), 4), "box": [round(float(v), 1) for v in d.box]}
             for d in found]
    operation = {"name": "objects", "min_score": min_score, "objects": boxes,
                 "description": f"{len(found)} object(s) found (score >= {min_score:.0%}), boxes drawn"}
    rec = save_version(store, src, drawn, operation, detector.model_name, settings.IMAGE_SAVE_QUALITY)
    return found, drawn, rec


def label(store: Store, settings: Settings, image_id: int, k: int = 5,
          wait: float | None = 60.0) -> list[tuple[str, float, str]]:
    """Label the image now (top ``k`` ImageNet classes), store and return them as (name, score, model)."""
    labeler = get_labeler(settings)
    src = _source(store, image_id)
    with tool_slot(wait):
        img = open_source(src, settings.TOOLS_MAX_PIXELS, store)
        labels = labeler.labels(img, k=k)
    store.set_labels(src.id, [(lb.name, lb.score) for lb in labels], labeler.model_name)
    return [(lb.name, lb.score, labeler.model_name) for lb in labels]
