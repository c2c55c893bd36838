"""How fast the plant's commands reach the camera: the HTTP API's capture control against a real engine.

    python bench/control.py --orders 20 --json

The engine runs in this process as the dashboard's would (the demo camera over ``toydata/``, the SQLite store, its
control thread holding the engine lease); the API (``api.create_app``) runs in real uvicorn on loopback, with the
operator's token. For each order: ``POST /orders``, wait for the first frame (``GET /orders/current``), ``POST
/orders/current/save-image``, ``POST /orders/{id}/close``. Each request's wall time is measured at the client.

Printed (``--json``: one object as the last line): the median and the 95th percentile of each command's time in
milliseconds, and, as the baseline measured in the same run, the same worker's start and close called directly
(what the dashboard's buttons cost), so the ratio shows what the queue adds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN, OPERATOR = "bench-admin-token-0001", "bench-operator-token-01"


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import requests
    import uvicorn

    export = Path(tempfile.mkdtemp(prefix="bench-control-")) / "export"
    env = {"EXPORT_DIR": str(export), "DESCRIPTOR_DOWNLOAD": "false", "LOGGING_LEVEL": "WARNING",
           "API_TOKEN": TOKEN, "API_OPERATOR_TOKEN": OPERATOR, "IMAGES_PER_SECOND": "10"}
    os.environ.update(env)
    import api
    from utils.config import load_settings
    from utils.engine import shared_engine

    settings = load_settings()
    engine = shared_engine(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api.create_app(settings), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    h = {"Authorization": f"Bearer {OPERATOR}"}
    times: dict[str, list[float]] = {"start": [], "save_image": [], "close": [], "direct_start": [], "direct_close": []}

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        out = fn()
        times[name].append(1000 * (time.perf_counter() - t0))
        return out

    for i in range(args.orders):
        r = timed("start", lambda: requests.post(url + "/orders", headers=h, json={"order_number": f"B-{i}"}))
        assert r.status_code == 201, r.text
        order_id = r.json()["order_id"]
        while requests.get(url + "/orders/current", headers=h).json()["frames_seen"] == 0:
            time.sleep(0.05)
        r = timed("save_image", lambda: requests.post(url + "/orders/current/save-image", headers=h))
        assert r.status_code in (201, 202), r.text
        r = timed("close", lambda: requests.post(f"{url}/orders/{order_id}/close", headers=h))
        assert r.status_code == 200, r.text
        # baseline: the same engine driven directly, as the dashboard's buttons do
        timed("direct_start", lambda: engine.start_order(f"D-{i}", engine.options()))
        time.sleep(0.3)
        timed("direct_close", engine.close_order)
    server.should_exit = True

    result = {"orders": args.orders}
    for name, values in times.items():
        result[f"{name}_ms_p50"] = round(statistics.median(values), 1)
        result[f"{name}_ms_p95"] = round(_p95(values), 1)
    result["start_ratio_to_direct"] = round(result["start_ms_p50"] / result["direct_start_ms_p50"], 2)
    result["close_ratio_to_direct"] = round(result["close_ms_p50"] / result["direct_close_ms_p50"], 2)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")
    from utils.control.loop import stop_all_control_loops

    stop_all_control_loops()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
