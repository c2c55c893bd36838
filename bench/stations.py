"""Several stations, one archive: N station processes capture and sync into one PostgreSQL and one S3 server.

    python bench/stations.py --stations 4 --minutes 3 --json
    python bench/stations.py --stations 2 --minutes 1 --outage 20 --json      # a short check

Each station is its own process, as on the shop floor: the real :class:`CaptureWorker` requests frames over HTTP
from its own adapter simulator (``utils.demo_adapter``, 640x480 packing-table JPEGs) at ``--rate`` frames/s and
"Save image" is pressed at that rate too, so every frame is kept (the highest keep rate: 10 images/s a station);
its store has the outbox and its :class:`Syncer` sends into
the central PostgreSQL and SeaweedFS S3 server (both started here on loopback, as the tests start them). In the
middle of the run both central servers are stopped for ``--outage`` seconds, then started again.

First a baseline: the same stations for ``--baseline`` seconds without the archive (capture alone), for the frame
rate a station reaches on this machine with its neighbours.

Printed (``--json``: one object as the last line):

* ``kept``: images the stations kept (their ``ok`` rows); ``arrived``: image rows in the central database whose
  object is in the store with the same bytes (MD5); ``lost`` = kept - arrived (must be 0); ``duplicates``: central
  rows beyond one per (station, image) plus objects beyond one per row (must be 0);
* ``sync_lag_p50_s``, ``sync_lag_p95_s``: seconds from an image's ok row to its confirmation, for images kept
  outside the outage: before it, or after the backlog it left was sent (target: p95 under 2 s);
  ``sync_lag_max_outage_s``: the longest wait of an image kept during it; ``sync_lag_max_catching_up_s``: of one kept
  after it while the backlog was still being sent;
* ``capture_fps_per_station`` with the archive and ``baseline_fps_per_station`` without, and their ratio (target:
  within 5 %); ``drain_s``: seconds after the outage until the last image kept during it was confirmed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRAME_SIZE = (640, 480)


def station_main(args: argparse.Namespace) -> None:
    """One station process: capture for ``--seconds`` (with the sync when ``--db`` is given), then print JSON."""
    from communication import BaslerAdapterCamera
    from DataModels_BaslerCameraAdapter import TakePhotoParams
    from describe_images import load_descriptor
    from ImageProcessingThread import CaptureOptions, CaptureWorker
    from utils.archive.central import CentralArchive
    from utils.archive.objects import open_object_store
    from utils.archive.sync import Syncer
    from utils.demo_adapter import DemoAdapterServer
    from utils.storage import Store
    from utils.synthetic import camera_frames

    sync = args.db is not None
    store = Store(Path(args.export), station=args.station, outbox=sync)
    syncer = None
    if sync:
        objects_kw = json.loads(args.objects_kw)
        syncer = Syncer(store, archive=lambda: CentralArchive(args.db),
                        objects=lambda: open_object_store(args.storage, **objects_kw),
                        station=args.station, interval_s=1.0, backoff_max_s=4.0).start()
    server = DemoAdapterServer(frames=camera_frames(FRAME_SIZE, 48, quality=90, seed=sum(map(ord, args.station))))
    server.start()
    camera = BaslerAdapterCamera(server.url, TakePhotoParams(), timeout=5.0)
    worker = CaptureWorker(camera, load_descriptor(allow_download=False), store)
    order = worker.start(f"BENCH-{args.order}", CaptureOptions(threshold=args.threshold,
                                                               images_per_second=args.rate, resolution=480))
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.seconds:  # "Save image" at the frame rate: every frame is kept
        worker.save_next()
        time.sleep(1.0 / args.rate)
    snap = worker.snapshot()
    elapsed = time.monotonic() - t0
    worker.stop()
    server.stop()
    camera.close()
    out = {"station": args.station, "frames": snap.frames_seen, "fps": snap.frames_seen / elapsed,
           "kept": len(store.images(order.id)), "order_id": order.id}
    if syncer is not None:
        deadline = time.monotonic() + args.drain_timeout
        while store.outbox_backlog().images and time.monotonic() < deadline:
            time.sleep(0.5)
        syncer.stop()
        out["backlog_left"] = store.outbox_backlog().images
        rows = store._query("SELECT created_at, done_at FROM outbox WHERE entity = 'image' AND done_at IS NOT NULL")
        out["lags"] = [[r["created_at"], r["done_at"]] for r in rows]
    print(json.dumps(out), flush=True)


def spawn(args: argparse.Namespace, name: str, export: Path, seconds: float, db: str | None, storage: str | None,
          objects_kw: dict) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--station-worker", name, "--export", str(export), "--seconds", str(seconds),
           "--rate", str(args.rate), "--threshold", str(args.threshold), "--order", name,
           "--drain-timeout", str(args.drain_timeout)]
    if db is not None:
        cmd += ["--db", db, "--storage", storage or "", "--objects-kw", json.dumps(objects_kw)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def collect(procs: list[subprocess.Popen], timeout: float) -> list[dict]:
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        if p.returncode != 0:
            raise SystemExit(f"a station process failed (exit {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def run(args: argparse.Namespace) -> dict:
    from datetime import datetime

    from tests.servers import PostgresServer, S3Server
    from utils.archive.central import CentralArchive
    from utils.archive.objects import open_object_store

    names = [f"pack-{i + 1}" for i in range(args.stations)]
    with tempfile.TemporaryDirectory(prefix="stations-") as tmp:
        tmp_path = Path(tmp)
        baseline = collect([spawn(args, n, tmp_path / "baseline" / n, args.baseline, None, None, {}) for n in names],
                           timeout=args.baseline + 120)
        pg = PostgresServer()
        s3 = S3Server()
        try:
            db = pg.url(pg.create_database("archive"))
            objects_kw = {"endpoint_url": s3.endpoint, "access_key": s3.access_key, "secret_key": s3.secret_key,
                          "region": "us-east-1", "create_bucket": True}
            storage = "s3://archive/plant"
            central = CentralArchive(db)
            central.upgrade()  # before the stations start: they would wait on each other's upgrade otherwise
            seconds = args.minutes * 60.0
            procs = [spawn(args, n, tmp_path / "stations" / n, seconds, db, storage, objects_kw) for n in names]
            started = time.time()
            time.sleep(max(0.0, seconds / 2 - args.outage / 2))
            outage_start = time.time()
            pg.stop()
            s3.stop()
            time.sleep(args.outage)
            pg.start()
            s3.start()
            outage_end = time.time()
            results = collect(procs, timeout=seconds + args.drain_timeout + 300)
            objects = open_object_store(storage, **objects_kw)
            rows = central.images(states=("ok", "trashed"))
            arrived = 0
            for r in rows:
                info = objects.head(r["object_key"])
                arrived += info is not None and info.md5 == r["md5"]
            keys = set(objects.iter_keys())
            duplicates = (len(rows) - len({(r["station"], r["origin_id"]) for r in rows})
                          + max(0, len(keys) - len(rows)))
        finally:
            pg.close()
            s3.close()

    def ts(value: str) -> float:
        return datetime.fromisoformat(value).timestamp()

    pairs = [(ts(created), ts(done)) for res in results for created, done in res.get("lags", [])]
    during = [d - c for c, d in pairs if outage_start - 1 <= c <= outage_end]
    caught_up = max([d for c, d in pairs if outage_start - 1 <= c <= outage_end], default=outage_end)
    # outside the outage: kept before it, or after the backlog it left was sent (not queued behind it)
    normal = [d - c for c, d in pairs if c < outage_start - 1 or c > caught_up]
    catching_up = [d - c for c, d in pairs if outage_end < c <= caught_up]
    kept = sum(r["kept"] for r in results)
    fps = statistics.median(r["fps"] for r in results)
    base_fps = statistics.median(r["fps"] for r in baseline)
    out = {
        "stations": args.stations,
        "kept": kept,
        "arrived": arrived,
        "lost": kept - arrived,
        "duplicates": duplicates,
        "sync_lag_p50_s": round(statistics.median(normal), 3) if normal else None,
        "sync_lag_p95_s": round(statistics.quantiles(normal, n=20)[-1], 3) if len(normal) >= 20 else None,
        "sync_lag_max_outage_s": round(max(during), 1) if during else None,
        "sync_lag_max_catching_up_s": round(max(catching_up), 1) if catching_up else None,
        "images_outside_outage": len(normal),
        "capture_fps_per_station": round(fps, 2),
        "baseline_fps_per_station": round(base_fps, 2),
        "fps_ratio": round(fps / base_fps, 3) if base_fps else None,
        "drain_s": round(caught_up - outage_end, 1),
        "backlog_left": sum(r.get("backlog_left", 0) for r in results),
        "per_station": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                         if k != "lags"} for r in results],
        "meta": {"minutes": args.minutes, "outage_s": args.outage, "rate": args.rate, "threshold": args.threshold,
                 "baseline_s": args.baseline, "frame_size": "x".join(map(str, FRAME_SIZE)), "cpus": os.cpu_count(),
                 "wall_s": round(time.time() - started, 1)},
    }
    out["targets_met"] = {
        "lost_0": out["lost"] == 0,
        "duplicates_0": duplicates == 0,
        "sync_lag_p95_under_2s": out["sync_lag_p95_s"] is not None and out["sync_lag_p95_s"] < 2.0,
        "fps_within_5pct": out["fps_ratio"] is not None and out["fps_ratio"] >= 0.95,
    }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the central servers are down")
    parser.add_argument("--baseline", type=float, default=30.0, help="seconds of capture without the archive")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second per station")
    parser.add_argument("--threshold", type=float, default=0.05, help="low: most frames are kept")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    # one station process (internal)
    parser.add_argument("--station-worker", dest="station", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--objects-kw", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.station:
        station_main(args)
        return
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
