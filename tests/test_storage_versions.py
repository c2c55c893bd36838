"""Schema version 2: versions beside their source, import collections, labels, the trash with its clean-up,
whole orders moved to the trash by retention, the *keep* mark, the jobs lease (on SQLite and on PostgreSQL: the
``store`` fixture here is ``store_factory``'s), and the upgrades: a version-1 and a version-3 SQLite file made here
with those versions' schema, the Alembic head on both back ends."""

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


@pytest.fixture()
def store(store_factory):
    return store_factory()


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


def test_the_lease_is_refused_while_another_process_holds_it(store, store_factory):
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent.parent)!r})
        from utils.storage import Store
        s = Store({str(store.export_dir)!r}, url={store_factory.url!r})
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
    """SQLite only (the versions before Alembic had no other database)."""
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
    """SQLite only (a version-1 file)."""
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
    """SQLite (PRAGMA user_version); PostgreSQL: test_a_new_postgresql_database_is_made_once_by_processes_at_once."""
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


# ----------------------------------------------------------------- Alembic: today's databases upgrade in place


# The statistics table as the indexer of version 3 made it (utils/stats_store.py then ran this at every connect).
V3_IMAGE_STATS = """CREATE TABLE IF NOT EXISTS image_stats (image_id INTEGER PRIMARY KEY, version INTEGER NOT NULL,
    computed_at TEXT NOT NULL, error TEXT, width INTEGER, height INTEGER, format TEXT, mode TEXT, file_size INTEGER,
    file_mtime TEXT, brightness REAL, contrast REAL, sharpness REAL, opaque_fraction REAL, avg_method TEXT, avg_r REAL,
    avg_g REAL, avg_b REAL, avg_hex TEXT, dom_r REAL, dom_g REAL, dom_b REAL, dominant_hex TEXT, exif_captured_at TEXT,
    gps_latitude REAL, gps_longitude REAL, gps_altitude REAL, exif_json TEXT)"""


def make_version_3_database(export: Path) -> Path:
    """An export folder with the database as schema version 3 (the last one before Alembic) made it, with raw sqlite3
    from that version's own text (``_SCHEMA`` and ``_MIGRATIONS``): a closed order with two kept images, one in the
    trash and a version; an open order; labels, a job, a lease, outbox rows done and waiting (the highest id deleted,
    as outbox_prune does, so that AUTOINCREMENT's counter is ahead of the rows). Returns the database file."""
    from utils.storage import _MIGRATIONS, _SCHEMA

    (export / ".capture").mkdir(parents=True)
    files = {"OLD-3": ["00001_a.jpg", "00002_b.jpg", "00004_v00001_crop.png"], "RUN-3": ["00001_r.jpg"]}
    for folder, names in files.items():
        (export / folder / "trash").mkdir(parents=True)
        for i, name in enumerate(names):
            (export / folder / name).write_bytes(jpeg(30 * i + 5))
    (export / "OLD-3" / "trash" / "00003_c.jpg").write_bytes(jpeg(99))
    db = export / ".capture" / "capture.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(_SCHEMA)
    for version in sorted(_MIGRATIONS):
        for statement in _MIGRATIONS[version]:
            con.execute(statement)
    con.execute("PRAGMA user_version = 3")
    t0 = "2026-03-04T05:06:07.000000+00:00"
    con.executemany(
        "INSERT INTO orders (id, order_number, folder, mode, status, started_at, closed_at, threshold, camera, kind, "
        "keep, station, synced_at) VALUES (?, ?, ?, 'distinct images', ?, ?, ?, 0.3, 'cam', 'capture', ?, 'pack-1', ?)",
        [(1, "OLD-3", "OLD-3", "closed", t0, t0, 1, t0), (2, "RUN-3", "RUN-3", "open", t0, None, 0, None)])
    con.executemany(
        "INSERT INTO images (id, order_id, seq, file_name, state, captured_at, width, height, size_bytes, distance, "
        "forced, camera, features, kind, source_image_id, operation, tool, trashed_at, station, synced_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 64, 48, 900, ?, ?, 'cam', ?, ?, ?, ?, ?, ?, 'pack-1', ?)",
        [(1, 1, 1, "00001_a.jpg", "ok", t0, 0.5, 0, np.arange(4, dtype=np.float32).tobytes(), "capture", None, None,
          None, None, t0),
         (2, 1, 2, "00002_b.jpg", "ok", t0, 0.7, 1, None, "capture", None, None, None, None, None),
         (3, 1, 3, "00003_c.jpg", "trashed", t0, None, 0, None, "capture", None, None, None, t0, None),
         (4, 1, 4, "00004_v00001_crop.png", "ok", t0, None, 0, None, "version", 1, '{"name": "crop"}', "opencv",
          None, None),
         (5, 2, 1, "00001_r.jpg", "ok", t0, 0.9, 0, None, "capture", None, None, None, None, None)])
    con.execute("INSERT INTO labels VALUES (1, 0, 'carton', 0.75, 'm')")
    con.execute("INSERT INTO jobs (name, last_started, result, runs) VALUES ('cleanup', ?, 'ok', 3)", (t0,))
    con.execute("INSERT INTO leases VALUES ('jobs', 'host:1', 1.5e9)")
    con.executemany("INSERT INTO outbox (entity, entity_id, created_at, attempts, done_at) VALUES (?, ?, ?, ?, ?)",
                    [("order", 1, t0, 1, t0), ("image", 2, t0, 2, None), ("image", 3, t0, 0, None),
                     ("image", 5, t0, 0, t0)])
    con.execute("DELETE FROM outbox WHERE id = 4")
    con.execute(V3_IMAGE_STATS)
    con.execute("INSERT INTO image_stats (image_id, version, computed_at, width, avg_method, avg_hex, exif_json) "
                "VALUES (1, 1, ?, 64, 'arithmetic', '#123456', '{}')", (t0,))
    con.commit()
    con.close()
    return db


def table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of the station's tables (read with plain sqlite3), and SQLite's AUTOINCREMENT counters."""
    con = sqlite3.connect(db)
    try:
        tables = ["orders", "images", "labels", "jobs", "leases", "outbox", "image_stats", "sqlite_sequence"]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    finally:
        con.close()


def alembic_state(db: Path) -> tuple[list[tuple], int]:
    """(rows of alembic_version, PRAGMA user_version) of a SQLite database."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT version_num FROM alembic_version").fetchall(), \
            con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def test_a_version_3_database_upgrades_in_place_at_start_and_ends_at_the_alembic_head(tmp_path):
    from utils.db.migrate import STATION_MIGRATIONS, head_revision

    export = tmp_path / "export"
    db = make_version_3_database(export)
    before = table_rows(db)
    store = Store(export, outbox=True)
    assert alembic_state(db) == ([(head_revision(STATION_MIGRATIONS),)], SCHEMA_VERSION)
    assert table_rows(db) == before  # nothing lost, nothing changed
    # the rows read as they did
    old, run = sorted(store.list_orders(), key=lambda o: o.id)
    assert (old.order_number, old.status, old.keep, old.station, old.n_images) == ("OLD-3", "closed", True, "pack-1", 2)
    assert [r.file_name for r in store.images(old.id)] == ["00001_a.jpg", "00002_b.jpg", "00004_v00001_crop.png"]
    assert store.get_image(3).path == export / "OLD-3" / "trash" / "00003_c.jpg" and store.get_image(3).path.is_file()
    assert store.get_image(4).operation == {"name": "crop"} and store.versions_of([1])[1][0].id == 4
    ids, feats, forced = store.features(old.id)
    assert ids == [1] and feats[0].tolist() == [0, 1, 2, 3]
    assert store.labels_of([1]) == {1: [("carton", 0.75, "m")]} and store.job_rows()["cleanup"]["runs"] == 3
    assert store.lease_holder("jobs") == ("host:1", 1.5e9)
    from utils.stats_store import stats_rows

    assert stats_rows(store, [1])[1]["avg_hex"] == "#123456"  # the indexer's table of version 3, kept as it was
    assert [(e.id, e.entity_id, e.attempts) for e in store.outbox_waiting()] == [(2, 2, 2), (3, 3, 0)]
    # a second start changes nothing
    store.close()
    Store(export).close()
    assert table_rows(db) == before
    # and it goes on where version 3 stopped: the open order resumes, ids continue (AUTOINCREMENT: after the deleted 4)
    again, resumed = store.open_order("RUN-3")
    assert resumed and again.id == run.id
    rec = store.save_image(again, jpeg(7), None, utc_now())
    assert (rec.id, rec.seq) == (6, 2)
    assert [e.id for e in store.outbox_waiting()][-2:] == [5, 6]


def test_an_old_database_is_upgraded_once_when_processes_open_it_at_once(tmp_path):
    """SQLite only: three processes start on a version-1 file; one upgrades it under the write lock, the others
    wait and find it done."""
    from utils.db.migrate import STATION_MIGRATIONS, head_revision

    export = tmp_path / "export"
    db = make_version_1_database(export)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from utils.storage import Store
        Store({str(export)!r})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert alembic_state(db) == ([(head_revision(STATION_MIGRATIONS),)], SCHEMA_VERSION)
    rows = table_rows(db)
    assert [r[:5] for r in rows["images"]] == [(1, 1, 1, "00001_a.jpg", "ok"), (2, 1, 2, "00002_b.jpg", "trashed")]
    assert len(rows["orders"]) == 1


@pytest.mark.parametrize("made_by", ["alembic", "version 1", "version 3", "alembic on postgresql"])
def test_the_database_has_the_tables_of_the_code_however_it_was_made(tmp_path, made_by, request):
    """The schema the Alembic revisions make (SQLite and PostgreSQL), and the one the raw steps of the older versions
    left, are the tables of ``utils.db.schema`` (SQLite: older versions declared their primary keys without NOT
    NULL, which SQLite allows; nothing else differs)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from utils.db.schema import metadata

    export = tmp_path / "export"
    {"version 1": make_version_1_database, "version 3": make_version_3_database}.get(made_by, Path)(export)
    url = request.getfixturevalue("postgres_url") if made_by.endswith("postgresql") else None
    store = Store(export, url=url)
    with store.engine.connect() as con:
        context = MigrationContext.configure(con, opts={"compare_type": True, "compare_server_default": True})
        diff = compare_metadata(context, metadata)
    store.close()
    flat = [d for group in diff for d in (group if isinstance(group, list) else [group])]
    legacy_keys = [d for d in flat if d[0] == "modify_nullable" and metadata.tables[d[2]].c[d[3]].primary_key]
    if made_by.startswith("alembic"):
        assert flat == []
    else:
        legacy = {"orders", "images", "outbox", "jobs", "leases"}
        legacy |= {"image_stats"} if made_by == "version 3" else set()
        assert flat == legacy_keys and {d[2] for d in legacy_keys} == legacy


def postgres_snapshot(url: str) -> dict[str, list[tuple]]:
    """The schema (columns, indexes, constraints), the Alembic revision and every row of a PostgreSQL database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            def q(sql: str) -> list[tuple]:
                return [tuple(r) for r in con.execute(text(sql))]

            out = {
                "columns": q("SELECT table_name, column_name, data_type, is_nullable, column_default FROM "
                             "information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"),
                "indexes": q("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
                "constraints": q("SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid) "
                                 "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2, 3"),
                "alembic_version": q("SELECT version_num FROM alembic_version"),
            }
            for table in ("orders", "images", "labels", "jobs", "leases", "outbox"):
                out[table] = q(f"SELECT * FROM {table} ORDER BY 1, 2")
            return out
    finally:
        engine.dispose()


def test_a_new_postgresql_database_is_created_at_the_head_and_a_second_store_changes_nothing(postgres_url, tmp_path):
    from utils.db.migrate import STATION_MIGRATIONS, head_revision

    export = tmp_path / "export"
    store = Store(export, url=postgres_url, station="pack-9", outbox=True)
    assert store.dialect == "postgresql" and store.db_path is None and "postgres@127.0.0.1" in store.where
    order, recs = order_with_images(store, 2, "PG-1")
    store.set_labels(recs[0].id, [("carton", 0.5)], "m")
    store.acquire_lease("jobs", "me", ttl_s=60)
    before = postgres_snapshot(postgres_url)
    assert before["alembic_version"] == [(head_revision(STATION_MIGRATIONS),)]
    assert {c[0] for c in before["columns"]} == {"orders", "images", "labels", "jobs", "leases", "outbox",
                                                 "image_stats", "events", "event_deliveries", "camera_parameters",
                                                 "control_commands", "engine_status", "alembic_version"}
    assert len(before["images"]) == 2 and len(before["outbox"]) == 3
    store.close()
    again = Store(export, url=postgres_url, station="pack-9", outbox=True)
    assert postgres_snapshot(postgres_url) == before
    assert [r.id for r in again.images(order.id)] == [r.id for r in recs]
    again.close()


def test_a_new_postgresql_database_is_made_once_by_processes_at_once(postgres_url, tmp_path):
    """Three processes open an empty PostgreSQL database at once: one creates the schema under the advisory lock,
    the others wait and find it done."""
    from utils.db.migrate import STATION_MIGRATIONS, head_revision

    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from utils.storage import Store
        Store({str(tmp_path / "export")!r}, url={postgres_url!r}).open_order("P-" + sys.argv[1])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    snapshot = postgres_snapshot(postgres_url)
    assert snapshot["alembic_version"] == [(head_revision(STATION_MIGRATIONS),)]
    assert sorted(r[1] for r in snapshot["orders"]) == ["P-0", "P-1", "P-2"]
