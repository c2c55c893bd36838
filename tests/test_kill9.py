"""`kill -9` of the dashboard in the middle of an order, for real.

`streamlit run app.py` runs on a free port with a temporary EXPORT_DIR and a demo camera whose
frames are all distinct (so images are being written when the kill comes). An order is started
in Chromium (Playwright); while it keeps images the server gets SIGKILL. The server is started
again on the same EXPORT_DIR; then every image file has its row and every row its file (the
recovery at start ran), no image that was kept before the kill is lost, and the order is still
open: Start with the same order number resumes it (its kept images count on) and it can be closed.

Skipped (with the reason) when Chromium or the playwright package is missing; `make test` installs both.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import numpy as np
from PIL import Image

from tests.browser import Dashboard, db_rows, require_browser, start_order
from tests.conftest import wait_for
from utils.files import is_temp_file

require_browser()  # skips the module without playwright or chromium


def distinct_frames(folder: Path, n: int, size=(320, 240)) -> Path:
    """``n`` JPEG frames of random colour blocks: every one is far from every other (all are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    w, h = size
    for i in range(n):
        blocks = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        Image.fromarray(np.kron(blocks, np.ones((h // 3, w // 4, 1), np.uint8))).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def demo_dashboard(export: Path, frames: Path, log: Path) -> Dashboard:
    """The dashboard on the demo camera serving ``frames`` at 10 frames/s."""
    return Dashboard(export, log, TEST_DATA_FOLDER=str(frames), CAMERA_SOURCE="folder", IMAGES_PER_SECOND="10")


def ok_files(export: Path, number: str) -> set[str]:
    return {r[0] for r in db_rows(export, "SELECT i.file_name FROM images i JOIN orders o ON o.id = i.order_id "
                                          "WHERE o.order_number = ? AND i.state = 'ok'", number)}


# ------------------------------------------------------------------ the test

def test_kill9_in_the_middle_of_an_order_then_resume_and_close(tmp_path, browser):
    number = "K9-4711"
    export = tmp_path / "export"
    frames = distinct_frames(tmp_path / "frames", 300)  # 30 s of distinct frames at 10/s
    log = tmp_path / "streamlit.log"
    folder = export / number
    dash = demo_dashboard(export, frames, log)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start_order(page, dash.url, number)
        wait_for(lambda: len(ok_files(export, number)) >= 8, what="8 kept images")
        before = ok_files(export, number)  # what the app had reported as kept (row ok = kept)
        dash.kill9()  # while it still keeps an image every 0.1 s
        page.close()
    finally:
        dash.stop()
    assert dash.proc.returncode == -signal.SIGKILL
    # what the kill left (for the record): pending rows and temporary files are recovery's job
    pending = db_rows(export, "SELECT file_name FROM images WHERE state = 'pending'")
    temp = [p.name for p in folder.iterdir() if is_temp_file(p)]
    print(f"after kill -9: {len(before)} kept before, {len(pending)} pending row(s), {len(temp)} temporary file(s)")

    dash = demo_dashboard(export, frames, log)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(dash.url)
        page.get_by_role("button", name="Start").wait_for(timeout=90_000)  # the engine is built: recovery ran
        # every file has its row and every row its file; nothing pending, nothing temporary, nothing lost
        assert not db_rows(export, "SELECT id FROM images WHERE state = 'pending'")
        assert not [p.name for p in folder.iterdir() if is_temp_file(p)]
        files = {p.name for p in folder.iterdir() if p.is_file()}
        rows = ok_files(export, number)
        assert files == rows, files ^ rows
        assert before <= rows, f"kept images lost: {sorted(before - rows)}"
        for name in files:
            with Image.open(folder / name) as img:
                img.load()
        ((order_id, status, n_orders),) = db_rows(export, "SELECT id, status, (SELECT COUNT(*) FROM orders) FROM orders")
        assert status == "open" and n_orders == 1
        if pending or temp:
            assert "Recovery after an unclean stop" in log.read_text()
        # Start with the same number resumes the open order: same folder, its images count on
        page.get_by_label("Order number").fill(number)
        page.get_by_label("Order number").press("Enter")
        page.get_by_role("button", name="Start").click()
        page.get_by_text(f"Order {number} started in {number}.").wait_for(timeout=30_000)
        recovered = len(rows)
        wait_for(lambda: len(ok_files(export, number)) >= recovered + 3, what="new images in the resumed order")
        page.get_by_role("button", name="Close order").click()
        closed = page.get_by_text(re.compile(r"closed\. \d+ image\(s\) saved")).first
        closed.wait_for(timeout=30_000)
        kept_reported = int(re.search(r"(\d+) image\(s\) saved", closed.inner_text()).group(1))
        page.close()
    finally:
        dash.stop()
    final = ok_files(export, number)
    files = {p.name for p in folder.iterdir() if p.is_file()}
    assert files == final and before <= final
    assert kept_reported == len(final) > recovered  # the count went on from the images kept before the kill
    assert db_rows(export, "SELECT id, status FROM orders") == [(order_id, "closed")]
    assert not db_rows(export, "SELECT id FROM images WHERE state = 'pending'")
    assert not (export / f"{number}_1").exists()
