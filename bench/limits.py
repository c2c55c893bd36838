"""Measure the limits of README *Limits*: peak memory and time of one image's statistics at and beyond the decoding
limits, of three at once, and how long slow image URLs can hold a fetch.

Each image case runs in a fresh child process (``--case``) so that its peak memory (VmHWM, reset just before)
is its own; the attack files are built without their pixels in memory (``tests.test_decode_limits.png_bytes``).

    python bench/limits.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import memory_kb, reset_peak  # noqa: E402
from tests.test_decode_limits import big_jpeg, png_bytes  # noqa: E402
from tests.test_url_fetch import TrickleServer  # noqa: E402
from utils.url_fetch import MAX_PARALLEL_FETCHES, URLFetchError, fetch_image  # noqa: E402

# name: (what, how to make the file)
IMAGES = {
    "attack_16bit_14000": ("16-bit grey PNG 14000 x 14000 (381 KB)", lambda: png_bytes(14000, 14000, 16)),
    "attack_1x199999999": ("8-bit grey PNG 1 x 199,999,999 (389 KB)", lambda: png_bytes(1, 199_999_999)),
    "largest_grey16": ("16-bit grey PNG 10000 x 10000 (100 MP, 191 MiB decoded)",
                       lambda: png_bytes(10000, 10000, 16, bands=[(5000, 255), (5000, 0)])),
    "largest_rgb": ("RGB PNG 8000 x 8000 (64 MP, 244 MiB decoded)", lambda: png_bytes(8000, 8000, 8, 2)),
    "jpeg_reduced": ("RGB JPEG 9000 x 9000 (81 MP: decoded at 1/2)", lambda: big_jpeg(9000, 9000)),
}


def measure(path: Path, copies: int) -> dict:
    """In this (child) process: the statistics of ``copies`` copies of the file at once; peak memory and time."""
    from utils.image_stats import ImageStatsError, compute_stats

    data = path.read_bytes()
    outcomes: list[str] = []

    def one() -> None:
        try:
            stats = compute_stats(data)
            outcomes.append(f"ok {stats.width}x{stats.height} decoded at 1/{stats.decoded_scale}")
        except ImageStatsError as err:
            outcomes.append(f"refused: {err}")

    reset_peak(os.getpid())
    start = memory_kb(os.getpid())["VmRSS"]
    t0 = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"peak_mb": round((memory_kb(os.getpid())["VmHWM"] - start) / 1024, 1),
            "seconds": round(time.monotonic() - t0, 2), "outcome": sorted(set(outcomes))}


def run_case(path: Path, copies: int = 1) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", str(path), "--copies", str(copies)],
                         check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def slow_fetches(n: int) -> dict[int, list[float]]:
    """``n`` fetches at once (timeout 5 s) from a fresh server trickling its headers: seconds each, by status."""
    slow = TrickleServer(interval=0.5, give_up=60)
    times: dict[int, list[float]] = {}

    def fetch() -> None:
        t0 = time.monotonic()
        try:
            fetch_image(slow.url(), allow_private=True, timeout=5)
        except URLFetchError as err:
            times.setdefault(err.status, []).append(round(time.monotonic() - t0, 2))

    threads = [threading.Thread(target=fetch) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        slow.close()
    return times


def api_health_under_slow_urls(n: int = 45) -> dict:
    """A real API (uvicorn, URL_FETCH_TIMEOUT 5): ``GET /health`` and ``/orders`` while ``n`` slow URLs are posted."""
    import requests

    import api
    from tests.test_api import serve, settings_for

    slow = TrickleServer(interval=0.5, give_up=60)
    with tempfile.TemporaryDirectory() as tmp, \
            serve(api.create_app(settings_for(Path(tmp), URL_ALLOW_PRIVATE="true", URL_FETCH_TIMEOUT="5"))) as (base, _):
        posts = [threading.Thread(target=requests.post, args=(f"{base}/stats",),
                                  kwargs={"json": {"content": slow.url()}, "timeout": 60}) for _ in range(n)]
        for t in posts:
            t.start()
        while slow.open < MAX_PARALLEL_FETCHES:
            time.sleep(0.05)
        seconds = {}
        for path in ("/health", "/orders"):
            t0 = time.monotonic()
            requests.get(base + path, timeout=60).raise_for_status()
            seconds[path] = round(time.monotonic() - t0, 3)
        for t in posts:
            t.join()
        slow.close()
    return seconds


def fetch_cases() -> dict:
    """One fetch from a server trickling its headers (a byte every 0.5 s), 45 at once (as the attack), and the
    API's answer times meanwhile."""
    many = slow_fetches(45)
    return {"one_slow_fetch_timeout_5s": slow_fetches(1),
            "45_at_once": {str(k): {"count": len(v), "max_seconds": max(v)} for k, v in many.items()},
            "limit": MAX_PARALLEL_FETCHES, "api_seconds_during_45": api_health_under_slow_urls()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--case", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.copies)))
        return 0
    results: dict = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (what, make) in IMAGES.items():
            path = Path(tmp) / name
            path.write_bytes(make())
            results[name] = {"what": what, "bytes": path.stat().st_size, **run_case(path)}
        results["largest_grey16_three_at_once"] = run_case(Path(tmp) / "largest_grey16", copies=3)
        results["attack_16bit_14000_three_at_once"] = run_case(Path(tmp) / "attack_16bit_14000", copies=3)
    results["url_fetch"] = fetch_cases()
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
