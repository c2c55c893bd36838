"""The station's sync into the central archive, on real components: the station's SQLite store, the central
database (SQLite here and a real PostgreSQL server), the object store (a folder here and a real SeaweedFS S3
server), with faults injected for real (servers stopped mid-order, a station killed with SIGKILL mid-upload).

The same tests run on both back ends (``archive`` is parametrized); the PostgreSQL + S3 ones skip with the reason
where those servers cannot be started on the machine.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.archive_fixtures import Archive
from tests.conftest import ROOT, wait_for
from utils.archive.central import CentralError
from utils.archive.objects import ObjectStoreError
from utils.archive.sync import Syncer, object_key
from utils.storage import Store, utc_now


def jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small JPEG that differs with ``seed``."""
    img = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def station_store(tmp_path: Path, name: str, outbox: bool = True) -> Store:
    return Store(tmp_path / name, station=name, outbox=outbox)


def capture(store: Store, number: str, n: int, start: int = 0) -> list[Any]:
    order, _ = store.open_order(number)
    return [store.save_image(order, jpeg(start + i), None, utc_now(), width=64, height=48) for i in range(n)]


def drain(syncer: Syncer, rounds: int = 50) -> None:
    """Run the sync in this thread until nothing waits."""
    for _ in range(rounds):
        if syncer.run_once() == 0 and not syncer.store.outbox_waiting(1):
            return
    raise AssertionError(f"the outbox did not empty: {syncer.store.outbox_backlog()}")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def read_object(objects: Any, key: str) -> bytes:
    return b"".join(objects.read_chunks(key))


def assert_archive_has(archive: Archive, store: Store, station: str) -> list[dict[str, Any]]:
    """Every kept image of the station is in the archive exactly once, with its bytes; returns the rows."""
    central = archive.central()
    rows = central.images(station=station, states=("ok", "trashed"))
    local = [r for o in store.list_orders(include_trashed=True) for r in store.images(o.id, include_trashed=True)]
    assert sorted(r["origin_id"] for r in rows) == sorted(r.id for r in local)  # all there, none twice
    objects = archive.objects()
    by_id = {r["origin_id"]: r for r in rows}
    for rec in local:
        row = by_id[rec.id]
        assert row["state"] == rec.state and row["seq"] == rec.seq and row["station"] == station
        assert row["md5"] == md5(rec.path) and read_object(objects, row["object_key"]) == rec.path.read_bytes()
    return rows


# ---------------------------------------------------------------- the happy path, idempotence, ordering


def test_kept_images_and_their_changes_reach_the_archive_once(archive, tmp_path):
    store = station_store(tmp_path, "pack-1")
    kept = capture(store, "A-100", 4)
    store.trash_images(kept[0].order_id, [kept[1].id])
    store.close_order(kept[0].order_id)
    syncer = archive.syncer(store, "pack-1")
    drain(syncer)
    rows = assert_archive_has(archive, store, "pack-1")
    assert {r["object_key"] for r in rows} == {object_key("pack-1", "A-100", r.file_name) for r in kept}
    (order,) = archive.central().list_orders()
    assert (order["order_number"], order["status"], order["station"], order["n_images"]) == ("A-100", "closed",
                                                                                           "pack-1", 3)
    assert store.outbox_backlog().images == 0 and all(r.synced_at for r in store.images(order["origin_id"]))
    # the whole outbox once more (as after a crash before the lines were marked done): nothing doubles
    for o in store.list_orders():
        store.update_order(o.id, camera="cam-2")
    with store._tx() as con:
        con.execute("UPDATE images SET synced_at = NULL")
    assert store.outbox_backfill() == 4  # the three kept images and the trashed one
    drain(syncer)
    assert len(assert_archive_has(archive, store, "pack-1")) == 4
    assert [o["camera"] for o in archive.central().list_orders()] == ["cam-2"]


def test_a_crash_between_upload_and_row_sends_again_without_a_duplicate(archive, tmp_path, monkeypatch):
    store = station_store(tmp_path, "pack-1")
    capture(store, "B-7", 3)
    syncer = archive.syncer(store, "pack-1")
    central = syncer.archive()
    real = central.put_image
    calls = []

    def dies_once(*args, **kw):  # the file is uploaded, the row not written: the process "dies" here
        calls.append(args)
        if len(calls) == 2:
            raise CentralError("simulated crash after the upload")
        return real(*args, **kw)

    monkeypatch.setattr(central, "put_image", dies_once)
    with pytest.raises(CentralError):
        drain(syncer)
    assert store.outbox_backlog().images == 2  # the second and third wait, in order
    drain(syncer)
    assert len(assert_archive_has(archive, store, "pack-1")) == 3


def test_the_same_order_number_at_two_stations_is_one_order_seen_twice(archive, tmp_path):
    a, b = station_store(tmp_path, "pack-1"), station_store(tmp_path, "pack-2")
    capture(a, "ORD-1", 2)
    capture(b, "ORD-1", 3, start=10)
    drain(archive.syncer(a, "pack-1"))
    drain(archive.syncer(b, "pack-2"))
    central = archive.central()
    runs = central.orders_by_number("ORD-1")
    assert sorted((r["station"], r["folder"]) for r in runs) == [("pack-1", "ORD-1"), ("pack-2", "ORD-1")]
    keys = {r["object_key"] for r in central.images(order_ids=[r["id"] for r in runs])}
    assert len(keys) == 5 and {k.split("/")[0] for k in keys} == {"pack-1", "pack-2"}
    assert central.station_names() == ["pack-1", "pack-2"]


def test_rows_from_before_the_sync_are_sent_too(archive, tmp_path):
    """A station that worked on its own (or a process without the archive settings) is caught up."""
    alone = station_store(tmp_path, "pack-1", outbox=False)
    capture(alone, "OLD-1", 2)
    alone.close()
    store = station_store(tmp_path, "pack-1")
    assert store.outbox_backlog().images == 0
    syncer = archive.syncer(store, "pack-1").start()
    try:
        wait_for(lambda: syncer.status().backlog.images == 0 and syncer.sent >= 3, timeout=30,
                 what="the older rows sent")
    finally:
        syncer.stop()
    assert len(assert_archive_has(archive, store, "pack-1")) == 2


def test_the_trash_is_emptied_only_of_what_the_archive_has(archive, tmp_path):
    store = station_store(tmp_path, "pack-1")
    kept = capture(store, "T-1", 2)
    store.trash_images(kept[0].order_id, [kept[0].id])
    assert store.purge_trash(utc_now()) == (0, 0)  # not in the archive yet: stays
    drain(archive.syncer(store, "pack-1"))
    assert store.purge_trash(utc_now()) == (1, 0)
    central = archive.central()
    assert [r["state"] for r in central.images(states=("ok", "trashed"))].count("trashed") == 1  # kept centrally


def test_a_missing_file_is_listed_and_the_others_go_on(archive, tmp_path):
    store = station_store(tmp_path, "pack-1")
    kept = capture(store, "M-1", 3)
    kept[1].path.unlink()
    drain(archive.syncer(store, "pack-1"))
    backlog = store.outbox_backlog()
    assert backlog.failed == 1 and kept[1].file_name in (backlog.last_error or "")
    assert sorted(r["origin_id"] for r in archive.central().images()) == [kept[0].id, kept[2].id]


# ---------------------------------------------------------------- faults, for real


def capture_while(store: Store, number: str, n: int, start: int, fps: float = 10.0) -> list[float]:
    """Keep ``n`` images at about ``fps``; returns how long each save took (capture must never wait)."""
    order, _ = store.open_order(number)
    took = []
    for i in range(n):
        t0 = time.perf_counter()
        store.save_image(order, jpeg(start + i), None, utc_now(), width=64, height=48)
        took.append(time.perf_counter() - t0)
        time.sleep(max(0.0, 1 / fps - took[-1]))
    return took


@pytest.mark.parametrize("down", ["database", "object store"])
def test_capture_goes_on_while_the_archive_is_down_and_everything_arrives_once(real, tmp_path, down):
    store = station_store(tmp_path, "pack-1")
    syncer = real.syncer(store, "pack-1", backoff_max_s=1.0).start()
    server = real.db_server if down == "database" else real.s3_server
    try:
        took = capture_while(store, "F-1", 10, 0)
        wait_for(lambda: store.outbox_backlog().images == 0, timeout=30, what="the first images sent")
        server.stop()
        took += capture_while(store, "F-1", 20, 100)  # the same order goes on
        wait_for(lambda: syncer.status().problem is not None, timeout=30, what="the sync saying why it waits")
        status = syncer.status()
        assert status.backlog.images >= 15 and status.backlog.oldest is not None
        assert "will retry" in status.problem and "secret" not in status.problem.lower()
        assert status.summary().startswith(f"{status.backlog.images} image(s)")
        server.start()
        wait_for(lambda: store.outbox_backlog().images == 0, timeout=60, what="the backlog sent after the outage")
        assert syncer.status().problem is None
    finally:
        syncer.stop()
    assert max(took) < 0.5, f"a save waited {max(took):.2f} s for the archive"
    assert len(assert_archive_has(real, store, "pack-1")) == 30


STATION = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.archive_fixtures import Archive
from tests.test_archive_sync import jpeg
from utils.storage import Store, utc_now
archive = Archive({url!r}, {storage!r}, {kw!r})
store = Store(Path({export!r}), station="pack-9", outbox=True)
order, _ = store.open_order("K-1")
for i in range(6):
    store.save_image(order, jpeg(i), None, utc_now(), width=64, height=48)
syncer = archive.syncer(store, "pack-9")
objects = syncer.objects()
real_put = objects.put_file
count = [0]
def put_then_hang(key, path, content_type=None):
    md5 = real_put(key, path, content_type)
    count[0] += 1
    if count[0] == 4:  # the 4th file is uploaded, its row not yet written: killed here
        Path({marker!r}).write_text(key)
        time.sleep(300)
    return md5
objects.put_file = put_then_hang
syncer.run_once()
"""


def test_a_station_killed_mid_upload_loses_nothing_and_doubles_nothing(real, tmp_path):
    marker = tmp_path / "uploaded-4th"
    code = STATION.format(root=str(ROOT), url=real.url, storage=real.storage_url, kw=real.objects_kw,
                          export=str(tmp_path / "pack-9"), marker=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, timeout=60, what="the 4th upload")
        assert proc.poll() is None, "the station process ended before the upload"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    store = Store(tmp_path / "pack-9", station="pack-9", outbox=True)
    assert store.outbox_backlog().images == 3  # the 4th, 5th and 6th; the first three were confirmed
    central = real.central()
    assert len(central.images(station="pack-9")) == 3
    drain(real.syncer(store, "pack-9"))  # the restarted station
    assert len(assert_archive_has(real, store, "pack-9")) == 6


def test_wrong_credentials_and_a_missing_bucket_say_what_to_fix(real, tmp_path):
    store = station_store(tmp_path, "pack-1")
    capture(store, "C-1", 1)
    wrong_key = Archive(real.url, real.storage_url, {**real.objects_kw, "secret_key": "not-the-secret-key"})
    syncer = wrong_key.syncer(store, "pack-1")
    with pytest.raises(ObjectStoreError) as err:
        drain(syncer)
    assert "S3_ACCESS_KEY_ID" in str(err.value) and "not-the-secret-key" not in str(err.value)
    missing = Archive(real.url, "s3://no-such-bucket-here/x", real.objects_kw)
    with pytest.raises(ObjectStoreError) as err:
        drain(missing.syncer(store, "pack-1"))
    assert "no-such-bucket-here" in str(err.value) and "S3_CREATE_BUCKET" in str(err.value)
    made = Archive(real.url, "s3://made-by-the-station/x", {**real.objects_kw, "create_bucket": True})
    wrong_db = Archive(real.url.replace("postgres@", "nobody@"), real.storage_url, real.objects_kw)
    with pytest.raises(CentralError) as err:
        drain(wrong_db.syncer(store, "pack-1"))
    assert "CENTRAL_DATABASE_URL" in str(err.value)
    drain(made.syncer(store, "pack-1"))
    assert_archive_has(made, store, "pack-1")
