"""The central view: the Archive and Archive statistics pages (AppTest, in APP_MODE=central and on a station), and
the ZIP of an order spread over stations, on a real central database and object store filled by real syncs."""

from __future__ import annotations

import io
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

import ImageProcessingThread
from tests.conftest import ROOT, wait_for
from tests.test_archive_sync import capture, drain, md5, station_store
from utils.archive.central import CentralArchive
from utils.archive.indexer import index_once
from utils.archive.objects import open_object_store
from utils.archive.sync import Syncer
from utils.archive.view import archived_orders, order_zip_chunks
from utils.auth import User
from utils.image_stats import compute_stats
from utils.navigation import pages_for

APP = str(ROOT / "app.py")


@pytest.fixture()
def filled(app_env, tmp_path, monkeypatch):
    """Two stations that captured the same order number (2 and 3 images) and one more order, all synced."""
    url, storage = f"sqlite:///{tmp_path / 'central.sqlite3'}", str(tmp_path / "objects")
    stores = {}
    for name, orders in (("pack-1", [("ORD-1", 2, 0)]), ("pack-2", [("ORD-1", 3, 10), ("ORD-2", 1, 20)])):
        store = stores[name] = station_store(tmp_path, name)
        for number, n, start in orders:
            capture(store, number, n, start)
        drain(Syncer(store, archive=lambda: CentralArchive(url), objects=lambda: open_object_store(storage),
                     station=name))
    monkeypatch.setenv("CENTRAL_DATABASE_URL", url)
    monkeypatch.setenv("STORAGE_URL", storage)
    return url, storage, stores


def run_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_the_central_view_shows_every_station_and_no_camera(filled, monkeypatch):
    monkeypatch.setenv("APP_MODE", "central")
    admin = User("anna", "admin")
    assert [p.url_path for p in pages_for(admin, "central")] == ["archive", "archive-statistics"]
    assert [p.url_path for p in pages_for(User("ole", "operator"), "central")] == ["archive"]
    at = run_page("pages/archive.py")
    assert not ImageProcessingThread._workers  # no capture engine in the central view
    picked = at.selectbox(key="archive_order")
    choices = {label.split(" — ")[0]: label for label in picked.options}
    assert set(choices) == {"ORD-1", "ORD-2"}
    assert choices["ORD-1"] == "ORD-1 — 5 image(s) at pack-1, pack-2"
    picked.select(choices["ORD-1"]).run()
    captions = [img.caption for e in at.get("image") for img in e.proto.imgs]
    assert sorted(c.split(" · ")[0] for c in captions) == ["pack-1"] * 2 + ["pack-2"] * 3
    runs = at.dataframe[0].value
    assert sorted(runs["station"]) == ["pack-1", "pack-2"] and sorted(runs["images"]) == [2, 3]
    at.selectbox(key="archive_station").set_value("pack-1").run()
    captions = [img.caption for e in at.get("image") for img in e.proto.imgs]
    assert len(captions) == 2 and all(c.startswith("pack-1") for c in captions)
    at.button(key=at.button[0].key).click().run()  # open the first image: large, with its MD5
    assert any("MD5" in m.value and "pack-1" in m.value for m in at.markdown)


def test_archive_statistics_count_per_station_and_measure_the_files(filled, monkeypatch):
    url, storage, stores = filled
    monkeypatch.setenv("APP_MODE", "central")
    at = run_page("pages/archive_stats.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Stations"] == "2" and metrics["Orders"] == "2" and metrics["Images"] == "6"
    central, objects = CentralArchive(url), open_object_store(storage)
    # the central view's statistics thread measures every archived file, each once
    wait_for(lambda: all(r["brightness"] is not None for r in central.images_with_stats()), timeout=60,
             what="the archive's statistics computed by the central indexer")
    assert index_once(central, objects) == 0
    rows = {r["file_name"]: r for r in central.images_with_stats()}
    for name, store in stores.items():
        for o in store.list_orders():
            for rec in store.images(o.id):
                expected = compute_stats(rec.path.read_bytes()).as_row()
                got = rows[rec.file_name]
                assert got["dominant_hex"] == expected["dominant_hex"]
                assert got["brightness"] == pytest.approx(expected["brightness"])
    at.selectbox(key="archive_stats_station").set_value("pack-2").run()
    assert {m.label: m.value for m in at.metric}["Images"] == "4"
    assert any("4 of 4 images so far." in c.value for c in at.caption), [c.value for c in at.caption]
    assert len(at.get("plotly_chart")) == 5  # per day, per order, brightness, sharpness, colours


def test_an_unreadable_archived_file_gets_its_error_once(filled):
    url, storage, _ = filled
    central, objects = CentralArchive(url), open_object_store(storage)
    first = central.images(station="pack-1")[0]
    objects.delete(first["object_key"])
    assert index_once(central, objects) == 6
    errors = [r for r in central.images_with_stats() if r["stats_error"]]
    assert [r["id"] for r in errors] == [first["id"]] and first["object_key"] in errors[0]["stats_error"]
    assert index_once(central, objects) == 0  # not tried again


def test_a_station_without_an_archive_says_how_to_set_one(app_env):
    at = run_page("pages/archive.py")
    assert any("No central archive is set" in i.value and "CENTRAL_DATABASE_URL" in i.value for i in at.info)


def test_the_zip_of_an_order_spread_over_stations(filled):
    url, storage, stores = filled
    central, objects = CentralArchive(url), open_object_store(storage)
    (order,) = [o for o in archived_orders(central) if o.order_number == "ORD-1"]
    data = b"".join(order_zip_chunks(central, objects, order))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(n for n in zf.namelist() if n != "images.csv")
        expected = sorted(f"{name}/ORD-1/{rec.file_name}" for name, store in stores.items()
                          for o in store.list_orders() if o.order_number == "ORD-1" for rec in store.images(o.id))
        assert names == expected
        for name, store in stores.items():
            for o in store.list_orders():
                for rec in store.images(o.id):
                    if o.order_number == "ORD-1":
                        assert zf.read(f"{name}/ORD-1/{rec.file_name}") == rec.path.read_bytes()
        table = zf.read("images.csv").decode().splitlines()
        assert len(table) == 6 and table[0].startswith("station,order_number")
        assert all(md5(next(r.path for s in stores.values() for o in s.list_orders() for r in s.images(o.id)
                            if r.file_name == line.split(",")[3])) == line.split(",")[8] for line in table[1:])
