"""How long the Gallery page takes to render an order of thousands of images (issue 9, point 17).

Builds orders of 5,000 and 50,000 small JPEGs (rows written in one transaction, files without fsync: only the
gallery is measured), then times the Gallery page script with Streamlit's AppTest: the first render of the
order and the switch to its last page. The baseline renders every thumbnail of the order on one page, as the
gallery did before it was paged (``utils.ui.show_gallery`` over all images; 5,000 only, it grows linearly).

    python bench/gallery.py --json          # medians of --rounds renders
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from utils.imaging import encode_jpeg  # noqa: E402
from utils.storage import Store  # noqa: E402

BASELINE_SCRIPT = """
import os
from utils.config import load_settings
from utils.storage import Store
from utils.ui import show_gallery
s = load_settings()
store = Store(s.EXPORT_DIR)
order = store.list_orders()[0]
show_gallery(store.images(order.id), s.GALLERY_N_COLUMNS, None, "baseline")
"""


def make_order(export: Path, n: int) -> None:
    """An order of ``n`` distinct 640x480 JPEGs with some texture (about 15 KB each; camera frames at the
    dashboard's default resolution are a few times larger: decoding them for thumbnails costs more)."""
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 40, (480, 640, 3), dtype=np.uint8)
    store = Store(export)
    order, _ = store.open_order(f"BENCH-{n}")
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        img = Image.fromarray(noise + np.array([i % 200, (i // 200) % 200, 100], dtype=np.uint8))
        data = encode_jpeg(img, 80)
        (order.folder / name).write_bytes(data)
        rows.append((order.id, i + 1, name, (t0 + timedelta(seconds=i)).isoformat(), 640, 480, len(data)))
    con = sqlite3.connect(store.db_path)
    with con:
        con.executemany("INSERT INTO images (order_id, seq, file_name, state, captured_at, width, height, size_bytes)"
                        " VALUES (?, ?, ?, 'ok', ?, ?, ?, ?)", rows)
    con.close()
    store.close_order(order.id)


def time_gallery(export: Path) -> tuple[float, float]:
    """Seconds for the first render of the Gallery page and for the switch to the order's last page."""
    from streamlit.testing.v1 import AppTest

    import streamlit as st

    os.environ["EXPORT_DIR"] = str(export)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()  # builds the engine: not timed
    start = time.perf_counter()
    at.switch_page("pages/gallery.py").run()
    first = time.perf_counter() - start
    assert not at.exception, at.exception
    page_box = next(n for n in at.number_input if str(n.key).startswith("gallery_page_"))
    start = time.perf_counter()
    page_box.set_value(page_box.max).run()
    last = time.perf_counter() - start
    assert not at.exception, at.exception
    return first, last


def time_baseline(export: Path) -> float:
    from streamlit.testing.v1 import AppTest

    import streamlit as st

    os.environ["EXPORT_DIR"] = str(export)
    st.cache_data.clear()
    start = time.perf_counter()
    at = AppTest.from_string(BASELINE_SCRIPT, default_timeout=600).run()
    assert not at.exception, at.exception
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DESCRIPTOR_DOWNLOAD", "false")
    os.environ.setdefault("LOGGING_LEVEL", "WARNING")
    result: dict[str, float | int] = {"rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (5_000, 50_000):
            export = Path(tmp) / f"export-{n}"
            make_order(export, n)
            runs = [time_gallery(export) for _ in range(args.rounds)]
            result[f"first_render_s_{n}"] = round(statistics.median(r[0] for r in runs), 3)
            result[f"last_page_s_{n}"] = round(statistics.median(r[1] for r in runs), 3)
            if n == 5_000:
                result["baseline_all_thumbnails_s_5000"] = round(time_baseline(export), 2)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:34s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
