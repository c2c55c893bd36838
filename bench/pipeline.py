"""Pipeline benchmark: our capture worker vs. a naive baseline doing what the original app did.

    python bench/pipeline.py --json            # ~3 minutes
    python bench/pipeline.py --json --quick    # under 60 s

Both sides get the same synthetic camera frames (JPEG quality 100, 1920x1080 and 2448x2048)
and MobileNetV3-small with seeded random weights (pretrained weights cannot be downloaded here
and do not change the speed): ours the regional decision's early feature map (the default,
``DECISION_MODE=regional``), the baseline the original's whole network. Measured in one run,
so machine noise hits both; every figure is the median of several repetitions.

* ``fps_*``: frames per second through decode, resize, features and decision, measured on
  the real :class:`CaptureWorker` (two threads: decode/prepare | features/decision/save)
  fed by an in-memory camera as fast as it goes.
* ``baseline_fps_*``: the original's per-frame work, sequential: full decode, resize to
  the resolution, Resize(256) + CenterCrop(224), the network, a Python loop over kept features.
* ``compare_ms_*``: distance of one frame to 1k / 10k kept images (one batched product over the
  regions) with the largest regional layout (the thumbnail fallback's 16 regions x 144 values);
  ``compare_ms_10k_network``: the network's (24 regions x 16); ``baseline_compare_ms_10k``: the
  original's loop over kept feature tensors.
* ``rss_bytes_per_kept_image``: resident memory added per kept image's features (thumbnail layout,
  the largest).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from communication import MemoryCamera  # noqa: E402
from describe_images import FeatureIndex, Layout, load_descriptor, untrained_descriptor  # noqa: E402
from ImageProcessingThread import CaptureOptions, CaptureWorker  # noqa: E402
from utils.storage import Store  # noqa: E402
from utils.synthetic import camera_frames  # noqa: E402

RESOLUTION = 480  # the default choice (OPTIONS_IMAGE_RESOLUTION_INIT_IDX=2)
THRESHOLD = 0.325


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def ours_fps(frames: list[bytes], seconds: float, repeats: int, descriptor) -> float:
    """Frames/s of the real worker, unpaced (rate far above what it can do)."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "export")
        for r in range(repeats):
            worker = CaptureWorker(MemoryCamera(frames), descriptor, store)
            worker.start(f"BENCH{r}", CaptureOptions(threshold=THRESHOLD, images_per_second=1000, resolution=RESOLUTION))
            time.sleep(min(1.0, seconds / 3))  # warm-up
            s0, t0 = worker.snapshot().frames_seen, time.perf_counter()
            time.sleep(seconds)
            s1, t1 = worker.snapshot().frames_seen, time.perf_counter()
            worker.stop()
            results.append((s1 - s0) / (t1 - t0))
    return statistics.median(results)


class NaiveBaseline:
    """The original app's per-frame work (describe_images.py / ImageProcessingThread.py), sequential."""

    def __init__(self, descriptor) -> None:
        import torchvision.transforms as T

        self.net = untrained_descriptor(seed=0, mode="original")._net  # the original's whole network
        self.preprocess = T.Compose(
            [T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
        )
        self.kept: list[torch.Tensor] = []

    @staticmethod
    def resize_image(img: Image.Image, max_length: int) -> Image.Image:
        w, h = img.size
        if max(w, h) > max_length:
            s = max_length / max(w, h)
            return img.resize((round(w * s), round(h * s)), Image.BICUBIC)
        return img

    def step(self, data: bytes) -> bool:
        img = Image.open(io.BytesIO(np.frombuffer(data, np.uint8)))  # full decode
        img = self.resize_image(img, RESOLUTION)
        with torch.no_grad():
            f = self.net(self.preprocess(img.convert("RGB")).unsqueeze(0)).squeeze()
        diffs = [float(((f - v) ** 2).mean().sqrt()) for v in self.kept]
        dmin = min(diffs) if diffs else 999.0
        if dmin > THRESHOLD:
            self.kept.append(f)
            return True
        return False


def baseline_fps(frames: list[bytes], seconds: float, repeats: int, descriptor) -> float:
    results = []
    for _ in range(repeats):
        base = NaiveBaseline(descriptor)
        base.step(frames[0])
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            base.step(frames[n % len(frames)])
            n += 1
        results.append(n / (time.perf_counter() - t0))
    return statistics.median(results)


THUMBNAIL_LAYOUT = load_descriptor(None, False, "thumbnail").layout  # the largest regional layout
NETWORK_LAYOUT = untrained_descriptor(seed=0).layout


def compare_ms(n: int, calls: int, layout: Layout = THUMBNAIL_LAYOUT) -> float:
    rng = np.random.default_rng(0)
    index = FeatureIndex(layout)
    index.extend(rng.normal(size=(n, layout.dim)).astype(np.float32))
    q = rng.normal(size=layout.dim).astype(np.float32)
    index.nearest(q)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        index.nearest(q)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def baseline_compare_ms(n: int, calls: int) -> float:
    rng = np.random.default_rng(0)
    kept = [torch.from_numpy(v) for v in rng.normal(size=(n, 576)).astype(np.float32)]
    q = torch.from_numpy(rng.normal(size=576).astype(np.float32))
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        min(float(((q - v) ** 2).mean().sqrt()) for v in kept)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def rss_per_kept(n: int) -> float:
    """Resident memory added per kept image, measured in a fresh process (no recycled heap)."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--rss-only", str(n)], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def _rss_per_kept_here(n: int) -> float:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(1000, THUMBNAIL_LAYOUT.dim)).astype(np.float32)
    gc.collect()
    index = FeatureIndex(THUMBNAIL_LAYOUT)
    before = rss_bytes()
    for i in range(n):
        index.add(vectors[i % 1000])
    gc.collect()
    return (rss_bytes() - before) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="shorter runs (under 60 s)")
    parser.add_argument("--rss-only", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_only:
        print(_rss_per_kept_here(args.rss_only))
        return
    seconds, repeats, n_frames = (3.0, 1, 12) if args.quick else (8.0, 3, 24)
    started = time.perf_counter()

    descriptor = untrained_descriptor(seed=0, torch_threads=1)
    out: dict[str, object] = {}
    for key, size in (("1080p", (1920, 1080)), ("5mp", (2448, 2048))):
        frames = camera_frames(size, n_frames, quality=100)
        torch.set_num_threads(1)  # ours: decode on one core, the network on the other
        out[f"fps_{key}"] = round(ours_fps(frames, seconds, repeats, descriptor), 2)
        torch.set_num_threads(os.cpu_count() or 1)  # the baseline gets every core for its network
        out[f"baseline_fps_{key}"] = round(baseline_fps(frames, seconds, repeats, descriptor), 2)
    torch.set_num_threads(1)
    calls = 30 if args.quick else 100
    out["compare_ms_1k"] = round(compare_ms(1_000, calls), 3)
    out["compare_ms_10k"] = round(compare_ms(10_000, calls), 3)
    out["compare_ms_10k_network"] = round(compare_ms(10_000, calls, NETWORK_LAYOUT), 3)
    out["baseline_compare_ms_10k"] = round(baseline_compare_ms(10_000, 3 if args.quick else 7), 1)
    out["rss_bytes_per_kept_image"] = round(rss_per_kept(20_000 if args.quick else 50_000), 1)
    out["speedup_fps_5mp"] = round(out["fps_5mp"] / out["baseline_fps_5mp"], 2)  # type: ignore[operator]
    out["speedup_compare_10k"] = round(out["baseline_compare_ms_10k"] / out["compare_ms_10k"], 1)  # type: ignore[operator]
    out["targets_met"] = bool(
        out["fps_5mp"] >= 23 and out["compare_ms_10k"] <= 5 and out["rss_bytes_per_kept_image"] <= 16384  # type: ignore[operator]
    )
    out["meta"] = {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "resolution": RESOLUTION,
        "jpeg_quality": 100,
        "frames_per_size": n_frames,
        "seconds_per_measurement": seconds,
        "repeats": repeats,
        "quick": args.quick,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
