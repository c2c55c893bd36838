"""Statistics benchmark: our per-image statistics vs. the original stats API's per-pixel Python loop.

    python bench/stats.py --json            # ~20 s
    python bench/stats.py --json --quick    # a few seconds

* ``stats_ms_1080p``: everything :func:`utils.image_stats.compute_stats` does for one 1920x1080 JPEG
  (quality 95, with EXIF): decode, EXIF, luminance, brightness/contrast, sharpness (Laplacian of the full
  frame), thumbnail, average colour and dominant colour. Median over several rounds of ms per image.
* ``dominant_ms``: the dominant colour alone (vectorized HSV histogram) on the pixels of a 512x384 thumbnail.
* ``baseline_dominant_ms``: the same pixels through what the original API does: each pixel converted to HSV
  with ``colorsys`` in a Python loop, quantized, counted with ``Counter``.
* ``baseline_color_ms_1080p``: the original's whole colour path for one 1080p JPEG (decode, LANCZOS thumbnail,
  RGBA, alpha filter, arithmetic mean, the loop above), for context.

Targets: ``stats_ms_1080p`` < 50 and ``baseline_dominant_ms / dominant_ms`` >= 50.
"""

from __future__ import annotations

import argparse
import colorsys
import io
import json
import os
import statistics
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402

from utils.image_stats import compute_stats, dominant_color, rgb_hex, thumbnail_pixels, to_rgb_alpha  # noqa: E402
from utils.imaging import make_exif  # noqa: E402
from utils.synthetic import camera_frames  # noqa: E402


def frames_with_exif(size: tuple[int, int], n: int) -> list[bytes]:
    """Synthetic packing-table frames as the dashboard saves them: JPEG quality 95 with our EXIF."""
    out = []
    for i, raw in enumerate(camera_frames(size, n, quality=100)):
        buf = io.BytesIO()
        exif = make_exif(datetime(2024, 5, 1, 8, 0, i, tzinfo=timezone.utc), "BENCH-1", 0.3)
        Image.open(io.BytesIO(raw)).save(buf, format="JPEG", quality=95, exif=exif)
        out.append(buf.getvalue())
    return out


def baseline_dominant(pixels: np.ndarray) -> np.ndarray:
    """The original API's dominant colour: per-pixel colorsys HSV in Python, 10 levels per channel, Counter."""
    rgb = pixels[:, :3] / 255.0
    hsv = np.array([colorsys.rgb_to_hsv(r, g, b) for r, g, b in rgb])
    keys = (hsv[:, 0] * 10).astype(int) * 1000 + (hsv[:, 1] * 10).astype(int) * 10 + (hsv[:, 2] * 10).astype(int)
    best = Counter(keys).most_common(1)[0][0]
    return pixels[int(np.where(keys == best)[0][0]), :3] / 255.0


def baseline_color(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The original API's colour path for one encoded image (thumbnail 512, RGBA, alpha >= 128, mean, loop)."""
    img = Image.open(io.BytesIO(data))
    if max(img.size) > 512:
        img = img.copy()
        img.thumbnail((512, 512), Image.LANCZOS)
    pixels = np.array(img.convert("RGBA")).reshape(-1, 4)
    pixels = pixels[pixels[:, 3] >= 128]
    return pixels[:, :3].mean(axis=0) / 255.0, baseline_dominant(pixels)


def ms_per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a few seconds)")
    args = parser.parse_args()
    rounds, baseline_runs = (3, 1) if args.quick else (7, 3)
    started = time.perf_counter()

    frames = frames_with_exif((1920, 1080), 8)
    for data in frames[:2]:  # warm-up (imports, OpenCV thread pool)
        compute_stats(data)
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for data in frames:
            compute_stats(data)
        per_round.append((time.perf_counter() - t0) * 1000 / len(frames))
    stats_ms = statistics.median(per_round)

    # dominant colour alone, on the pixels of a 512x384 thumbnail (4:3 frame)
    frame43 = frames_with_exif((2048, 1536), 1)[0]
    rgb, alpha = to_rgb_alpha(Image.open(io.BytesIO(frame43)))
    pixels = thumbnail_pixels(rgb, alpha, 512)
    dominant_color(pixels)
    dom_ms = statistics.median(ms_per_call(lambda: dominant_color(pixels), 20) for _ in range(rounds))
    base_dom_ms = statistics.median(ms_per_call(lambda: baseline_dominant(pixels), 1) for _ in range(baseline_runs))
    base_color_ms = statistics.median(ms_per_call(lambda: baseline_color(frames[0]), 1) for _ in range(baseline_runs))

    ours_hex, base_hex = rgb_hex(dominant_color(pixels)), rgb_hex(baseline_dominant(pixels))
    out: dict[str, object] = {
        "stats_ms_1080p": round(stats_ms, 2),
        "dominant_ms": round(dom_ms, 3),
        "baseline_dominant_ms": round(base_dom_ms, 1),
        "baseline_color_ms_1080p": round(base_color_ms, 1),
        "speedup_dominant": round(base_dom_ms / dom_ms, 1),
        "targets_met": bool(stats_ms < 50 and base_dom_ms / dom_ms >= 50),
        "dominant_hex": ours_hex,
        "baseline_dominant_hex": base_hex,
        "meta": {
            "cpus": os.cpu_count(),
            "frame": "1920x1080 JPEG q95 with EXIF (synthetic packing table)",
            "dominant_pixels": int(len(pixels)),
            "rounds": rounds,
            "frames_per_round": len(frames),
            "baseline_runs": baseline_runs,
            "quick": args.quick,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "pillow": PIL.__version__,
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:26s} {v}")


if __name__ == "__main__":
    main()
