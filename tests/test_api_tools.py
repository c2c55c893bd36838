"""The image tools, web import and job status over the HTTP API: a real uvicorn server on loopback, a real store,
a real page server, real images with known answers."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

import api
from tests.conftest import wait_for
from tests.test_api import TOKEN, serve, settings_for
from tests.test_tools_background import iou, textured_scene
from tests.test_web_import import PageServer
from utils.storage import Store, utc_now


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def station(tmp_path, monkeypatch):
    """An order whose first frame is the empty station and whose second frame holds an object (known mask)."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "no-model"))  # the reference method, whatever is installed
    store = Store(tmp_path / "export")
    frame, reference, truth = textured_scene(320, 240)
    order, _ = store.open_order("TOOLS-1")
    empty = store.save_image(order, png_bytes(reference), None, utc_now(), width=320, height=240, suffix=".png")
    item = store.save_image(order, png_bytes(frame), None, utc_now(), width=320, height=240, suffix=".png")
    store.close_order(order.id)
    return store, empty, item, truth


@contextlib.contextmanager
def empty_hub(tmp_path: Path) -> Iterator[None]:
    """An empty torch hub cache (torchvision's pretrained weights absent) for the block."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty-hub"))
    try:
        yield
    finally:
        torch.hub.set_dir(old)


def get_image(base: str, url: str) -> Image.Image:
    r = requests.get(base + url, timeout=10)
    assert r.status_code == 200
    return Image.open(io.BytesIO(r.content))


def test_a_recipe_makes_a_version_with_the_known_size_and_the_original_stays(station):
    store, _, item, _ = station
    before = item.path.read_bytes()
    with serve(api.create_app(settings_for(store.export_dir))) as (base, _):
        recipe = [{"op": "crop", "box": [10, 20, 90, 80]}, {"op": "rotate", "degrees": 90}, {"op": "greyscale"}]
        r = requests.post(f"{base}/images/{item.id}/versions", json={"recipe": recipe}, timeout=30)
        assert r.status_code == 201, r.text
        v = r.json()
        assert (v["kind"], v["source_image_id"], v["width"], v["height"]) == ("version", item.id, 60, 80)
        assert v["operation"]["recipe"][0] == {"op": "crop", "box": [10, 20, 90, 80]}
        assert "crop 80x60 at (10,20)" in v["operation"]["description"] and "Pillow" in v["tool"]
        img = get_image(base, v["file_url"])
        assert img.size == (60, 80) and img.mode == "L"
        listed = requests.get(f"{base}/images/{item.id}/versions", timeout=10).json()
        assert [x["id"] for x in listed] == [v["id"]]
        order = requests.get(f"{base}/orders/{item.order_id}", timeout=10).json()
        assert order["n_images"] == 2  # versions are not counted as the order's own images
    assert item.path.read_bytes() == before


def test_bad_requests_say_what_to_fix(station):
    store, empty, item, _ = station
    s = settings_for(store.export_dir, TOOLS_MAX_PIXELS=1_000_000)
    with serve(api.create_app(s)) as (base, _):
        post = lambda path, body: requests.post(base + path, json=body, timeout=30)  # noqa: E731
        r = post(f"/images/{item.id}/versions", {"recipe": [{"op": "rotate"}]})
        assert r.status_code == 422 and "rotate" in r.json()["detail"] and "degrees" in r.json()["detail"]
        r = post(f"/images/{item.id}/versions", {"recipe": []})
        assert r.status_code == 422 and "empty" in r.json()["detail"]
        r = post(f"/images/{item.id}/versions", {"recipe": [{"op": "resize", "scale": 8}]})
        assert r.status_code == 413 and "TOOLS_MAX_PIXELS" in r.json()["detail"]
        assert post("/images/999/versions", {"recipe": [{"op": "sepia"}]}).status_code == 404
        r = post(f"/images/{item.id}/style", {"neural": True})
        assert r.status_code == 422 and "STYLE_MODEL_FILE" in r.json()["detail"]
        r = post(f"/images/{item.id}/style", {"preset": "no-such"})
        assert r.status_code == 422 and "cartoon" in r.json()["detail"]
        r = post(f"/images/{empty.id}/background", {"method": "reference"})
        assert r.status_code == 422 and "first frame" in r.json()["detail"]
        r = requests.post(f"{base}/images/{item.id}/versions", data=b"{" + b" " * 70_000 + b"}",
                          headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 413
        store.trash_images(item.order_id, [item.id])
        r = post(f"/images/{item.id}/versions", {"recipe": [{"op": "sepia"}]})
        assert r.status_code == 409 and "trash" in r.json()["detail"]
    assert store.versions_of([item.id]) == {}  # nothing half-made


def test_background_against_the_first_frame_matches_the_object(station):
    store, empty, item, truth = station
    with serve(api.create_app(settings_for(store.export_dir))) as (base, _):
        r = requests.post(f"{base}/images/{item.id}/background", json={}, timeout=60)
        assert r.status_code == 201, r.text
        v = r.json()
        assert v["operation"]["reference_image_id"] == empty.id and "reference difference" in v["tool"]
        cut = get_image(base, v["file_url"])
        assert cut.mode == "RGBA" and v["file_name"].endswith(".png")
        assert iou(cut.getchannel("A"), truth) >= 0.9
        r = requests.post(f"{base}/images/{item.id}/background",
                          json={"method": "grabcut", "rect": [60, 30, 280, 210], "output": "colour",
                                "colour": "#00ff00"}, timeout=60)
        assert r.status_code == 201, r.text
        green = np.asarray(get_image(base, r.json()["file_url"]).convert("RGB"))
        near = (np.abs(green[~truth].astype(int) - [0, 255, 0]) <= 12).all(axis=-1)  # JPEG: close, not exact
        assert near.mean() > 0.9  # the background is the colour asked for


def test_style_preset_makes_a_version(station):
    store, _, item, _ = station
    with serve(api.create_app(settings_for(store.export_dir))) as (base, _):
        r = requests.post(f"{base}/images/{item.id}/style", json={"preset": "pencil_grey"}, timeout=60)
        assert r.status_code == 201, r.text
        v = r.json()
        assert v["operation"]["recipe"] == [{"op": "style", "preset": "pencil_grey"}] and "OpenCV" in v["tool"]
        assert get_image(base, v["file_url"]).size == (320, 240)


def test_labels_need_pretrained_weights_and_are_stored(station, tmp_path):
    from tests.test_labels import _seeded_mobilenet

    store, _, item, _ = station
    with empty_hub(tmp_path), serve(api.create_app(settings_for(store.export_dir, DESCRIPTOR_DOWNLOAD="false"))) \
            as (base, _):
        r = requests.post(f"{base}/images/{item.id}/labels", timeout=30)
        assert r.status_code == 503 and "DESCRIPTOR_WEIGHTS_FILE" in r.json()["detail"]
        assert requests.get(f"{base}/images/{item.id}/labels", timeout=10).json() == []
    weights = tmp_path / "mobilenet.pth"
    torch.save(_seeded_mobilenet().state_dict(), weights)
    s = settings_for(store.export_dir, DESCRIPTOR_WEIGHTS_FILE=str(weights), DESCRIPTOR_DOWNLOAD="false")
    with serve(api.create_app(s)) as (base, _):
        made = requests.post(f"{base}/images/{item.id}/labels", timeout=60).json()
        assert len(made) == 5 and all(str(weights) in x["model"] for x in made)
        assert [x["score"] for x in made] == sorted((x["score"] for x in made), reverse=True)
        assert requests.get(f"{base}/images/{item.id}/labels", timeout=10).json() == made


def test_objects_need_detector_weights_and_a_saved_version_lists_its_boxes(station, tmp_path):
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    store, _, item, _ = station
    with empty_hub(tmp_path), serve(api.create_app(settings_for(store.export_dir, DESCRIPTOR_DOWNLOAD="false"))) \
            as (base, _):
        r = requests.post(f"{base}/images/{item.id}/objects", json={}, timeout=30)
        assert r.status_code == 503 and "DETECTOR_WEIGHTS_FILE" in r.json()["detail"]
    torch.manual_seed(11)
    weights = tmp_path / "ssdlite.pth"
    torch.save(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict(), weights)
    s = settings_for(store.export_dir, DETECTOR_WEIGHTS_FILE=str(weights), DESCRIPTOR_DOWNLOAD="false")
    with serve(api.create_app(s)) as (base, _):
        assert requests.post(f"{base}/images/{item.id}/objects", json={"min_score": 2}, timeout=10).status_code == 422
        seen = requests.post(f"{base}/images/{item.id}/objects", json={"min_score": 0.0}, timeout=60).json()
        assert str(weights) in seen["model"] and seen["version"] is None and seen["objects"]  # untrained: weak boxes
        for obj in seen["objects"]:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 <= x1 <= 320 and 0 <= y0 <= y1 <= 240 and 0 <= obj["score"] <= 1
        assert store.versions_of([item.id]) == {}  # looking keeps nothing
        top = max(o["score"] for o in seen["objects"])
        kept = requests.post(f"{base}/images/{item.id}/objects", json={"min_score": top, "save": True},
                             timeout=60).json()
        assert len(kept["objects"]) >= 1 and all(o["score"] >= top for o in kept["objects"])
        version = kept["version"]
        assert version["kind"] == "version" and version["source_image_id"] == item.id
        assert (version["width"], version["height"]) == (320, 240)
        listed = store.get_image(version["id"]).operation
        assert listed["name"] == "objects" and [o["name"] for o in listed["objects"]] == \
            [o["name"] for o in kept["objects"]]
        drawn = np.asarray(get_image(base, version["file_url"]).convert("RGB")).astype(int)
        before = np.asarray(Image.open(item.path).convert("RGB")).astype(int)
        assert (np.abs(drawn - before).sum(axis=2) > 60).any()  # the boxes are drawn on a copy
        assert np.array_equal(np.asarray(Image.open(item.path).convert("RGB")), before)  # the source is untouched


def test_boxes_are_drawn_on_their_edges_with_their_names():
    from utils.tools.labels import Detection
    from utils.tools.service import draw_detections

    img = Image.new("RGB", (400, 300), (40, 90, 40))
    drawn = np.asarray(draw_detections(img, [Detection("cup", 0.87, (100.0, 120.0, 300.0, 260.0))])).astype(int)
    orange = (np.abs(drawn - np.array([255, 64, 0])).sum(axis=2) < 30)
    assert orange[120:261, 100].all() and orange[120:261, 300].all() and orange[260, 100:301].all()
    assert not orange[125:255, 105:295].any()  # the inside stays the image
    assert orange[100:120, 100:130].mean() > 0.4  # the name's tag sits on the box's top edge, above it
    white = (drawn.min(axis=2) > 200)
    assert white[95:120, 100:200].any() and not white[125:, :].any()  # its white letters, nowhere else
    assert np.array_equal(np.asarray(img), np.full((300, 400, 3), (40, 90, 40), dtype=np.uint8))  # a copy


def test_import_a_page_into_a_collection_once(tmp_path):
    store = Store(tmp_path / "export")
    site = PageServer()
    try:
        with serve(api.create_app(settings_for(store.export_dir, URL_ALLOW_PRIVATE="true"))) as (base, _):
            body = {"url": site.url("/site/page.html"), "collection": "catalogue"}
            r = requests.post(f"{base}/imports", json=body, timeout=60)
            assert r.status_code == 201, r.text
            out = r.json()
            urls = {x["source_url"] for x in out["imported"]}
            assert site.url("/assets/og.png") in urls and site.url("/assets/big.png") in urls
            assert not any("/private/photo.jpg" == u.split(site.origin)[-1] for u in urls)  # robots.txt
            assert all(x["kind"] == "import" for x in out["imported"])
            (col,) = store.list_orders(kind="import")
            assert col.order_number == "catalogue" and col.n_images == len(out["imported"])
            one = out["imported"][0]
            img = get_image(base, one["file_url"])
            assert img.size == (one["width"], one["height"])
            again = requests.post(f"{base}/imports", json=body | {"select": [one["source_url"]]}, timeout=60).json()
            assert again["imported"] == [] and again["skipped"] == [{"url": one["source_url"],
                                                                     "reason": "already in the collection"}]
        with serve(api.create_app(settings_for(store.export_dir))) as (base, _):  # private addresses refused
            r = requests.post(f"{base}/imports", json=body, timeout=30)
            assert r.status_code == 403
            r = requests.post(f"{base}/imports", json=body | {"collection": "../x"}, timeout=30)
            assert r.status_code == 422 and "collection" in r.json()["detail"]
    finally:
        site.close()


def test_jobs_run_in_the_api_process_and_are_reported(tmp_path):
    store = Store(tmp_path / "export")
    s = settings_for(store.export_dir, JOBS_TICK_S="0.05", API_TOKEN=TOKEN, DESCRIPTOR_DOWNLOAD="false")
    app = api.create_app(s)
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        wait_for(lambda: server.started, timeout=20, what="uvicorn")
        assert requests.get(f"{base}/jobs", timeout=10).status_code == 401
        assert requests.post(f"{base}/images/1/versions", json={"recipe": []}, timeout=10).status_code == 401

        def all_ran() -> bool:
            jobs = requests.get(f"{base}/jobs", headers=auth, timeout=10).json()["jobs"]
            return all(j["runs"] >= 1 for j in jobs if j["name"] != "snapshot")
        wait_for(all_ran, timeout=60, what="every interval job ran once")
        out = requests.get(f"{base}/jobs", headers=auth, timeout=10).json()
        assert out["lease_holder"] is not None
        jobs = {j["name"]: j for j in out["jobs"]}
        assert set(jobs) == {"stats", "labels", "trash", "snapshot", "retention"}
        assert jobs["labels"]["result"].startswith("not run: no pretrained classifier")
        assert jobs["retention"]["error"] is None and jobs["snapshot"]["runs"] == 0
        assert jobs["snapshot"]["next_run"] is not None
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
    assert store.lease_holder("jobs") is None  # given back at shutdown
