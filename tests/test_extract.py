"""The live decision in the worker (settling on a camera stream, stills from a folder) and ``extract.py`` on a
folder of images and on a video the test writes, including a video that breaks off part-way."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import describe_images as di
from communication import FolderCamera, MemoryCamera
from ImageProcessingThread import CaptureOptions, CaptureWorker
from tests.conftest import PROJECT_TOYDATA, ROOT, original_toydata, wait_for
from tests.scenes import BASE, GREEN, Camera, item_of_area, stream, with_items
from utils.imaging import read_user_comment
from utils.storage import Store

SMALL = item_of_area(0.02, 0.62, 0.62, GREEN)
OTHER = item_of_area(0.02, 0.30, 0.70, (200, 50, 40))
PLAN = [(BASE, 8), (BASE, 5, "hand"), (with_items(SMALL), 8), (with_items(SMALL), 4, "hand"),
        (with_items(SMALL, OTHER), 8)]


def jpegs(frames: list[Image.Image]) -> list[bytes]:
    out = []
    for f in frames:
        buf = io.BytesIO()
        f.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def test_the_worker_waits_for_the_scene_to_settle(tmp_path, descriptor):
    """A camera stream with hands passing: the worker keeps one image per state and none of a hand, and its
    snapshot says when the scene is settling."""
    frames, labels = stream(Camera(21), PLAN)
    store = Store(tmp_path / "export")
    worker = CaptureWorker(MemoryCamera(jpegs(frames)), descriptor, store)
    opts = CaptureOptions(threshold=0.325, images_per_second=10, resolution=480, settle_frames=2)
    worker.start("SETTLE-1", opts)
    settling_seen = False
    try:
        deadline = time.monotonic() + 60
        while worker.snapshot().frames_seen < len(frames) and time.monotonic() < deadline:
            settling_seen = settling_seen or worker.snapshot().settling
            time.sleep(0.02)
    finally:
        summary = worker.stop()
    assert settling_seen
    assert summary.kept == len(set(labels) - {"T"}) == 3
    assert [r.seq for r in worker.snapshot().recent] == [3, 2, 1]  # the live view's strip, newest first


def test_the_demo_camera_stills_settle_at_once(tmp_path, descriptor):
    """The folder camera serves stills: every state of the demo data is kept with the settle logic on."""
    store = Store(tmp_path / "export")
    camera = FolderCamera(PROJECT_TOYDATA)
    worker = CaptureWorker(camera, descriptor, store)
    worker.start("DEMO-1", CaptureOptions(threshold=0.325, images_per_second=20, resolution=320, settle_frames=2))
    try:
        wait_for(lambda: worker.snapshot().frames_seen >= len(camera.files) + 2, timeout=60)
    finally:
        summary = worker.stop()
    assert summary.kept == 13  # toydata/README.md: 16 frames, 3 of them the same as the one before


# ---------------------------------------------------------------- extract.py


def run_extract(*args: str, export: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DESCRIPTOR_DOWNLOAD": "false", "LOGGING_LEVEL": "WARNING"}
    env.pop("EXPORT_DIR", None)
    return subprocess.run([sys.executable, "extract.py", *args, "--export-dir", str(export), "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_extract_a_folder_of_stills_like_the_demo_camera(tmp_path):
    result = run_extract(str(PROJECT_TOYDATA), export=tmp_path / "export")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["order"] == "toydata" and out["frames"] == 16
    sources = [k["source"] for k in out["kept"]]
    assert sources == ["01.jpg", "03.jpg", "04.jpg", "06.jpg", "07.jpg", "08.jpg", "09.jpg", "11.jpg", "12.jpg",
                       "13.jpg", "14.jpg", "15.jpg", "16.jpg"]  # every "(same)" frame of the README left out
    store = Store(tmp_path / "export")
    order = store.list_orders()[0]
    assert order.order_number == "toydata" and not order.is_open
    rows = store.images(order.id)
    assert [r.file_name for r in rows] == [k["file"] for k in out["kept"]]
    first = Image.open(rows[1].path)
    assert read_user_comment(first)["order"] == "toydata"  # EXIF like a live capture
    from utils.stats_store import stats_rows

    assert len(stats_rows(store, [r.id for r in rows])) == len(rows)  # statistics computed


def test_extract_the_original_demo_frames(tmp_path):
    files = original_toydata()
    result = run_extract(str(files[0].parent), "--order", "ORIG-1", export=tmp_path / "export")
    assert result.returncode == 0, result.stderr
    kept = [k["source"] for k in json.loads(result.stdout.strip().splitlines()[-1])["kept"]]
    assert kept[0] == "01.JPG" and "02.JPG" not in kept and "05.JPG" not in kept  # identical pairs kept once
    assert {"06.JPG", "07.JPG", "12.JPG", "13.JPG", "17.JPG"} <= set(kept)


def write_video(path: Path, frames: list[Image.Image], fps: float = 5.0, codec: str = "mp4v") -> None:
    w, h = frames[0].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(np.asarray(f), cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, list[str]]:
    frames, labels = stream(Camera(22), PLAN)
    path = tmp_path_factory.mktemp("video") / "station-7.mp4"
    write_video(path, frames)
    return path, labels


def test_extract_a_video_settles_on_its_frames(tmp_path, video):
    path, labels = video
    result = run_extract(str(path), "--threshold", "0.325", export=tmp_path / "export")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["order"] == "station-7" and out["frames"] == len(labels)
    kept_labels = [labels[k["source"]] for k in out["kept"]]
    assert kept_labels == ["s0", "s1", "s2"]  # one per state, no hand, frame indexes 0-based
    assert all(isinstance(k["source"], int) for k in out["kept"])
    assert out["kept"][0]["distance"] is None and all(k["distance"] > 0.325 for k in out["kept"][1:])


def test_a_video_that_breaks_off_keeps_what_was_read(tmp_path):
    """An AVI cut at 60 % (a copy interrupted, a camera that died): the frames before the cut are used, the
    answer says where it stopped, the exit code is 1. (An MP4 cut short has no index at all: refused, exit 2.)"""
    frames, labels = stream(Camera(25), PLAN)
    full = tmp_path / "full.avi"
    write_video(full, frames, codec="MJPG")
    data = full.read_bytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(data[: int(len(data) * 0.6)])
    result = run_extract(str(broken), export=tmp_path / "export")
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["stopped_at"] == out["frames"] and 0 < out["frames"] < out["expected_frames"] == len(labels)
    assert f"stopped at frame {out['frames']} of {len(labels)}" in result.stderr
    assert [labels[k["source"]] for k in out["kept"]] == sorted({labels[i] for i in range(out["frames"])} - {"T"},
                                                               key=labels.index)


def test_unreadable_input_gets_a_clear_error(tmp_path):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    for source, needle in ((not_video, "cannot be read as a video"), (tmp_path / "missing", "neither a folder"),
                           (tmp_path, "holds no images")):
        result = run_extract(str(source), export=tmp_path / "export")
        assert result.returncode == 2 and needle in result.stderr and "Traceback" not in result.stderr
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"garbage")
    frames, _ = stream(Camera(23), [(BASE, 1)])
    frames[0].save(folder / "b.jpg")
    result = run_extract(str(folder), export=tmp_path / "export")
    assert result.returncode == 0
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["errors"][0].startswith("a.jpg") and [k["source"] for k in out["kept"]] == ["b.jpg"]
    assert "skipped a.jpg" in result.stderr


def test_extract_uses_the_same_decision_as_the_live_capture(tmp_path, descriptor):
    """The library call behind extract.py with the seeded network: the frames it keeps are the ones the
    Decider keeps on the same frames."""
    from utils.config import load_settings
    from utils.extract import extract

    frames, labels = stream(Camera(24), PLAN)
    folder = tmp_path / "frames"
    folder.mkdir()
    path = folder / "v.mp4"
    write_video(path, frames)
    settings = load_settings({"EXPORT_DIR": str(tmp_path / "export")})
    store = Store(settings.EXPORT_DIR)
    progress = []
    result = extract(path, store, descriptor, settings, order_number="SAME-1", progress=lambda *a: progress.append(a))
    cap = cv2.VideoCapture(str(path))
    decoded = []
    while (ok_frame := cap.read())[0]:
        decoded.append(Image.fromarray(cv2.cvtColor(ok_frame[1], cv2.COLOR_BGR2RGB)))
    decider = di.Decider(descriptor.layout, settings.OPTIONS_TH_INIT, settings.settle_frames)
    want = []
    for i, img in enumerate(decoded):
        features = descriptor.describe(img)
        if decider.step(features).keep:
            decider.kept(features)
            want.append(i)
    assert [k["source"] for k in result.kept] == want
    assert progress[-1] == (len(labels), len(labels), len(want))


# ---------------------------------------------------------------- the Extract page


def test_the_extract_page_with_images_and_with_a_mix(app_env):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import shown

    page = str(ROOT / "pages" / "extract.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not at.exception
    files = [(p.name, p.read_bytes(), "image/jpeg") for p in sorted(PROJECT_TOYDATA.glob("*.jpg"))]
    at.file_uploader(key="extract_files").set_value(files + [("clip.mp4", b"x" * 100, "video/mp4")])
    at.button(key="extract_run").click().run()
    assert any("one video alone, or images only" in shown(e.value) for e in at.error)
    at.file_uploader(key="extract_files").set_value(files)
    at.text_input(key="extract_order").input("UPLOAD-9")
    at.button(key="extract_run").click().run()
    assert not at.exception and not at.error
    assert any("UPLOAD-9: 13 image(s) kept of 16 frame(s)" in shown(h.value) for h in at.subheader)
    assert len(at.get("image")) == 13  # the order's gallery
    store = Store(app_env)
    (order,) = store.list_orders()
    assert order.order_number == "UPLOAD-9" and len(store.images(order.id)) == 13


def test_the_extract_page_in_the_browser(tmp_path, browser_factory):
    """Upload a video as a person would (file chooser), watch the progress bar finish, see the gallery."""
    from tests.browser import ARTIFACTS, Dashboard

    frames, labels = stream(Camera(26), PLAN)
    video = tmp_path / "line-3 shift.avi"
    write_video(video, frames, codec="MJPG")
    dash = Dashboard(tmp_path / "export", tmp_path / "streamlit.log")
    try:
        page = browser_factory(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(dash.url + "/extract")
        page.get_by_role("heading", name="Extract").wait_for(timeout=90_000)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(video))
        page.get_by_text("line-3 shift.avi").wait_for(timeout=30_000)
        page.get_by_role("button", name="Extract").last.click()
        page.get_by_text("Done: 3 image(s) kept of 33 frame(s)").wait_for(timeout=120_000)
        page.get_by_text("Order line-3-shift: 3 image(s) kept").wait_for(timeout=30_000)
        page.locator('[data-testid="stImage"]').nth(2).wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "extract.png"), full_page=True)
    finally:
        dash.stop()
    store = Store(tmp_path / "export")
    (order,) = store.list_orders()
    assert order.order_number == "line-3-shift" and len(store.images(order.id)) == 3
