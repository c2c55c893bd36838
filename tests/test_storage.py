"""Order folders, atomic image writes, database rows and crash recovery (on SQLite and on PostgreSQL: the ``store``
fixture here is ``store_factory``'s, so every test using it runs on both)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image

from utils.files import atomic_write_bytes, is_temp_file, temp_path_for
from utils.imaging import encode_jpeg, make_exif, read_user_comment
from utils.storage import OrderNumberError, StorageError, Store, validate_order_number


@pytest.fixture()
def store(store_factory):
    return store_factory()


def _jpeg(color=(10, 200, 30), size=(64, 48)) -> bytes:
    return encode_jpeg(Image.new("RGB", size, color), 90)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "../x", "a/b", "a\\b", "/etc/passwd", "C:\\Windows", "x\x00y", "tab\there", "a" * 65, "a" * 10_000, "CON", "com1", "LPT9.txt",
     "..", ".hidden", "-rf", "a:b", "a*b", "ｏｒｄｅｒ", "a∕b", "a  b", "x\u200by"],
)
def test_bad_order_numbers_are_refused_with_a_message(bad):
    with pytest.raises(OrderNumberError) as err:
        validate_order_number(bad)
    assert len(str(err.value)) > 10


@pytest.mark.parametrize("good", ["4711", "A-123_b.7", "Bestellung Müller", "PO#12+3", "  99  "])
def test_good_order_numbers(good):
    assert validate_order_number(good) == good.strip()


def test_reused_closed_order_gets_a_new_folder_and_open_one_resumes(store):
    o1, resumed = store.open_order("4711")
    assert not resumed and o1.folder.name == "4711" and o1.folder.is_dir()
    o1b, resumed = store.open_order("4711")
    assert resumed and o1b.id == o1.id  # still open (e.g. after a crash): continued
    store.close_order(o1.id)
    o2, resumed = store.open_order("4711")
    assert not resumed and o2.folder.name == "4711_1"
    store.close_order(o2.id)
    o3, _ = store.open_order("4711")
    assert o3.folder.name == "4711_2"
    assert [o.order_number for o in store.list_orders()] == ["4711"] * 3
    assert store.list_orders()[0].id == o3.id  # newest first


def test_existing_folder_on_disk_is_never_reused(store):
    (store.export_dir / "X1").mkdir()
    (store.export_dir / "X1" / "foreign.txt").write_text("keep me")
    order, _ = store.open_order("X1")
    assert order.folder.name == "X1_1"
    assert (store.export_dir / "X1" / "foreign.txt").read_text() == "keep me"


def test_save_image_writes_file_row_features_and_exif(store):
    order, _ = store.open_order("A1")
    when = datetime(2026, 11, 21, 10, 15, 2, 123000, tzinfo=timezone.utc)
    exif = make_exif(when, "A1", 0.4567)
    data = encode_jpeg(Image.new("RGB", (80, 60), (1, 2, 3)), 90, exif)
    feats = np.arange(576, dtype=np.float32)
    rec = store.save_image(order, data, feats, when, width=80, height=60, distance=0.4567, camera="demo")
    assert rec.state == "ok" and rec.path.read_bytes() == data and rec.seq == 1
    assert rec.captured_at == when and rec.distance == pytest.approx(0.4567)
    ids, matrix, forced = store.features(order.id)
    assert ids == [rec.id] and np.array_equal(matrix[0], feats) and not forced[0]
    img = Image.open(rec.path)
    assert read_user_comment(img) == {"order": "A1", "distance": 0.4567}
    exif_ifd = img.getexif().get_ifd(0x8769)
    assert exif_ifd[0x9003] == when.astimezone().strftime("%Y:%m:%d %H:%M:%S")
    assert img.getexif()[0x010E] == "order A1"
    rec2 = store.save_image(order, _jpeg(), feats, when, forced=True)
    assert rec2.seq == 2 and rec2.file_name != rec.file_name
    assert [r.id for r in store.images(order.id)] == [rec.id, rec2.id]
    assert store.get_order(order.id).n_images == 2


def test_failed_write_leaves_no_row_and_no_file(store, monkeypatch):
    order, _ = store.open_order("B2")

    def fail(path, data, overwrite=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("utils.storage.atomic_write_bytes", fail)
    with pytest.raises(StorageError, match="No space left"):
        store.save_image(order, _jpeg(), np.zeros(576, np.float32), datetime.now(timezone.utc))
    assert store.images(order.id) == []
    assert store._query("SELECT COUNT(*) FROM images")[0][0] == 0
    assert list(order.folder.iterdir()) == []


def test_read_only_folder_gives_storage_error_and_nothing_half_written(store):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    order, _ = store.open_order("RO")
    order.folder.chmod(0o500)
    try:
        with pytest.raises(StorageError):
            store.save_image(order, _jpeg(), None, datetime.now(timezone.utc))
    finally:
        order.folder.chmod(0o700)
    assert store.images(order.id) == []


def test_atomic_write_never_clobbers_and_cleans_up(tmp_path):
    target = tmp_path / "a.jpg"
    atomic_write_bytes(target, b"one")
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"three", overwrite=True)
    assert target.read_bytes() == b"three"
    assert [p.name for p in tmp_path.iterdir()] == ["a.jpg"]
    assert is_temp_file(temp_path_for(target)) and not is_temp_file(target)


def test_recovery_after_a_crash_at_each_step(store, store_factory):
    """Simulate the process dying between the steps of save_image; recovery makes files and rows agree."""
    order, _ = store.open_order("C3")
    when = datetime.now(timezone.utc)
    good = store.save_image(order, _jpeg(), np.ones(576, np.float32), when)
    with store._tx() as con:
        crash_leftovers(con, order, when)
    report = store_factory().recover()
    assert (report.completed, report.removed_rows, report.removed_temp_files) == (1, 2, 1)
    assert report.orphan_files == []
    files = sorted(p.name for p in order.folder.iterdir())
    rows = sorted(r.file_name for r in store.images(order.id))
    assert files == rows == sorted([good.file_name, "00003_y.jpg"])
    ids, feats, _ = store.features(order.id)
    assert len(ids) == 2 and feats[1][0] == 2.0
    assert store_factory().recover().completed == 0  # idempotent


def crash_leftovers(con, order, when: datetime) -> None:
    """What a process that died at each step of save_image left: rows (written with ``con``) and files."""
    # died after the pending row, before the file: row must go
    con.execute(
        "INSERT INTO images (order_id, seq, file_name, state, captured_at) VALUES (?, 2, '00002_x.jpg', 'pending', ?)",
        (order.id, when.isoformat()),
    )
    # died after the rename, before the row was marked ok: row must stay, file is complete
    (order.folder / "00003_y.jpg").write_bytes(_jpeg((200, 0, 0)))
    con.execute(
        "INSERT INTO images (order_id, seq, file_name, state, captured_at, features) "
        "VALUES (?, 3, '00003_y.jpg', 'pending', ?, ?)",
        (order.id, when.isoformat(), np.full(576, 2, np.float32).tobytes()),
    )
    # died while writing the temporary file
    temp_path_for(order.folder / "00004_z.jpg").write_bytes(b"\xff\xd8partial")
    # a pending row whose file is truncated garbage
    (order.folder / "00005_w.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    con.execute(
        "INSERT INTO images (order_id, seq, file_name, state, captured_at) VALUES (?, 5, '00005_w.jpg', 'pending', ?)",
        (order.id, when.isoformat()),
    )


def test_trash_and_restore_move_files_not_delete(store):
    order, _ = store.open_order("D4")
    recs = [store.save_image(order, _jpeg((i, i, i)), np.full(576, i, np.float32), datetime.now(timezone.utc)) for i in range(3)]
    assert store.trash_images(order.id, [recs[1].id]) == 1
    assert not recs[1].path.exists() and (order.folder / "trash" / recs[1].file_name).exists()
    assert [r.id for r in store.images(order.id)] == [recs[0].id, recs[2].id]
    assert len(store.features(order.id)[0]) == 2
    assert store.restore_images(order.id, [recs[1].id]) == 1
    assert recs[1].path.exists() and len(store.images(order.id)) == 3


def test_store_in_unwritable_place_says_what_to_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="EXPORT_DIR"):
        Store(blocker / "export")


# ----------------------------------------------------------------- both back ends: outbox, paging, locks, problems


def test_the_outbox_queues_every_change_and_counts_what_waits(store_factory):
    store = store_factory(station="pack-1", outbox=True)
    order, _ = store.open_order("OUT-1")
    recs = [store.save_image(order, _jpeg((i, 9, 9)), None, datetime.now(timezone.utc)) for i in range(3)]
    store.trash_images(order.id, [recs[2].id])
    waiting = store.outbox_waiting()
    assert [(e.entity, e.entity_id) for e in waiting] == [("order", order.id)] + [("image", r.id) for r in recs] + [
        ("image", recs[2].id)]
    backlog = store.outbox_backlog()
    assert (backlog.images, backlog.orders, backlog.failed, backlog.last_error) == (4, 1, 0, None)
    assert backlog.oldest == waiting[0].created_at
    store.outbox_retry(waiting[1], "gone", give_up=True)
    store.outbox_retry(waiting[2], "timeout")
    backlog = store.outbox_backlog()
    assert (backlog.images, backlog.failed, backlog.last_error) == (3, 1, "timeout")
    assert store.outbox_retry_failed() == 1 and store.outbox_backlog().failed == 0
    for entry in store.outbox_waiting():
        store.outbox_done(entry)
    assert store.outbox_backlog().images == 0 and len(store.outbox_lags()) == 5
    assert store.get_image(recs[0].id).synced_at is not None and store.get_order(order.id).synced_at is not None
    assert store.outbox_backfill() == 0  # everything confirmed
    with store._tx() as con:
        con.execute("UPDATE images SET synced_at = NULL WHERE id = ?", (recs[1].id,))
    assert store.outbox_backfill() == 1 and store.outbox_backfill() == 0
    assert store.outbox_prune(datetime.now(timezone.utc)) == 5 and store.outbox_backlog().images == 1  # done ones go
    row = store.image_row(recs[0].id)
    assert row["station"] == "pack-1" and "features" not in row and store.order_row(order.id)["folder"] == "OUT-1"


def test_pages_ids_positions_features_and_jobs(store):
    order, _ = store.open_order("PAGE-1")
    recs = [store.save_image(order, _jpeg((i, 0, 0)), np.full(4, i, np.float32), datetime.now(timezone.utc))
            for i in range(5)]
    assert [r.seq for r in store.images(order.id, offset=1, limit=2)] == [2, 3]
    assert [r.seq for r in store.images(order.id, offset=3)] == [4, 5]
    assert [r.id for r in store.images(order.id, ids=[recs[4].id, recs[0].id, 10_000])] == [recs[0].id, recs[4].id]
    assert store.images(order.id, ids=[]) == []
    assert store.image_position(order.id, 3) == 2 and store.image_position(order.id, 99) is None
    store.set_features({recs[0].id: np.ones(8, np.float32)})
    ids, feats, _ = store.features(order.id, dim=4)
    assert ids == [r.id for r in recs[1:]] and feats.shape == (4, 4)
    assert store.count_images(order.id) == 5 and store.get_order(order.id).n_images == 5
    store.record_job("cleanup", runs=1, last_started=datetime(2026, 1, 2, tzinfo=timezone.utc), result="ok")
    store.record_job("cleanup", runs=2)
    row = store.job_rows()["cleanup"]
    assert (row["runs"], row["result"], row["last_started"]) == (2, "ok", datetime(2026, 1, 2, tzinfo=timezone.utc))


def _hold_write_lock(store_factory, store, seconds: float):
    """Another process holds the database's write lock: SQLite's (BEGIN IMMEDIATE), or the advisory lock every write
    transaction takes on PostgreSQL. Returns something to ``wait`` on."""
    if store_factory.backend == "sqlite":
        from tests.test_hardening import hold_write_lock

        return hold_write_lock(store.db_path, seconds)
    import subprocess
    import sys
    import textwrap

    from utils.db.engine import WRITE_LOCK

    code = textwrap.dedent(f"""
        import sys, time, psycopg
        con = psycopg.connect({store_factory.url.replace("postgresql+psycopg", "postgresql")!r}, autocommit=True)
        con.execute("SELECT pg_advisory_lock({WRITE_LOCK})")
        print("locked", flush=True)
        time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_locked_database_fails_the_write_after_the_busy_timeout_and_then_works(store_factory):
    import time

    store = store_factory(busy_timeout_s=0.5)
    order, _ = store.open_order("LOCK-2")
    locker = _hold_write_lock(store_factory, store, 3)
    start = time.monotonic()
    with pytest.raises(StorageError, match="locked"):
        store.save_image(order, _jpeg(), None, datetime.now(timezone.utc))
    assert 0.4 < time.monotonic() - start < 2.5
    assert "locked by another process" in store.health_problem()
    assert [r.file_name for r in store.images(order.id)] == []  # reads go on meanwhile
    locker.wait(10)
    assert store.health_problem() is None
    kept = store.save_image(order, _jpeg(), None, datetime.now(timezone.utc))
    assert [p.name for p in order.folder.iterdir()] == [kept.file_name]


def test_an_unreachable_postgresql_server_is_named_at_open_and_by_health(postgres_server, postgres_url, tmp_path):
    store = Store(tmp_path / "export", url=postgres_url)
    assert store.dialect == "postgresql" and store.health_problem() is None
    postgres_server.stop()
    try:
        assert "Cannot reach the database" in store.health_problem()
        with pytest.raises(StorageError, match="Cannot reach the database") as err:
            Store(tmp_path / "export", url=postgres_url)
        assert "postgres@127.0.0.1" in str(err.value)
    finally:
        postgres_server.start()
    order, _ = store.open_order("BACK-1")  # the pool's dead connections are replaced
    assert store.get_order(order.id).order_number == "BACK-1"
    with pytest.raises(StorageError, match="does not exist"):
        Store(tmp_path / "export", url=postgres_url.rsplit("/", 1)[0] + "/no_such_db")
    store.close()
