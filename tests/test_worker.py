"""The capture worker end to end: demo camera -> features -> files + rows (or a video)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest
from PIL import Image

from communication import BaslerAdapterCamera, FolderCamera
from DataModels_BaslerCameraAdapter import TakePhotoParams
from ImageProcessingThread import CaptureOptions, CaptureWorker, WorkerBusy, worker_for
from utils.imaging import read_user_comment
from utils.storage import OrderNumberError
from tests.conftest import PROJECT_TOYDATA, wait_for




def files_rows_agree(store, order_id):
    order = store.get_order(order_id)
    files = sorted(p.name for p in order.folder.iterdir() if p.is_file())
    rows = sorted(r.file_name for r in store.images(order_id))
    assert files == rows
    return rows


@pytest.fixture()
def worker(store, descriptor):
    w = CaptureWorker(FolderCamera(PROJECT_TOYDATA), descriptor, store, backoff_max=0.2)
    yield w
    w.stop()


def test_distinct_images_end_to_end(worker, store):
    order = worker.start("E2E-1", CaptureOptions(threshold=0.15, images_per_second=23, resolution=320))
    n = len(list(PROJECT_TOYDATA.glob("*.jpg")))
    wait_for(lambda: worker.snapshot().frames_seen >= 2 * n + 2)
    snap = worker.snapshot()
    assert snap.running and snap.order.id == order.id and snap.latest_frame is not None
    assert snap.last_distance is not None and snap.achieved_fps > 5
    summary = worker.stop()
    rows = files_rows_agree(store, order.id)
    assert summary.kept == len(rows) == store.get_order(order.id).n_images
    assert 2 <= summary.kept < n  # the repeated frames and the second cycle add nothing
    assert store.get_order(order.id).status == "closed"
    first = store.images(order.id)[0]
    img = Image.open(first.path)
    assert max(img.size) == 320  # resolution applied
    assert read_user_comment(img)["order"] == "E2E-1"
    assert first.distance is None  # the first kept image has nothing to compare with
    assert all(r.distance is None or r.distance > 0.15 for r in store.images(order.id))
    assert not [t for t in threading.enumerate() if t.name.startswith("capture-")]


def test_pacing_and_live_rate_change(worker):
    worker.start("PACE", CaptureOptions(threshold=0.5, images_per_second=10))
    time.sleep(2.2)
    fps10 = worker.snapshot().achieved_fps
    worker.set_rate(4)
    time.sleep(5.5)  # the rate window (20 frames) fills with the new pace
    fps4 = worker.snapshot().achieved_fps
    worker.stop()
    assert 8.5 < fps10 < 11.5, fps10
    assert 3.4 < fps4 < 4.6, fps4
    assert worker.store.get_order(worker.snapshot().order.id).images_per_second == 4


def test_live_threshold_and_save_next(worker, store):
    order = worker.start("LIVE", CaptureOptions(threshold=0.15, images_per_second=23))
    wait_for(lambda: worker.snapshot().frames_seen >= 20)
    worker.set_threshold(50.0)  # nothing is distinct any more
    kept = worker.snapshot().kept
    seen = worker.snapshot().frames_seen
    wait_for(lambda: worker.snapshot().frames_seen >= seen + 10)
    assert worker.snapshot().kept == kept
    worker.save_next()
    wait_for(lambda: worker.snapshot().kept == kept + 1)
    assert not worker.snapshot().save_next_pending
    time.sleep(0.5)
    assert worker.snapshot().kept == kept + 1  # exactly one frame saved on demand
    worker.stop()
    recs = store.images(order.id)
    assert recs[-1].forced and not any(r.forced for r in recs[:-1])
    assert store.get_order(order.id).threshold == 50.0


def test_second_start_is_refused_with_the_running_order(worker):
    worker.start("FIRST", CaptureOptions())
    with pytest.raises(WorkerBusy, match="FIRST"):
        worker.start("SECOND", CaptureOptions())
    with pytest.raises(OrderNumberError):
        CaptureWorker(worker.camera, worker.descriptor, worker.store).start("../x", CaptureOptions())


def test_concurrent_starts_give_one_order(store, descriptor):
    w = CaptureWorker(FolderCamera(PROJECT_TOYDATA), descriptor, store)
    results = []

    def press(n):
        try:
            results.append(w.start(f"TAB{n}", CaptureOptions()).order_number)
        except WorkerBusy as err:
            results.append(err)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    w.stop()
    assert sum(isinstance(r, str) for r in results) == 1
    assert len(store.list_orders()) == 1


def test_stop_is_prompt_and_idempotent(worker):
    worker.start("STOP", CaptureOptions(images_per_second=1))
    time.sleep(0.3)
    t0 = time.monotonic()
    summary = worker.stop()
    assert time.monotonic() - t0 < 2.0
    assert worker.stop() == summary and not worker.running
    assert not [t for t in threading.enumerate() if t.name.startswith("capture-")]


def test_resumed_open_order_continues_with_its_kept_images(store, descriptor):
    first = PROJECT_TOYDATA / "01.jpg"
    order, _ = store.open_order("RESUME")
    feats = descriptor.describe(Image.open(first))
    store.save_image(order, first.read_bytes(), feats, datetime.now(timezone.utc))
    w = CaptureWorker(FolderCamera(PROJECT_TOYDATA), descriptor, store)
    again = w.start("RESUME", CaptureOptions(threshold=0.15, images_per_second=23))
    assert again.id == order.id and w.snapshot().kept == 1
    wait_for(lambda: w.snapshot().kept >= 2)
    w.stop()
    recs = store.images(order.id)
    # frame 01 (and its twin 02) was kept before the "crash": compared with it, not saved again
    assert all(r.distance is not None and r.distance > 0.15 for r in recs[1:])
    files_rows_agree(store, order.id)


def test_keep_original_bytes(tmp_path, store, descriptor):
    folder = tmp_path / "cam"
    folder.mkdir()
    src = [PROJECT_TOYDATA / "01.jpg", PROJECT_TOYDATA / "16.jpg"]
    for p in src:
        (folder / p.name).write_bytes(p.read_bytes())
    w = CaptureWorker(FolderCamera(folder), descriptor, store)
    order = w.start("ORIG", CaptureOptions(keep_original=True, threshold=0.15, images_per_second=23))
    wait_for(lambda: w.snapshot().kept >= 2)
    w.stop()
    saved = [r.path.read_bytes() for r in store.images(order.id)]
    assert saved[:2] == [p.read_bytes() for p in src]
    assert store.images(order.id)[0].width == 640


def test_video_mode_writes_real_rate_and_colours(tmp_path, store, descriptor):
    w = CaptureWorker(FolderCamera(PROJECT_TOYDATA), descriptor, store)
    order = w.start("VID", CaptureOptions(mode="video", images_per_second=10, resolution=320))
    wait_for(lambda: w.snapshot().video_frames >= 25)
    summary = w.stop()
    assert summary.video_path is not None and summary.video_path.exists()
    assert summary.video_path.parent == order.folder
    cap = cv2.VideoCapture(str(summary.video_path))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape[:2] == (240, 320)
    assert frames == w.snapshot().video_frames == store.get_order(order.id).video_frames
    assert abs(fps - summary.video_fps) < 0.05 and 8.0 < fps < 11.0
    src = np.asarray(Image.open(PROJECT_TOYDATA / "01.jpg").resize((320, 240)), np.float32)
    got = cv2.cvtColor(first, cv2.COLOR_BGR2RGB).astype(np.float32)
    assert np.abs(got.mean((0, 1)) - src.mean((0, 1))).max() < 8  # red stays red: no BGR swap
    assert store.images(order.id) == []


def test_video_of_mono_frames(tmp_path, store, descriptor):
    folder = tmp_path / "mono"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((120, 160), 60 * i + 30, np.uint8), "L").save(folder / f"{i}.png")
    w = CaptureWorker(FolderCamera(folder), descriptor, store)
    w.start("MONO", CaptureOptions(mode="video", images_per_second=20))
    wait_for(lambda: w.snapshot().video_frames >= 6)
    summary = w.stop()
    cap = cv2.VideoCapture(str(summary.video_path))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (120, 160, 3)
    assert abs(float(frame.mean()) - 30) < 6
    assert np.abs(frame[..., 0].astype(int) - frame[..., 2].astype(int)).max() <= 3  # grey stays grey


def test_camera_errors_are_shown_and_the_worker_recovers(store, descriptor):
    from utils.demo_adapter import DemoAdapterServer

    with DemoAdapterServer(folder=PROJECT_TOYDATA) as server:
        cam = BaslerAdapterCamera(server.url, TakePhotoParams(), timeout=1.0)
        w = CaptureWorker(cam, descriptor, store, backoff_max=0.3)
        w.start("FAULTS", CaptureOptions(threshold=0.15, images_per_second=20))
        wait_for(lambda: w.snapshot().frames_seen >= 3)
        server.down()
        wait_for(lambda: w.snapshot().last_error is not None)
        snap = w.snapshot()
        assert snap.running and snap.error_since is not None and "Camera" in snap.last_error
        time.sleep(1.0)
        assert w.snapshot().error_duration_s >= 0.9
        seen = w.snapshot().frames_seen
        server.up()
        wait_for(lambda: w.snapshot().last_error is None and w.snapshot().frames_seen > seen + 3)
        server.inject("garbage")
        wait_for(lambda: w.snapshot().error_count > snap.error_count)
        wait_for(lambda: w.snapshot().last_error is None)
        summary = w.stop()
    assert summary.errors >= 2 and summary.frames > seen
    files_rows_agree(store, summary.order.id)


def test_storage_failure_is_shown_and_capture_goes_on(worker, store, monkeypatch):
    import utils.storage as storage

    real = storage.atomic_write_bytes
    fail = {"on": True}

    def flaky(path, data, overwrite=False):
        if fail["on"]:
            raise OSError(28, "No space left on device")
        return real(path, data, overwrite)

    monkeypatch.setattr(storage, "atomic_write_bytes", flaky)
    order = worker.start("DISK", CaptureOptions(threshold=0.15, images_per_second=23))
    wait_for(lambda: worker.snapshot().last_error is not None)
    assert "No space left" in worker.snapshot().last_error and worker.snapshot().kept == 0
    fail["on"] = False
    wait_for(lambda: worker.snapshot().kept >= 1)
    wait_for(lambda: worker.snapshot().last_error is None)
    worker.stop()
    files_rows_agree(store, order.id)


def test_one_worker_per_camera_key(store, descriptor):
    made = []

    def factory():
        made.append(1)
        return CaptureWorker(FolderCamera(PROJECT_TOYDATA), descriptor, store)

    import ImageProcessingThread

    a = worker_for("test-camera-key", factory)
    b = worker_for("test-camera-key", factory)
    assert a is b and len(made) == 1
    del ImageProcessingThread._workers["test-camera-key"]


def test_frames_from_arrays_are_saved(store, descriptor):
    """Sources that deliver decoded arrays (OpenCV) are encoded as JPEG with EXIF."""
    from communication import Frame

    class ArrayCamera:
        name = "array"

        def __init__(self):
            self.i = 0

        def grab(self):
            self.i += 1
            arr = np.zeros((100, 200, 3), np.uint8)
            arr[:, : 20 * (self.i % 10)] = (255, 0, 0)
            return Frame(image=arr)

        def close(self):
            pass

    w = CaptureWorker(ArrayCamera(), descriptor, store)
    order = w.start("ARR", CaptureOptions(threshold=0.15, images_per_second=23))
    wait_for(lambda: w.snapshot().kept >= 2)
    w.stop()
    first = store.images(order.id)[0]
    img = Image.open(first.path)
    assert first.path.suffix == ".jpg" and img.size == (200, 100) and read_user_comment(img)["order"] == "ARR"


def test_close_that_cannot_be_written_keeps_the_order_open_and_resumable(worker, store, monkeypatch):
    import sqlite3

    from utils.storage import StorageError

    order = worker.start("FULL", CaptureOptions(threshold=0.15, images_per_second=23))
    wait_for(lambda: worker.snapshot().kept >= 2)
    real_close = store.close_order

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "close_order", disk_full)
    with pytest.raises(StorageError, match="could not be closed.*Start with the same order number"):
        worker.stop()
    assert not worker.running and store.get_order(order.id).status == "open"
    assert not [t for t in threading.enumerate() if t.name.startswith("capture-")]
    monkeypatch.setattr(store, "close_order", real_close)
    kept = len(store.images(order.id))
    again = worker.start("FULL", CaptureOptions(threshold=0.15, images_per_second=23))
    assert again.id == order.id and worker.snapshot().kept == kept
    summary = worker.stop()
    assert summary.order.status == "closed" and summary.kept >= kept
    files_rows_agree(store, order.id)


def test_a_thread_stuck_in_a_camera_call_never_joins_the_next_run(store, descriptor):
    """Stop gives up waiting for a grab that hangs; when it returns, that thread ends instead of capturing on."""
    gate = threading.Event()
    folder = FolderCamera(PROJECT_TOYDATA)

    class HangingOnce:
        name = "hanging once"
        calls = 0

        def grab(self):
            HangingOnce.calls += 1
            if HangingOnce.calls == 1:
                gate.wait(10)  # a camera call that ignores its timeout
            return folder.grab()

        def close(self):
            pass

    w = CaptureWorker(HangingOnce(), descriptor, store, join_timeout=0.3)
    first = w.start("HANG-1", CaptureOptions(images_per_second=20))
    time.sleep(0.2)
    w.stop()
    assert store.get_order(first.id).status == "closed"
    second = w.start("HANG-2", CaptureOptions(images_per_second=20, threshold=0.15))
    wait_for(lambda: w.snapshot().frames_seen >= 5)
    gate.set()  # the old thread's grab returns now
    time.sleep(0.5)
    alive = [t for t in threading.enumerate() if t.name == "capture-acquire"]
    assert len(alive) == 1, "the old acquire thread must end, not join the new run"
    w.stop()
    assert store.images(first.id) == []  # its late frame was not saved into the closed order
    assert store.get_order(second.id).status == "closed"
