"""Schema version 2: versions beside their source, import collections, labels, the trash with its clean-up,
whole orders moved to the trash by retention, the *keep* mark, the jobs lease, and the upgrade of a version-1
database made here with the version-1 schema."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from datetime import timedelta

import cv2
import numpy as np
import pytest

from utils.exports import order_images_csv, order_zip_entries
from utils.storage import SCHEMA_VERSION, Store, utc_now


def jpeg(value: int = 128, size: tuple[int, int] = (48, 64)) -> bytes:
    img = np.full((*size, 3), value, np.uint8)
    img[: size[0] // 2] = 255 - value
    return cv2.imencode(".jpg", img)[1].tobytes()


def png(value: int = 50) -> bytes:
    img = np.zeros((32, 32, 4), np.uint8)
    img[8:24, 8:24] = (value, 0, 0, 255)
    return cv2.imencode(".png", img)[1].tobytes()


def order_with_images(store: Store, n: int = 3, number: str = "A1"):
    order, _ = store.open_order(number)
    recs = [store.save_image(order, jpeg(40 * i), np.ones(4, np.float32) * i, utc_now(), width=64, height=48)
            for i in range(n)]
    return order, recs


def test_a_version_is_a_new_file_linked_to_its_source_and_the_original_is_untouched(store):
    order, (a, b, _) = order_with_images(store)
    before = a.path.read_bytes()
    op = {"name": "crop+rotate", "steps": [{"op": "crop", "box": [0, 0, 10, 10]}, {"op": "rotate", "angle": 90}]}
    v = store.save_image(order, png(), None, utc_now(), width=32, height=32, suffix=".png", kind="version",
                         source=a, operation=op, tool="opencv 5")
    assert a.path.read_bytes() == before
    assert v.path.is_file() and v.path.read_bytes() == png()
    assert v.file_name == f"{v.seq:05d}_v{a.seq:05d}_crop-rotate.png"
    got = store.get_image(v.id)
    assert (got.kind, got.source_image_id, got.operation, got.tool) == ("version", a.id, op, "opencv 5")
    assert store.versions_of([a.id, b.id]) == {a.id: [got]}
    # an order counts and pages its own images; versions come with them
    assert store.count_images(order.id) == 3 and store.get_order(order.id).n_images == 3
    assert [r.id for r in store.images(order.id, kinds=("capture",))] == [r.id for r in (a, b, _)]
    assert v.id in {r.id for r in store.images(order.id)}
    assert store.image_position(order.id, v.seq) is None
    # feature comparisons (capture, re-filter) never see a version
    assert v.id not in [i for i, *_ in store.feature_records(order.id)]
    # downloads: in the ZIP and in its CSV with the source and the operation
    assert (f"{order.folder.name}/{v.file_name}", v.path) in order_zip_entries(store, order)
    csv_text = order_images_csv(store, order)
    row = next(line for line in csv_text.splitlines() if v.file_name in line)
    assert f",version,{a.seq}," in row and "crop" in row and "opencv 5" in row


def test_a_version_needs_its_source_in_the_same_order(store):
    order, (a, *_) = order_with_images(store)
    other, _ = store.open_order("B2")
    with pytest.raises(ValueError, match="source"):
        store.save_image(order, png(), None, utc_now(), kind="version", operation={"name": "x"})
    with pytest.raises(ValueError, match="order of its source"):
        store.save_image(other, png(), None, utc_now(), kind="version", source=a, operation={"name": "x"})


def test_trashing_a_source_takes_its_versions_and_restoring_brings_them_back(store):
    order, (a, b, _) = order_with_images(store)
    v1 = store.save_image(order, png(1), None, utc_now(), suffix=".png", kind="version", source=a,
                          operation={"name": "sepia"}, tool="opencv")
    v2 = store.save_image(order, png(2), None, utc_now(), suffix=".png", kind="version", source=a,
                          operation={"name": "blur"}, tool="opencv")
    assert store.trash_images(order.id, [v2.id]) == 1  # a version alone
    assert store.trash_images(order.id, [a.id]) == 1
    trashed = {r.id: r for r in store.images(order.id, include_trashed=True) if r.state == "trashed"}
    assert set(trashed) == {a.id, v1.id, v2.id}
    assert all(r.path.parent.name == "trash" and r.path.is_file() for r in trashed.values())
    assert store.restore_images(order.id, [a.id]) == 1
    kept = {r.id for r in store.images(order.id)}
    assert {a.id, v1.id} <= kept and v2.id not in kept  # v2 went to the trash on its own, it stays there
    assert store.get_image(v1.id).path.parent == order.folder


def test_trash_clean_up_removes_only_what_is_old_enough(store):
    order, (a, b, c) = order_with_images(store)
    store.set_labels(a.id, [("tabby", 0.8)], "m")
    store.trash_images(order.id, [a.id, b.id])
    assert store.purge_trash(utc_now() - timedelta(days=1)) == (0, 0)  # trashed just now: not yet
    paths = [store.get_image(i).path for i in (a.id, b.id)]
    assert all(p.is_file() for p in paths)
    assert store.purge_trash(utc_now() + timedelta(seconds=1)) == (2, 0)
    assert not any(p.exists() for p in paths)
    with pytest.raises(KeyError):
        store.get_image(a.id)
    assert store.labels_of([a.id]) == {}
    assert [r.id for r in store.images(order.id, include_trashed=True)] == [c.id]


def test_a_whole_order_goes_to_the_trash_and_back_or_for_good(store):
    order, recs = order_with_images(store)
    with pytest.raises(Exception, match="running"):
        store.trash_order(order.id)  # still open
    store.close_order(order.id)
    store.set_order_keep(order.id, True)
    with pytest.raises(Exception, match="keep"):
        store.trash_order(order.id)
    store.set_order_keep(order.id, False)
    t = store.trash_order(order.id)
    assert t.trashed_at is not None and t.folder.parent == store.trash_dir and t.folder.is_dir()
    assert not (store.export_dir / order.folder.name).exists()
    assert order.id not in [o.id for o in store.list_orders()]
    assert store.get_image(recs[0].id).path.is_file()  # still readable in the trash
    back = store.restore_order(order.id)
    assert back.folder == store.export_dir / order.folder.name and back.folder.is_dir()
    assert [r.id for r in store.images(order.id)] == [r.id for r in recs]
    store.trash_order(order.id)
    assert store.purge_trash(utc_now() - timedelta(days=1)) == (0, 0)
    assert store.purge_trash(utc_now() + timedelta(seconds=1)) == (0, 1)
    assert not (store.trash_dir / order.folder.name).exists()
    with pytest.raises(KeyError):
        store.get_order(order.id)


def test_an_import_collection_is_one_closed_folder_that_takes_every_later_import(store):
    col, resumed = store.open_order("web-finds", kind="import")
    assert (col.kind, col.status, resumed) == ("import", "closed", False)
    rec = store.save_image(col, jpeg(), None, utc_now(), kind="import", source_url="https://example.com/a.jpg")
    again, resumed = store.open_order("web-finds", kind="import")
    assert (again.id, resumed) == (col.id, True)
    assert store.get_image(rec.id).source_url == "https://example.com/a.jpg"
    capture, _ = store.open_order("web-finds")  # an order of the same number is a different thing
    assert capture.id != col.id and capture.kind == "capture"
    assert [o.id for o in store.list_orders(kind="import")] == [col.id]


def test_labels_are_stored_searchable_and_counted(store):
    order, (a, b, c) = order_with_images(store)
    store.set_labels(a.id, [("tabby cat", 0.7), ("tiger_cat", 0.2)], "mobilenet_v3_small")
    store.set_labels(b.id, [("carton", 0.9), ("tabby cat", 0.05)], "mobilenet_v3_small")
    assert store.labels_of([a.id])[a.id][0] == ("tabby cat", pytest.approx(0.7), "mobilenet_v3_small")
    assert store.search_labels(order.id, "TABBY", top=1) == {a.id}
    assert store.search_labels(order.id, "tabby") == {a.id, b.id}
    assert store.search_labels(order.id, "_") == {a.id}  # literal underscore, not LIKE's wildcard
    assert store.label_counts([order.id]) == [("carton", 1), ("tabby cat", 1)]
    assert [r.id for r in store.unlabelled_images()] == [c.id]
    store.set_labels(a.id, [("box", 0.5)], "m2")  # replaced, not added
    assert store.labels_of([a.id]) == {a.id: [("box", 0.5, "m2")]}


def test_the_lease_is_held_by_one_holder_until_it_expires_or_is_released(store):
    assert store.acquire_lease("jobs", "p1", ttl_s=60, now=1000)
    assert not store.acquire_lease("jobs", "p2", ttl_s=60, now=1030)
    assert store.acquire_lease("jobs", "p1", ttl_s=60, now=1050)  # renewal
    assert store.lease_holder("jobs") == ("p1", 1110)
    assert store.acquire_lease("jobs", "p2", ttl_s=60, now=1111)  # p1 stopped renewing
    store.release_lease("jobs", "p1")  # not p1's any more: nothing happens
    assert store.lease_holder("jobs")[0] == "p2"
    store.release_lease("jobs", "p2")
    assert store.lease_holder("jobs") is None


def test_the_lease_is_refused_while_another_process_holds_it(store):
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent.parent)!r})
        from utils.storage import Store
        s = Store({str(store.export_dir)!r})
        assert s.acquire_lease("jobs", "other-process", ttl_s=60)
        print("held", flush=True)
        sys.stdin.readline()
        s.release_lease("jobs", "other-process")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert not store.acquire_lease("jobs", "me", ttl_s=60)
        assert store.lease_holder("jobs")[0] == "other-process"
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(30)
        assert store.acquire_lease("jobs", "me", ttl_s=60)
    finally:
        proc.kill()


V1_SCHEMA = """
CREATE TABLE orders (id INTEGER PRIMARY KEY, order_number TEXT NOT NULL, folder TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('open', 'closed')), started_at TEXT NOT NULL,
    closed_at TEXT, threshold REAL, images_per_second REAL, resolution INTEGER, camera TEXT, descriptor TEXT,
    video_file TEXT, video_frames INTEGER, video_fps REAL);
CREATE INDEX orders_number ON orders(order_number);
CREATE TABLE images (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), seq INTEGER NOT NULL,
    file_name TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'ok', 'trashed')),
    captured_at TEXT NOT NULL, width INTEGER, height INTEGER, size_bytes INTEGER, distance REAL,
    forced INTEGER NOT NULL DEFAULT 0, camera TEXT, features BLOB, UNIQUE (order_id, seq),
    UNIQUE (order_id, file_name));
CREATE INDEX images_order ON images(order_id, state);
"""


def make_version_1_database(export: Path) -> Path:
    """An export folder with the database as the version-1 schema left it: one closed order, one kept image and one
    in the trash; returns the database file."""
    (export / ".capture").mkdir(parents=True)
    (export / "OLD-1").mkdir()
    (export / "OLD-1" / "trash").mkdir()
    (export / "OLD-1" / "00001_a.jpg").write_bytes(jpeg(10))
    (export / "OLD-1" / "trash" / "00002_b.jpg").write_bytes(jpeg(20))
    db = export / ".capture" / "capture.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(V1_SCHEMA)
    con.execute("INSERT INTO orders VALUES (1, 'OLD-1', 'OLD-1', 'distinct images', 'closed', "
                "'2025-01-02T03:04:05.000000+00:00', '2025-01-02T04:00:00.000000+00:00', 0.3, 5, 1024, 'cam', "
                "'mobilenet', NULL, NULL, NULL)")
    con.execute("INSERT INTO images VALUES (1, 1, 1, '00001_a.jpg', 'ok', '2025-01-02T03:04:06.000000+00:00', "
                "64, 48, 900, NULL, 0, 'cam', NULL)")
    con.execute("INSERT INTO images VALUES (2, 1, 2, '00002_b.jpg', 'trashed', "
                "'2025-01-02T03:04:07.000000+00:00', 64, 48, 900, 0.5, 0, 'cam', NULL)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    return db


def test_a_version_1_database_is_upgraded_in_place_and_keeps_everything(tmp_path):
    export = tmp_path / "export"
    db = make_version_1_database(export)
    store = Store(export)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (order,) = store.list_orders()
    assert (order.order_number, order.kind, order.keep, order.trashed_at, order.n_images) == ("OLD-1", "capture",
                                                                                               False, None, 1)
    old = store.get_image(1)
    assert (old.kind, old.source_image_id, old.operation) == ("capture", None, None)
    assert old.path.read_bytes() == jpeg(10)
    # an image in the trash before the upgrade gets its days in the trash from now: not purged at once
    assert store.get_image(2).trashed_at is not None
    assert store.purge_trash(utc_now() - timedelta(minutes=5)) == (0, 0)
    # the new tables work on the upgraded file; opening again changes nothing
    store.save_image(order, png(), None, utc_now(), suffix=".png", kind="version", source=old,
                     operation={"name": "edges"}, tool="opencv")
    store.set_labels(1, [("carton", 0.5)], "m")
    Store(export)
    assert len(store.images(order.id)) == 2


def test_an_older_database_gets_the_station_name_and_its_rows_are_queued_for_the_archive_once(tmp_path):
    export = tmp_path / "export"
    make_version_1_database(export)
    Store(export).close()  # upgraded without a station (a station on its own)
    store = Store(export, station="pack-3", outbox=True)
    (order,) = store.list_orders()
    assert order.station == "pack-3" and {store.get_image(i).station for i in (1, 2)} == {"pack-3"}
    assert store.outbox_backlog().images == 0  # nothing recorded before the archive was set up ...
    assert store.outbox_backfill() == 3  # ... until the sync catches up: the order, the kept and the trashed image
    assert store.outbox_backfill() == 0  # queued once
    assert store.outbox_backlog().images == 2 and store.outbox_backlog().orders == 1
    new, _ = store.open_order("NEW-1")
    assert new.station == "pack-3" and store.outbox_backlog().orders == 2


def test_schema_upgrade_is_safe_with_two_processes_opening_at_once(tmp_path):
    export = tmp_path / "export"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent.parent)!r})
        from utils.storage import Store
        Store({str(export)!r})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert sqlite3.connect(export / ".capture" / "capture.sqlite3").execute(
        "PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
