"""End to end in a real browser: `streamlit run app.py` driven by Playwright with Debian's Chromium.

Screenshots of every page go to ``artifacts/``. Skipped (with the reason) when Chromium or the
playwright package is missing; `make test` installs both.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    export = tmp_path_factory.mktemp("e2e") / "export"
    port = free_port()
    env = {**os.environ, "EXPORT_DIR": str(export), "IMAGES_PER_SECOND": "10", "DESCRIPTOR_DOWNLOAD": "false",
           "OPTIONS_TH_INIT": "0.15", "LOGGING_LEVEL": "INFO", "LAYOUT_LANDSCAPE": "true"}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + Path(log.name).read_text()[-2000:])
    yield url, export
    proc.terminate()
    proc.wait(15)
    log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def live_image_src(page) -> str | None:
    imgs = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    return imgs.first.get_attribute("src") if imgs.count() else None


def run_order(page, url: str, number: str, video: bool = False) -> None:
    page.goto(url)
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    if video:
        page.get_by_text("Options").click()
        page.get_by_text("video", exact=True).click()
    page.get_by_label("Order number").fill(number)
    page.get_by_label("Order number").press("Enter")
    page.get_by_role("button", name="Start").click()
    page.get_by_text(f"Order {number} started").wait_for(timeout=30_000)


def db_rows(export: Path, sql: str, *args):
    con = sqlite3.connect(export / "capture.sqlite3")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_distinct_images_in_the_browser(server, browser):
    url, export = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    run_order(page, url, "E2E-4711")
    # live frames arrive and change
    page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first.wait_for(timeout=30_000)
    first = live_image_src(page)
    deadline = time.monotonic() + 20
    while live_image_src(page) == first and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live_image_src(page) != first, "the live view did not update"
    page.screenshot(path=str(ARTIFACTS / "capture-running.png"), full_page=True)
    page.get_by_role("button", name="Save image").click()
    time.sleep(1.5)
    page.get_by_role("button", name="Close order").click()
    page.get_by_text("image(s) saved").first.wait_for(timeout=30_000)
    time.sleep(1.0)
    page.screenshot(path=str(ARTIFACTS / "capture-closed.png"), full_page=True)
    shown = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').count()
    folder = export / "E2E-4711"
    files = sorted(p.name for p in folder.glob("*.jpg"))
    rows = db_rows(export, "SELECT i.file_name, i.forced FROM images i JOIN orders o ON o.id = i.order_id "
                           "WHERE o.order_number = 'E2E-4711' AND i.state = 'ok'")
    assert len(files) >= 2
    assert shown == len(files) == len(rows)
    assert sorted(r[0] for r in rows) == files
    assert any(r[1] for r in rows), "the frame saved with 'Save image' is marked"
    # the gallery and statistics pages
    page.goto(url + "/gallery")
    page.get_by_text("Download order as ZIP").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "gallery.png"), full_page=True)
    page.goto(url + "/statistics")
    page.get_by_text("Images per order").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "statistics.png"), full_page=True)
    page.close()


def test_video_in_the_browser(server, browser):
    url, export = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    run_order(page, url, "E2E-VIDEO", video=True)
    time.sleep(3.5)
    page.get_by_role("button", name="Close order").click()
    page.get_by_text("Video saved").first.wait_for(timeout=30_000)
    page.locator("video").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "capture-video.png"), full_page=True)
    ((name, frames, fps),) = db_rows(export, "SELECT video_file, video_frames, video_fps FROM orders "
                                             "WHERE order_number = 'E2E-VIDEO'")
    cap = cv2.VideoCapture(str(export / "E2E-VIDEO" / name))
    ok, frame = cap.read()
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert ok and frame.shape[:2] == (360, 480)  # 640x480 demo frames at the default resolution 480
    assert count == frames and frames >= 20
    assert 7 < fps < 12
    page.close()
