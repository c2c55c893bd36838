"""Soak run: the capture worker at the highest rate against the local adapter simulator, with faults.

    python bench/soak.py --minutes 10 --json     # the target run
    python bench/soak.py --seconds 60 --json     # a short check

The real :class:`CaptureWorker` requests frames from :class:`BaslerAdapterCamera` over HTTP from
``utils.demo_adapter.DemoAdapterServer`` (on loopback, in this process) at ``--rate`` frames/s
(default: the highest selectable, ``IMAGES_PER_SECOND_MAX`` = 23). The frames are synthetic
packing-table JPEGs (``utils.synthetic.camera_frames``); every ``--fault-every`` seconds the next
fault of a fixed cycle is injected (400 no image, 500 + dropped connection, reset, garbage,
401, 422, 503, a slow answer, the camera gone for a moment); every ``--save-every`` seconds
"Save image" is pressed, so that images are kept all through the run.

Printed (``--json``: one object):

* ``frames``, ``kept``, ``errors``, ``dropped``: the worker's own counts;
* ``rss_start_bytes``, ``rss_end_bytes``: resident memory after the warm-up and at the end;
  ``rss_slope_bytes_per_min``: least-squares slope of the RSS samples after the warm-up;
* ``achieved_fps``: frames per second over the measured part; ``achieved_fps_median``: the median
  of the rates over 10-second windows (the pace between faults);
* ``lost_images``: disagreement between what the worker said it kept, the ``ok`` rows and the
  image files on disk (kept images without row and file, rows without file, files without row);
  ``pending_rows`` and ``temp_files`` should be 0 too.

Targets over 10 minutes: ``lost_images == 0``, slope under 1 MB/min, ``achieved_fps`` within 5 %
of the requested rate.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from communication import BaslerAdapterCamera  # noqa: E402
from DataModels_BaslerCameraAdapter import TakePhotoParams  # noqa: E402
from describe_images import load_descriptor, untrained_descriptor  # noqa: E402
from ImageProcessingThread import CaptureOptions, CaptureWorker  # noqa: E402
from utils.config import Settings  # noqa: E402
from utils.demo_adapter import DemoAdapterServer  # noqa: E402
from utils.files import is_temp_file  # noqa: E402
from utils.storage import Store  # noqa: E402
from utils.synthetic import camera_frames  # noqa: E402

HIGHEST_RATE = float(Settings.model_fields["IMAGES_PER_SECOND_MAX"].default)
# one fault per --fault-every seconds, in this order, round and round; "down:<s>": the camera is gone for <s> s
FAULT_CYCLE = ("no_image", "server_error_close", "reset", "garbage", "unauthorized", "status:422",
               "status:503", "slow:0.4", "down:1.5")
SAMPLE_EVERY = 2.0  # seconds between RSS / counter samples


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def inject(server: DemoAdapterServer, fault: str) -> None:
    if fault.startswith("down:"):
        server.down()
        time.sleep(float(fault[5:]))
        server.up()
    else:
        server.inject(fault)


def trim_simulator_log(server: DemoAdapterServer) -> None:
    """The simulator records every request's path and header (test instrumentation): not the worker's memory."""
    with server._lock:
        server.paths.clear()
        server.auth_headers.clear()


def run(args: argparse.Namespace) -> dict:
    seconds = args.seconds if args.seconds is not None else args.minutes * 60.0
    warmup = min(60.0, max(10.0, 0.25 * seconds))  # the first ~30 s: allocator and caches settle
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = camera_frames((width, height), args.frames, quality=95)
    if args.descriptor == "untrained":
        descriptor = untrained_descriptor(seed=0)
    else:
        descriptor = load_descriptor(allow_download=False)  # offline: the thumbnail fallback
    faults_injected: list[str] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        export = Path(args.export) if args.export else Path(tmp) / "export"
        store = Store(export)
        server = DemoAdapterServer(frames=frames).start()
        camera = BaslerAdapterCamera(server.url, TakePhotoParams(), timeout=args.camera_timeout)
        worker = CaptureWorker(camera, descriptor, store, backoff_max=args.backoff_max)
        order = worker.start(
            f"SOAK-{time.strftime('%Y%m%d-%H%M%S')}",
            CaptureOptions(threshold=args.threshold, images_per_second=args.rate, resolution=args.resolution),
        )
        t_start = time.monotonic()
        next_sample = t_start
        next_fault = t_start + args.fault_every
        next_save = t_start + args.save_every
        samples: list[tuple[float, int, int]] = []  # (seconds since start, rss, frames_seen)
        i_fault = 0
        try:
            while (now := time.monotonic()) - t_start < seconds:
                if now >= next_fault:
                    fault = FAULT_CYCLE[i_fault % len(FAULT_CYCLE)]
                    i_fault += 1
                    faults_injected.append(fault)
                    inject(server, fault)
                    next_fault += args.fault_every
                if now >= next_save:
                    worker.save_next()
                    next_save += args.save_every
                if now >= next_sample:
                    trim_simulator_log(server)
                    samples.append((now - t_start, rss_bytes(), worker.snapshot().frames_seen))
                    next_sample += SAMPLE_EVERY
                time.sleep(max(0.0, min(next_fault, next_save, next_sample) - time.monotonic()))
        finally:
            t_end = time.monotonic()
            end_snapshot = worker.snapshot()
            summary = worker.stop()
            server.stop()
            camera.close()
        gc.collect()
        # files vs rows vs what the worker said it kept
        folder = store.get_order(order.id).folder
        entries = list(folder.iterdir())
        files = {p.name for p in entries if p.is_file() and not is_temp_file(p)}
        rows = {r.file_name for r in store.images(order.id)}
        pending = store._query("SELECT COUNT(*) FROM images WHERE order_id = ? AND state = 'pending'", (order.id,))[0][0]
        temp_files = sum(1 for p in entries if is_temp_file(p))
        kept = summary.kept if summary else end_snapshot.kept
        lost = abs(kept - len(rows & files)) + len(rows ^ files)

    measured = [s for s in samples if s[0] >= warmup]
    if len(measured) < 3:
        measured = samples[len(samples) // 2 :]
    t = np.array([s[0] for s in measured]) / 60.0
    rss = np.array([s[1] for s in measured], dtype=np.float64)
    slope = float(np.polyfit(t, rss, 1)[0]) if len(measured) >= 2 else 0.0
    (t0, _, f0), (t1, _, f1) = measured[0], measured[-1]
    achieved = (f1 - f0) / (t1 - t0) if t1 > t0 else 0.0
    window = max(1, round(10.0 / SAMPLE_EVERY))
    rates = [(b[2] - a[2]) / (b[0] - a[0]) for a, b in zip(measured, measured[window:]) if b[0] > a[0]]
    out = {
        "frames": summary.frames if summary else end_snapshot.frames_seen,
        "kept": kept,
        "errors": summary.errors if summary else end_snapshot.error_count,
        "dropped": end_snapshot.dropped,
        "rss_start_bytes": int(measured[0][1]),
        "rss_end_bytes": int(measured[-1][1]),
        "rss_slope_bytes_per_min": round(slope, 1),
        "requested_fps": args.rate,
        "achieved_fps": round(achieved, 3),
        "achieved_fps_median": round(statistics.median(rates), 3) if rates else None,
        "lost_images": lost,
        "ok_rows": len(rows),
        "image_files": len(files),
        "pending_rows": int(pending),
        "temp_files": temp_files,
        "rss_mb_every_30s": [round(s[1] / 1e6, 2) for s in samples[:: max(1, round(30 / SAMPLE_EVERY))]],
        "faults_injected": len(faults_injected),
        "camera_requests": server.requests,
        "camera_concurrent_requests": server.concurrent_violations,
    }
    out["targets_met"] = {
        "lost_images_0": lost == 0 and pending == 0 and temp_files == 0,
        "rss_slope_under_1MB_per_min": abs(slope) < 1_000_000,
        "fps_within_5pct": achieved >= 0.95 * args.rate,
    }
    out["meta"] = {
        "seconds": round(t_end - t_start, 1),
        "warmup_s": warmup,
        "rss_samples": len(measured),
        "frame_size": f"{width}x{height}",
        "frames_in_cycle": args.frames,
        "resolution": args.resolution,
        "threshold": args.threshold,
        "descriptor": str(descriptor.status),
        "fault_every_s": args.fault_every,
        "fault_cycle": list(FAULT_CYCLE),
        "save_every_s": args.save_every,
        "backoff_max": args.backoff_max,
        "camera_timeout": args.camera_timeout,
        "cpus": os.cpu_count(),
    }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    parser.add_argument("--seconds", type=float, help="length of the run in seconds (short runs; overrides --minutes)")
    parser.add_argument("--rate", type=float, default=HIGHEST_RATE, help=f"frames/s requested (default {HIGHEST_RATE:g})")
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds between injected faults")
    parser.add_argument("--save-every", type=float, default=2.0, help="seconds between 'Save image' presses")
    parser.add_argument("--size", default="1920x1080", help="camera frame size WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=44, help="distinct camera frames served round and round")
    parser.add_argument("--resolution", type=int, default=480, help="maximum side of the saved images")
    parser.add_argument("--threshold", type=float, default=0.325)
    parser.add_argument("--descriptor", choices=("thumbnail", "untrained"), default="thumbnail",
                        help="thumbnail: the offline fallback (default); untrained: MobileNetV3 with seeded weights")
    parser.add_argument("--backoff-max", type=float, default=10.0, help="CAMERA_BACKOFF_MAX")
    parser.add_argument("--camera-timeout", type=float, default=5.0, help="CAMERA_TIMEOUT")
    parser.add_argument("--export", help="export folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
