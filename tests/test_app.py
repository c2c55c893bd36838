"""The dashboard's pages with Streamlit's AppTest and the demo camera (real worker, real SQLite)."""

from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

import ImageProcessingThread
from tests.conftest import ROOT, shown, wait_for

APP = str(ROOT / "app.py")




@pytest.fixture()
def env(app_env, monkeypatch):
    monkeypatch.setenv("IMAGES_PER_SECOND", "20")
    return app_env


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def worker():
    (w,) = ImageProcessingThread._workers.values()
    return w


def start(at: AppTest, number: str) -> AppTest:
    at.text_input(key="order_number").input(number)
    return at.button(key="button_start").click().run()


def test_start_needs_a_valid_order_number(env):
    at = app()
    assert not at.exception
    assert at.button(key="button_close").disabled and not at.button(key="button_start").disabled
    at.button(key="button_start").click().run()
    assert "Please enter an order number." in [w.value for w in at.warning]
    start(at, "../etc")
    assert any("must not contain /" in w.value for w in at.warning)
    assert not worker().running


def test_start_live_view_live_changes_save_and_close(env):
    at = app()
    start(at, "A-100")
    assert not at.exception
    assert any("A-100" in s.value for s in at.success)
    assert at.button(key="button_start").disabled and not at.button(key="button_close").disabled
    assert at.text_input(key="order_number").disabled and at.selectbox(key="image_resolution").disabled
    w = worker()
    wait_for(lambda: w.snapshot().frames_seen >= 5)
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Frames seen"]) >= 5 and "Distance / threshold" in metrics and "\\# Images" in metrics
    assert len(at.get("image")) >= 1  # the live frame
    at.select_slider(key="threshold").set_value(0.5).run()
    assert w.snapshot().options.threshold == 0.5
    at.number_input(key="images_per_second").set_value(7).run()
    assert w.snapshot().options.images_per_second == 7
    kept = w.snapshot().kept
    at.button(key="button_save_image").click().run()
    # the next frame is kept whatever its distance (a distinct frame may be kept beside it: at least one more)
    wait_for(lambda: w.snapshot().kept > kept and not w.snapshot().save_next_pending)
    assert [r.forced for r in w.store.images(w.snapshot().order.id)].count(True) == 1
    at.button(key="button_close").click().run()
    assert not w.running
    n = w.snapshot().finished.kept
    assert any(f"{n} image(s) saved" in i.value for i in at.info)
    order = w.snapshot().finished.order
    files = [p for p in order.folder.iterdir() if p.suffix == ".jpg"]
    assert len(files) == n == len(w.store.images(order.id))
    assert len(at.get("image")) == n  # the order's gallery
    assert not at.button(key="button_start").disabled and at.button(key="button_close").disabled


def test_second_tab_sees_the_running_order_and_cannot_start_another(env):
    tab1, tab2 = app(), app()
    start(tab1, "FIRST")
    tab2.run()
    assert tab2.button(key="button_start").disabled
    assert tab2.text_input(key="order_number").value == "FIRST"
    tab1.button(key="button_close").click().run()
    tab2.run()
    assert not tab2.button(key="button_start").disabled


def test_update_images_previews_and_moves_to_trash(env):
    at = app()
    at.select_slider(key="threshold").set_value(0.15).run()
    start(at, "UPD")
    w = worker()
    wait_for(lambda: w.snapshot().frames_seen >= 20 and w.snapshot().kept >= 3)
    at.button(key="button_close").click().run()
    order = w.snapshot().finished.order
    before = len(w.store.images(order.id))
    at.select_slider(key="threshold").set_value(0.5).run()
    at.button(key="button_update_images").click().run()
    warning = [x.value for x in at.warning if "would be moved" in x.value]
    assert warning, [x.value for x in at.warning]
    at.button(key="confirm_refilter").click().run()
    after = w.store.images(order.id)
    assert 1 <= len(after) < before
    trashed = list((order.folder / "trash").iterdir())
    assert len(trashed) == before - len(after)


def test_video_mode_disables_threshold_and_shows_the_player(env):
    at = app()
    at.radio(key="save_as").set_value("video").run()
    assert at.select_slider(key="threshold").disabled
    start(at, "VID-1")
    w = worker()
    wait_for(lambda: w.snapshot().video_frames >= 10)
    at.button(key="button_close").click().run()
    assert not at.exception
    assert any("Video saved" in i.value for i in at.info)
    assert len(at.get("video")) == 1
    assert w.snapshot().finished.video_path.exists()


def test_gallery_delete_refilter_and_statistics(env):
    at = app()
    at.select_slider(key="threshold").set_value(0.15).run()
    start(at, "GAL")
    w = worker()
    wait_for(lambda: w.snapshot().kept >= 3)
    at.button(key="button_close").click().run()
    order = w.snapshot().finished.order
    n = len(w.store.images(order.id))
    at.switch_page("pages/gallery.py").run()
    assert not at.exception
    assert len(at.get("image")) == n + 1  # grid + the large image
    at.button(key="gallery_delete").click().run()
    at.button(key="gallery_delete_yes").click().run()
    assert len(w.store.images(order.id)) == n - 1
    assert len(list((order.folder / "trash").iterdir())) == 1
    at.select_slider(key="gallery_threshold").set_value(0.5).run()
    at.button(key="gallery_refilter").click().run()
    assert any("0.500" in m.value for m in [*at.success, *at.warning])
    at.text_input(key="gallery_search").input("nothing-like-this").run()
    assert any("No order matches" in x.value for x in at.warning)
    at.switch_page("pages/statistics_page.py").run()
    assert not at.exception
    assert [m.value for m in at.metric][:2] == ["1", str(n - 1)]


def test_bad_configuration_shows_the_variable(env, monkeypatch):
    monkeypatch.setenv("IMAGES_PER_SECOND", "fast")
    at = app()
    assert any("IMAGES_PER_SECOND" in shown(e.value) for e in at.error)


def test_the_sidebar_says_the_descriptor_in_one_line_and_folds_the_details(env, monkeypatch, tmp_path):
    import torch

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty-hub"))  # no pretrained weights: the fallback runs
    try:
        at = app()
    finally:
        torch.hub.set_dir(old)
    (warning,) = [w.value for w in at.sidebar.warning if "fallback" in w.value]
    assert "no pretrained weights" in warning and "Error" not in warning and len(warning) < 120
    (details,) = [e for e in at.sidebar.expander if e.label == "Details for the engineer"]
    assert any("FileNotFoundError" in c.value or "not in the torch hub cache" in c.value for c in details.caption)


def test_the_live_rate_is_shown_against_the_requested_one_and_drops_to_0_in_an_outage():
    from datetime import timedelta

    from ImageProcessingThread import WorkerSnapshot
    from utils.storage import utc_now
    from utils.ui import live_rate

    now = utc_now()
    steady = WorkerSnapshot(running=True, latest_at=now - timedelta(seconds=0.1), frames_seen=50, achieved_fps=4.9)
    assert live_rate(steady, 5.0, now) == (4.9, None)
    slow = WorkerSnapshot(running=True, latest_at=now, frames_seen=50, achieved_fps=3.4)
    rate, warning = live_rate(slow, 5.0, now)
    assert rate == 3.4 and "3.4 of 5 frames/s" in warning and "TRANSMISSION_TYPE=None" in warning
    silent = WorkerSnapshot(running=True, latest_at=now - timedelta(seconds=5), frames_seen=50, achieved_fps=4.9)
    assert live_rate(silent, 5.0, now) == (0.0, None)  # the camera is gone: 0, not the last rate
    starting = WorkerSnapshot(running=True, latest_at=now, frames_seen=3, achieved_fps=1.0)
    assert live_rate(starting, 5.0, now) == (1.0, None)  # too early to judge


def test_after_close_order_the_sidebar_shows_no_old_camera_error(env, monkeypatch):
    from utils.ui import sidebar_error

    monkeypatch.setenv("CAMERA_ADDRESS", "http://127.0.0.1:9")  # nothing listens: every grab fails
    monkeypatch.setenv("CAMERA_TIMEOUT", "0.5")
    at = start(app(), "ERR-1")
    wait_for(lambda: worker().snapshot().last_error is not None, timeout=30, what="a camera error")
    assert "cannot reach the camera adapter" in sidebar_error(worker().snapshot())  # shown while it runs
    at.button(key="button_close").click().run()
    closed = worker().snapshot()
    assert not closed.running and closed.last_error is not None and sidebar_error(closed) is None


def test_the_camera_preview_shows_frames_and_saves_nothing(env):
    from utils.storage import Store

    at = app()
    at.toggle(key="camera_preview").set_value(True).run()
    captions = [img.caption for e in at.get("image") for img in e.proto.imgs]
    assert "Camera preview — nothing is saved" in captions
    assert Store(env).list_orders() == [] and not worker().snapshot().running  # no order, no row, no file
    assert not [p for p in env.rglob("*.jpg")]


def test_the_camera_preview_says_why_there_is_no_image(env, monkeypatch):
    monkeypatch.setenv("CAMERA_ADDRESS", "http://127.0.0.1:9")
    monkeypatch.setenv("CAMERA_TIMEOUT", "0.5")
    at = app()
    at.toggle(key="camera_preview").set_value(True).run()
    assert any("Camera preview" in w.value and "cannot reach the camera adapter" in w.value for w in at.warning)


def test_a_scanner_starts_the_order_and_a_next_scan_closes_it_and_starts_the_next(env, monkeypatch):
    monkeypatch.setenv("START_ON_ENTER", "true")
    monkeypatch.setenv("SCAN_CLOSES_RUNNING", "true")
    at = app()
    at.text_input(key="order_number").input("SCAN-1").run()  # the scanner types the number and Enter
    assert worker().snapshot().running and worker().snapshot().order.order_number == "SCAN-1"
    wait_for(lambda: worker().snapshot().frames_seen > 0, timeout=30, what="frames of SCAN-1")
    at.run()
    at.text_input(key="next_order").input("SCAN-2").run()
    now = worker().snapshot()
    assert now.running and now.order.order_number == "SCAN-2"
    from utils.storage import Store

    closed = [o for o in Store(env).list_orders() if o.order_number == "SCAN-1"]
    assert closed and closed[0].status == "closed"
    said = [m.value for m in [*at.info, *at.success]]
    assert any("SCAN-1" in m and "closed" in m and "SCAN-2" in m and "started" in m for m in said), said
    at.text_input(key="next_order").input("../etc").run()  # a misread code: said, and the order goes on
    assert any("The running order goes on" in w.value for w in at.warning)
    assert worker().snapshot().running and worker().snapshot().order.order_number == "SCAN-2"
    at.button(key="button_close").click().run()


def test_without_start_on_enter_enter_starts_nothing(env):
    at = app()
    at.text_input(key="order_number").input("TYPED-1").run()
    assert not worker().snapshot().running  # Start is pressed by hand
