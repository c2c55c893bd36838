"""Disk faults on a real, small file system: a full disk and a read-only export folder.

A tmpfs is mounted for each test (root is needed; the tests are skipped with the reason
otherwise) and always unmounted afterwards. The capture must pause with a clear error, leave
nothing half-written (no temporary file, no pending row, every file with its row and every
row with its file) and resume by itself when space or write access is back.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import remount, wait_for
from PIL import Image

from communication import Frame
from describe_images import load_descriptor
from ImageProcessingThread import CaptureOptions, CaptureWorker
from utils.files import is_temp_file
from utils.storage import Store

RATE = 23




class DistinctNoiseCamera:
    """Every frame differs clearly (random colour blocks) and is noisy (big JPEG files fill a disk fast)."""

    name = "noise camera"

    def __init__(self, size=(480, 360)) -> None:
        self.size = size
        self.rng = np.random.default_rng(1)

    def grab(self) -> Frame:
        w, h = self.size
        blocks = self.rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        image = np.kron(blocks, np.ones((h // 3, w // 4, 1), np.uint8)).astype(np.int16)
        image += self.rng.integers(-40, 41, image.shape, dtype=np.int16)
        return Frame(image=np.clip(image, 0, 255).astype(np.uint8))

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def thumb_descriptor():
    return load_descriptor(allow_download=False)  # the thumbnail fallback offline: fastest


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize


def fill(path: Path) -> Path:
    """Write a ballast file until the file system is full (ENOSPC at every write size); returns it."""
    ballast = path / f"ballast-{time.monotonic_ns()}"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for size in (65536, 4096, 512, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
    finally:
        os.close(fd)
    return ballast


def assert_consistent(store: Store, order_id: int) -> list[str]:
    """No temporary file, no pending row; files and ok rows are the same names; every file is a whole image."""
    order = store.get_order(order_id)
    entries = list(order.folder.iterdir())
    temp = [p.name for p in entries if is_temp_file(p)]
    assert not temp, f"temporary files left: {temp}"
    pending = store._query("SELECT file_name FROM images WHERE order_id = ? AND state = 'pending'", (order_id,))
    assert not pending, f"pending rows left: {[r[0] for r in pending]}"
    files = sorted(p.name for p in entries if p.is_file())
    rows = sorted(r.file_name for r in store.images(order_id))
    assert files == rows, (set(files) ^ set(rows))
    for name in files:
        with Image.open(order.folder / name) as img:
            img.load()  # raises on a truncated file
    return rows


def test_disk_full_pauses_capture_and_resumes_when_space_is_back(tmpfs, thumb_descriptor, caplog):
    disk = tmpfs("4m")
    first_ballast = disk / "ballast-first"
    first_ballast.write_bytes(b"\0" * 1024 * 1024)
    store = Store(disk / "export")  # the database lives on the same disk (the default layout)
    worker = CaptureWorker(DistinctNoiseCamera(), thumb_descriptor, store, backoff_max=0.3)
    order = worker.start("FULL", CaptureOptions(threshold=0.15, images_per_second=RATE, resolution=480))
    try:
        wait_for(lambda: worker.snapshot().kept >= 2, what="first kept images")
        # the capture fills the disk itself ...
        wait_for(lambda: "No space left" in (worker.snapshot().last_error or ""), what="the disk-full error")
        # ... and whatever space a save would still find is taken too: the disk is 100 % full
        ballast = fill(disk)
        assert free_bytes(disk) < 4096
        wait_for(lambda: "No space left" in (worker.snapshot().last_error or ""), what="the error on a full disk")
        snap = worker.snapshot()
        kept, errors, frames = snap.kept, snap.error_count, snap.frames_seen
        assert snap.running and snap.error_since is not None
        assert snap.last_error.startswith("Saving failed") and "No space left" in snap.last_error, snap.last_error
        time.sleep(1.5)
        later = worker.snapshot()
        assert later.running and later.kept == kept, "nothing is kept while the disk is full"
        assert later.frames_seen > frames, "the live view goes on while saving pauses"
        assert later.error_count > errors and "No space left" in later.last_error
        assert later.error_duration_s >= 1.4 and later.error_since == snap.error_since
        rows = assert_consistent(store, order.id)  # nothing half-written while full
        assert len(rows) == kept
        logged = [r for r in caplog.records if r.name == "ImageProcessingThread" and r.levelno >= 40]
        assert len(logged) <= 5 < later.error_count, "the error is logged once per problem, not once per frame"
        # space is back: capture resumes by itself
        ballast.unlink()
        first_ballast.unlink()
        wait_for(lambda: worker.snapshot().kept >= kept + 3, what="saving after space came back")
        wait_for(lambda: worker.snapshot().last_error is None, what="the error to clear")
    finally:
        summary = worker.stop()
    rows = assert_consistent(store, order.id)
    assert summary.kept == len(rows) == store.get_order(order.id).n_images


def test_read_only_export_folder_pauses_capture_and_resumes_when_writable(tmpfs, tmp_path, thumb_descriptor):
    disk = tmpfs("16m")
    # the database lives elsewhere: a file system with a database open for writing cannot be remounted read-only
    store = Store(disk / "export", tmp_path / "capture.sqlite3")
    worker = CaptureWorker(DistinctNoiseCamera(), thumb_descriptor, store, backoff_max=0.3)
    order = worker.start("RO", CaptureOptions(threshold=0.15, images_per_second=RATE, resolution=320))
    try:
        wait_for(lambda: worker.snapshot().kept >= 3, what="first kept images")
        remount(disk, "ro")
        wait_for(lambda: "Read-only file system" in (worker.snapshot().last_error or ""), what="the read-only error")
        snap = worker.snapshot()
        kept, errors = snap.kept, snap.error_count
        assert snap.running and snap.last_error.startswith("Saving failed"), snap.last_error
        time.sleep(1.0)
        later = worker.snapshot()
        assert later.running and later.kept == kept and later.error_count > errors
        assert later.error_duration_s >= 0.9
        assert len(assert_consistent(store, order.id)) == kept
        remount(disk, "rw")
        wait_for(lambda: worker.snapshot().kept >= kept + 3, what="saving after the folder became writable")
        wait_for(lambda: worker.snapshot().last_error is None, what="the error to clear")
    finally:
        summary = worker.stop()
    rows = assert_consistent(store, order.id)
    assert summary.kept == len(rows)


def test_disk_full_without_the_reserve_leaves_nothing_behind_once_space_is_back(tmpfs, thumb_descriptor, monkeypatch):
    """Without the free-space check, a write fails on a disk so full that SQLite cannot undo its pending row
    either: the row is removed as soon as the database can be changed again, and the error is still clear."""
    monkeypatch.setattr(Store, "_check_space", lambda self, folder, size: None)
    disk = tmpfs("3m")
    first_ballast = disk / "ballast-first"
    first_ballast.write_bytes(b"\0" * 1024 * 1024)
    store = Store(disk / "export")
    worker = CaptureWorker(DistinctNoiseCamera(), thumb_descriptor, store, backoff_max=0.3)
    order = worker.start("FULL2", CaptureOptions(threshold=0.15, images_per_second=RATE, resolution=480))
    try:
        wait_for(lambda: "No space left" in (worker.snapshot().last_error or ""), what="the disk-full error")
        ballast = fill(disk)
        time.sleep(1.0)
        snap = worker.snapshot()
        assert snap.running and "No space left" in snap.last_error, snap.last_error
        assert not [p for p in order.folder.iterdir() if is_temp_file(p)]
        assert all(r.path.is_file() for r in store.images(order.id))
        kept = snap.kept
        ballast.unlink()
        first_ballast.unlink()
        wait_for(lambda: worker.snapshot().kept >= kept + 2, what="saving after space came back")
    finally:
        summary = worker.stop()
    rows = assert_consistent(store, order.id)
    assert summary.kept == len(rows)
