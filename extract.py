"""Extract the distinct images of a folder of images or a video into an order, with the live capture's decision.

    python extract.py SOURCE [--order NUMBER] [--threshold T] [--export-dir DIR] [--json]

SOURCE is a folder of images (name order; .jpg .jpeg .png .bmp .webp .tif .tiff in any case) or a video file
OpenCV can read. Settings (descriptor, decision mode, settle frames, resolution, JPEG quality...) come from the
environment like the dashboard's (README, Configuration); ``--export-dir`` and ``--threshold`` override
``EXPORT_DIR`` and ``OPTIONS_TH_INIT``. The order number defaults to SOURCE's name.

Prints a progress bar on a terminal; with ``--json`` the last line is one JSON object:
``{"order": ..., "folder": ..., "frames": N, "kept": [{"source": file name or frame index, "file": saved file,
"distance": d}, ...]}`` (plus ``errors`` for unreadable files, ``stopped_at`` when a video broke off).
Exit codes: 0 done; 1 a video broke off part-way (what was read is kept); 2 bad input or settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _progress_bar(done: int, total: int | None, kept: int) -> None:
    width = 30
    if total:
        filled = int(width * min(done, total) / total)
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
    else:
        bar = f"{done} frames"
    print(f"\r{bar}, {kept} kept", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a folder of images or a video file")
    parser.add_argument("--order", help="order number (default: the source's name)")
    parser.add_argument("--threshold", type=float, help="distance threshold (default: OPTIONS_TH_INIT)")
    parser.add_argument("--export-dir", type=Path, help="where the order goes (default: EXPORT_DIR)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")
    args = parser.parse_args(argv)

    from describe_images import DescriptorUnavailable, load_descriptor
    from utils.config import ConfigError, load_settings
    from utils.extract import ExtractError, extract
    from utils.logs import setup_logging
    from utils.storage import OrderNumberError, StorageError, store_for

    env = dict(os.environ)
    if args.export_dir is not None:
        prefix = env.get("PREFIX", "").strip()
        env[f"{prefix}_EXPORT_DIR" if prefix else "EXPORT_DIR"] = str(args.export_dir)
    try:
        settings = load_settings(env)
        setup_logging("WARNING" if args.json else settings.LOGGING_LEVEL, settings.LOGFILE)
        descriptor = load_descriptor(settings.DESCRIPTOR_WEIGHTS_FILE, settings.DESCRIPTOR_DOWNLOAD,
                                     settings.DESCRIPTOR_FALLBACK, settings.TORCH_NUM_THREADS,
                                     mode=settings.DECISION_MODE)
        store = store_for(settings)
        show = _progress_bar if sys.stderr.isatty() and not args.json else None
        result = extract(args.source, store, descriptor, settings, order_number=args.order,
                         threshold=args.threshold, progress=show)
    except (ConfigError, DescriptorUnavailable, ExtractError, OrderNumberError, StorageError, ValueError) as err:
        print(f"extract: {err}", file=sys.stderr)
        return 2
    if show is not None:
        print(file=sys.stderr)
    for problem in result.errors:
        print(f"extract: skipped {problem}", file=sys.stderr)
    if result.stopped_at is not None:
        print(f"extract: the video stopped at frame {result.stopped_at} of {result.expected_frames}; "
              f"the {result.frames} frame(s) read were used", file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(f"Order {result.order.order_number} in {result.order.folder}: {len(result.kept)} image(s) kept of "
              f"{result.frames} frame(s)")
    return 1 if result.stopped_at is not None else 0


if __name__ == "__main__":
    raise SystemExit(main())
