"""The Editor, Import, Gallery (versions, labels, keep) and Settings (trash, jobs) pages with AppTest on a real
store: what the page shows and what ends up in the database and on disk."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, shown
from tests.test_tools_background import iou, textured_scene
from utils.storage import Store, utc_now

APP = str(ROOT / "app.py")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def env(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("JOBS_ENABLED", "false")  # the pages, not the jobs (tested on their own)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "no-model"))
    return app_env


@pytest.fixture()
def station(env):
    """A closed order: the empty station, then two frames with the object (known mask)."""
    store = Store(env)
    frame, reference, truth = textured_scene(320, 240)
    order, _ = store.open_order("ED-1")
    store.save_image(order, png(reference), None, utc_now(), width=320, height=240, suffix=".png")
    item = store.save_image(order, png(frame), None, utc_now(), width=320, height=240, suffix=".png")
    store.save_image(order, png(frame.rotate(180)), None, utc_now(), width=320, height=240, suffix=".png")
    store.close_order(order.id)
    return store, order, item, truth


def editor(image_id: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/editor.py")
    if image_id is not None:
        at.session_state["editor_image"] = image_id
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [shown(e.value) for e in elements]


def captions(at: AppTest) -> list[str]:
    """The captions of the images on the page (grid thumbnails, previews)."""
    return [img.caption for e in at.get("image") for img in e.proto.imgs]


def test_editor_picks_an_image_previews_and_saves_a_version(station):
    store, order, item, _ = station
    at = editor()
    assert any("Choose an image" in t for t in texts(at.info))
    at.selectbox(key=f"editor_seq_{order.id}").set_value(item.seq).run()
    at.button(key="editor_pick").click().run()
    assert any(f"#{item.seq}" in m and "320 x 240 px" in m for m in texts(at.markdown))
    at.selectbox(key="editor_rotate").set_value(90).run()
    at.slider(key="editor_brightness").set_value(1.5).run()
    at.checkbox(key="editor_sepia").check().run()
    assert not at.exception
    assert "rotate 90°, adjust brightness 1.5, sepia" in captions(at)  # the preview beside "before"
    before = item.path.read_bytes()
    at.button(key="editor_save").click().run()
    assert any("Kept as version" in t for t in texts(at.success)), texts(at.error)
    (version,) = store.versions_of([item.id])[item.id]
    assert (version.width, version.height) == (240, 320)  # turned a quarter
    assert [op["op"] for op in version.operation["recipe"]] == ["rotate", "adjust", "sepia"]
    assert item.path.read_bytes() == before


def test_editor_batch_applies_the_recipe_to_every_image_of_the_order(station):
    store, order, item, _ = station
    at = editor(item.id)
    at.checkbox(key="editor_grey").check().run()
    at.button(key="editor_batch").click().run()
    assert any("3 version(s) made" in t for t in texts(at.success))
    versions = store.versions_of([r.id for r in store.images(order.id, kinds=("capture",))])
    assert sorted(len(v) for v in versions.values()) == [1, 1, 1]
    assert all(Image.open(v[0].path).mode == "L" for v in versions.values())


def test_editor_cuts_out_against_the_first_frame_and_stylizes(station):
    store, order, item, truth = station
    at = editor(item.id)
    assert at.radio(key="editor_bg_method").value == "reference"
    at.button(key="editor_bg_go").click().run()
    assert any("Kept as version" in t for t in texts(at.success)), texts(at.error)
    (cut,) = store.versions_of([item.id])[item.id]
    alpha = Image.open(cut.path).getchannel("A")
    assert iou(alpha, truth) >= 0.9 and cut.operation["reference_image_id"] == store.images(order.id)[0].id
    at.selectbox(key="editor_style").set_value("cartoon").run()
    at.button(key="editor_style_go").click().run()
    made = store.versions_of([item.id])[item.id]
    assert [v.operation["name"] for v in made] == ["background", "style-cartoon"]
    # the first frame itself has no empty station before it: the page proposes the rectangle instead
    at = editor(store.images(order.id)[0].id)
    assert at.radio(key="editor_bg_method").value == "grabcut"


def test_editor_says_why_labels_are_not_offered(station, tmp_path):
    import torch

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty-hub"))
    try:
        _, _, item, _ = station
        at = editor(item.id)
    finally:
        torch.hub.set_dir(old)
    (info,) = [t for t in texts(at.info) if "Labels are not offered" in t]
    assert "DESCRIPTOR_WEIGHTS_FILE" in info and "untrained" in info
    assert not any(b.key == "editor_label" for b in at.button)
    assert any("Object boxes are not offered" in t and "DETECTOR_WEIGHTS_FILE" in t for t in texts(at.caption))
    assert not any(b.key == "editor_detect" for b in at.button)


def test_editor_finds_objects_with_the_detector_weights_and_keeps_the_boxes(station, tmp_path, monkeypatch):
    import torch
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    torch.manual_seed(11)
    weights = tmp_path / "ssdlite.pth"
    torch.save(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict(), weights)
    monkeypatch.setenv("DETECTOR_WEIGHTS_FILE", str(weights))
    store, _, item, _ = station
    at = editor(item.id)
    assert any(str(weights) in t for t in texts(at.caption))  # which detector runs
    at.button(key="editor_detect").click().run()  # untrained: every score ~1 %, none at the 50 % default
    assert any("No object scores 50% or more" in t for t in texts(at.info)), texts(at.error)
    assert "0 object(s)" in captions(at) and store.versions_of([item.id]) == {}
    at.slider(key="editor_det_score").set_value(0.05).run()
    at.checkbox(key="editor_det_save").check().run()
    at.button(key="editor_detect").click().run()
    assert any("No object scores 5% or more" in t and "Nothing was kept" in t for t in texts(at.info))
    assert store.versions_of([item.id]) == {} and not at.success  # no copy of an image without boxes


def test_gallery_shows_versions_beside_their_source_searches_labels_and_keeps(station):
    store, order, item, _ = station
    first = store.images(order.id)[0]
    version = store.save_image(order, png(Image.new("RGB", (40, 30), "red")), None, utc_now(), width=40, height=30,
                               suffix=".png", kind="version", source=item, operation={"name": "crop"}, tool="Pillow")
    store.set_labels(item.id, [("carton", 0.7)], "m")
    store.set_labels(first.id, [("table", 0.9)], "m")
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/gallery.py").run()
    assert not at.exception
    grid = captions(at)
    at_source = grid.index(next(c for c in grid if c.startswith(f"#{item.seq} ")))
    assert grid[at_source + 1] == f"#{version.seq} · version of #{item.seq} · crop"  # right after its source
    assert grid[at_source].endswith("· carton 70%")
    at.text_input(key=f"gallery_labels_{order.id}").input("carto").run()
    assert any("1 of 1 matching the label search" in t for t in texts(at.caption))
    at.text_input(key=f"gallery_labels_{order.id}").input("nothing").run()
    assert any("No image matches the label search" in t for t in texts(at.info))
    at.text_input(key=f"gallery_labels_{order.id}").input("").run()
    at.toggle(key=f"gallery_keep_{order.id}").set_value(True).run()
    assert store.get_order(order.id).keep
    # deleting the source (the large image chosen on the slider) takes its version to the trash with it
    slider = next(s for s in at.select_slider if s.key.startswith("gallery_image_"))
    slider.set_value(next(r for r in store.images(order.id) if r.id == item.id)).run()
    at.button(key="gallery_delete").click().run()
    assert any("Its 1 version(s) go with it" in t for t in texts(at.warning))
    at.button(key="gallery_delete_yes").click().run()
    kept = {r.id for r in store.images(order.id)}
    assert item.id not in kept and version.id not in kept
    assert (order.folder / "trash" / version.file_name).is_file()


def test_import_page_finds_picks_and_imports(env, monkeypatch):
    from tests.test_web_import import PageServer

    monkeypatch.setenv("URL_ALLOW_PRIVATE", "true")
    site = PageServer()
    try:
        at = AppTest.from_file(APP, default_timeout=90).run()
        at.switch_page("pages/web_import.py").run()
        at.text_input(key="import_url").input(site.url("/js.html"))
        at.button[0].click().run()  # the form's submit button
        assert any("no images found in the page's HTML" in t for t in texts(at.info))
        at.text_input(key="import_url").input(site.url("/site/page.html"))
        at.button[0].click().run()
        assert not at.exception, at.exception
        boxes = [c for c in at.checkbox if c.key.startswith("import_pick_")]
        assert len(boxes) >= 5 and all(c.value for c in boxes)
        boxes[0].uncheck().run()
        at.text_input(key="import_collection").input("catalogue").run()
        at.button(key="import_go").click().run()
        assert any(f"{len(boxes) - 1} image(s) imported into **catalogue**" in t for t in texts(at.success))
        (col,) = Store(env).list_orders(kind="import")
        assert col.n_images == len(boxes) - 1
        assert not list((env / ".capture" / "import-staging").iterdir())  # the staged copies are gone
    finally:
        site.close()


def test_settings_page_restores_an_order_from_the_trash_and_queues_a_job(station):
    store, order, _, _ = station
    store.trash_order(order.id)
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    assert any("Orders in the trash (1)" in t for t in texts(at.subheader))
    at.button(key=f"restore_order_{order.id}").click().run()
    assert store.get_order(order.id).trashed_at is None and store.get_order(order.id).folder.is_dir()
    at.selectbox(key="run_job_pick").set_value("retention").run()
    at.button(key="run_job_now").click().run()
    row = store.job_rows()["retention"]
    assert row["next_run"] is not None and row["next_run"] <= utc_now()
    jobs = at.dataframe[0].value
    assert list(jobs["job"]) == ["Statistics backfill", "Labels for new images", "Trash clean-up",
                                 "Nightly analytics snapshot", "Retention"]
    assert np.all(jobs["state"] == "not run yet")
