"""The image tools in a real browser: crop by dragging the box in the Editor (streamlit-cropper), the result kept as a
version in the image's real pixels and shown beside its source in the Gallery; the Import page's grid against a
real page server; the Settings page's jobs. Screenshots go to ``artifacts/``."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from PIL import Image

from tests.browser import ARTIFACTS, Dashboard, db_rows, require_browser, wait_idle
from utils.storage import Store, utc_now

require_browser()

REAL = (1280, 960)  # the image's real size; the cropper shows it at 700 x 525


def scene() -> bytes:
    """A grey station with a red block in its right half (known pixels)."""
    import io

    a = np.full((REAL[1], REAL[0], 3), 180, np.uint8)
    a[300:700, 700:1100] = (200, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.test_web_import import PageServer

    base = tmp_path_factory.mktemp("tools-browser")
    store = Store(base / "export")
    order, _ = store.open_order("CROP-1")
    store.save_image(order, scene(), None, utc_now(), width=REAL[0], height=REAL[1], suffix=".png")
    store.close_order(order.id)
    store.close()
    site = PageServer()
    dash = Dashboard(base / "export", base / "streamlit.log", URL_ALLOW_PRIVATE="true", JOBS_TICK_S="1")
    yield dash.url, dash.export, site
    dash.stop()
    site.close()


def open_editor(page, url: str) -> None:
    page.goto(url + "/editor")
    page.get_by_role("button", name="Edit this image").click()
    page.get_by_text("1280 x 960 px").wait_for(timeout=60_000)


def crop_caption(page) -> tuple[int, int, int, int]:
    text = page.get_by_text(re.compile(r"^Crop \d+ x \d+ px at")).first.inner_text()
    w, h, x, y = map(int, re.findall(r"\d+", text))
    return x, y, w, h


def test_crop_by_dragging_keeps_a_version_in_real_pixels(server, browser):
    url, export, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    open_editor(page, url)
    page.get_by_text("Crop", exact=True).click()
    frame = page.get_by_role("tabpanel", name="Edit").frame_locator('iframe[title*="st_cropper"]')
    canvas = frame.locator("canvas.upper-canvas")
    canvas.wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"^Crop \d+ x \d+ px at")).first.wait_for(timeout=30_000)
    # the default box: 20 % .. 80 % of the 700 x 525 copy, in the real image's pixels
    assert crop_caption(page) == (256, 192, 768, 576)
    box = canvas.bounding_box()
    assert round(box["width"]) == 700 and round(box["height"]) == 525
    # select the box (a click inside), then drag its lower-right corner up and left by 140 x 105 screen pixels:
    # a box of 280 x 210 at (140, 105)
    page.mouse.click(box["x"] + 350, box["y"] + 260)
    time.sleep(0.5)
    corner = (box["x"] + 560, box["y"] + 420)
    page.mouse.move(*corner)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(corner[0] - 14 * i, corner[1] - 10.5 * i)
        time.sleep(0.02)
    page.mouse.up()
    deadline = time.monotonic() + 20
    while crop_caption(page) == (256, 192, 768, 576) and time.monotonic() < deadline:
        time.sleep(0.2)
    x, y, w, h = crop_caption(page)
    assert (x, y) == (256, 192)
    assert abs(w - 512) <= 8 and abs(h - 384) <= 8, (w, h)  # 280 x 210 on screen = 512 x 384 real pixels
    # then move the whole box right by 210 screen pixels (384 real)
    inside = (box["x"] + 200, box["y"] + 200)
    page.mouse.move(*inside)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(inside[0] + 21 * i, inside[1])
        time.sleep(0.02)
    page.mouse.up()
    deadline = time.monotonic() + 20
    while crop_caption(page)[0] == 256 and time.monotonic() < deadline:
        time.sleep(0.2)
    x, y, w2, h2 = crop_caption(page)
    assert abs(x - 640) <= 8 and y == 192 and (w2, h2) == (w, h)
    page.screenshot(path=str(ARTIFACTS / "editor-crop.png"), full_page=True)
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_text("Kept as version").wait_for(timeout=60_000)
    rows = db_rows(export, "SELECT file_name, width, height, operation FROM images WHERE kind = 'version'")
    assert len(rows) == 1
    name, vw, vh, operation = rows[0]
    assert (vw, vh) == (w2, h2) and f'"box": [{x}, {y}, {x + w2}, {y + h2}]' in operation
    version = Image.open(export / "CROP-1" / name)
    assert version.size == (w2, h2)
    rgb = np.asarray(version.convert("RGB")).astype(int)
    red = rgb[..., 0] - rgb[..., 1] > 85  # half-way between the block (170) and the grey station (0); JPEG edges
    # the red block (x 700..1100, y 300..700) seen through the crop window, pixel for pixel
    expect = np.zeros((h2, w2), bool)
    expect[max(0, 300 - y):max(0, 700 - y), max(0, 700 - x):max(0, 1100 - x)] = True
    assert (red == expect).mean() > 0.998
    # the version beside its source in the gallery
    page.goto(url + "/gallery")
    page.get_by_text("version of #1").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "gallery-versions.png"), full_page=True)
    page.close()


def test_import_page_grid_and_settings_jobs(server, browser):
    url, export, site = server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url + "/import")
    page.get_by_label("Page URL").fill(site.url("/site/page.html"))
    page.get_by_role("button", name="Find images").click()
    page.get_by_text(re.compile(r"^\d+ image\(s\) on 127\.0\.0\.1")).wait_for(timeout=60_000)
    page.locator('[data-testid="stCheckbox"]').first.wait_for(timeout=60_000)
    page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first.wait_for(timeout=60_000)
    wait_idle(page)
    time.sleep(0.5)
    page.screenshot(path=str(ARTIFACTS / "import-grid.png"), full_page=True)
    boxes = page.locator('[data-testid="stCheckbox"]')
    n = boxes.count()
    assert n >= 5
    boxes.nth(0).click()  # leave the first one out
    wait_idle(page)
    page.get_by_role("button", name=f"Import {n - 1} image(s)").click()
    page.get_by_text(f"{n - 1} image(s) imported").wait_for(timeout=60_000)
    rows = db_rows(export, "SELECT COUNT(*), COUNT(DISTINCT source_url) FROM images WHERE kind = 'import'")
    assert rows[0] == (n - 1, n - 1)
    page.goto(url + "/settings")
    page.get_by_text("Scheduled jobs").wait_for(timeout=60_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    page.get_by_text("Jobs run in").wait_for(timeout=60_000)  # this dashboard holds the lease
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "settings-jobs.png"), full_page=True)
    page.close()
