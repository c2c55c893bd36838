"""End to end in a real browser: `streamlit run app.py` driven by Playwright with Debian's Chromium.

Screenshots of every page go to ``artifacts/``. Skipped (with the reason) when Chromium or the
playwright package is missing; `make test` installs both.
"""

from __future__ import annotations

import time

import cv2
import pytest

from tests.browser import ARTIFACTS, Dashboard, db_rows, require_browser, start_order

require_browser()  # skips the module without playwright or chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    dash = Dashboard(base / "export", base / "streamlit.log")
    yield dash.url, dash.export
    dash.stop()


def live_image_src(page) -> str | None:
    imgs = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    return imgs.first.get_attribute("src") if imgs.count() else None


def test_distinct_images_in_the_browser(server, browser):
    url, export = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start_order(page, url, "E2E-4711")
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
    page.get_by_text("Images per order").first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # the charts, not their placeholders
    time.sleep(1.0)
    page.screenshot(path=str(ARTIFACTS / "statistics.png"), full_page=True)
    page.close()


def test_video_in_the_browser(server, browser):
    url, export = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start_order(page, url, "E2E-VIDEO", video=True)
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
    src = page.locator("video").first.get_attribute("src")
    served = page.request.get(src if src.startswith("http") else url + src)
    playable = "webm" if (export / "E2E-VIDEO" / name).with_suffix(".preview.webm").exists() else "mp4"
    assert served.status == 200 and served.headers["content-type"] == f"video/{playable}"  # its own type
    page.close()


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)], ids=["1280x800", "1920x1080"])
def test_the_capture_page_uses_the_screen(server, browser, size):
    """The live image fills its column beside the figures, and no figure is cut off (Dashboard: LAYOUT_LANDSCAPE
    as the test server sets it)."""
    url, _ = server
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    start_order(page, url, f"E2E-SCREEN-{size[0]}")
    image = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
    image.wait_for(timeout=30_000)
    page.get_by_text("Frames seen").first.wait_for(timeout=30_000)
    time.sleep(1.5)
    main = page.locator('[data-testid="stMain"]').bounding_box()
    box = image.bounding_box()
    assert box["width"] >= 0.45 * main["width"] and box["width"] > 400, (box, main)  # not 320 px any more
    cut = page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)""")  # an ellipsis: text cut off
    assert cut == [], f"figures cut off: {cut}"
    for name in ("Close order", "Save image"):  # a finger hits them on a touch panel: 48 px is the usual minimum
        button = page.get_by_role("button", name=name).bounding_box()
        assert button["height"] >= 48 and button["width"] >= 120, (name, button)
    order_input = page.get_by_label("Order number").bounding_box()
    assert order_input["height"] >= 44, order_input
    page.screenshot(path=str(ARTIFACTS / f"capture-{size[0]}x{size[1]}.png"))
    page.get_by_role("button", name="Close order").click()
    page.get_by_text("image(s) saved").first.wait_for(timeout=30_000)
    page.close()
