"""Video writer (codec fallback, real frame rate, browser copy), image decoding limits and the order ZIP."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest
from PIL import Image

from utils.exports import IMAGE_COLUMNS, order_zip_chunks
from utils.imaging import ImageDecodeError, decode_image, encode_jpeg, needed_size
from utils.video import CODEC_ORDER, VideoRecorder, browser_video


def _frames(n, size=(160, 120)):
    for i in range(n):
        arr = np.zeros((size[1], size[0], 3), np.uint8)
        arr[:, : (i * 7) % size[0]] = (220, 30, 30)
        yield Image.fromarray(arr)


def test_missing_codec_falls_back_to_a_working_one(tmp_path):
    rec = VideoRecorder(tmp_path / "v.mp4", fps=10, preferred_codec="h264")
    codec = rec.probe()
    assert codec in ("h264", *CODEC_ORDER)
    t0 = datetime.now(timezone.utc)
    for i, img in enumerate(_frames(12)):
        rec.write(img, t0 + timedelta(seconds=i / 10))
    path, fps = rec.close()
    assert rec.codec == codec and path.exists() and fps == 10
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temporary file left


def test_real_frame_rate_is_written_into_the_file(tmp_path):
    rec = VideoRecorder(tmp_path / "slow.mp4", fps=10)
    t0 = datetime.now(timezone.utc)
    for i, img in enumerate(_frames(9)):
        rec.write(img, t0 + timedelta(seconds=i * 0.25))  # the camera managed 4 frames/s, not 10
    path, fps = rec.close()
    assert fps == pytest.approx(4.0, abs=0.01)
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(4.0, abs=0.05)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 9
    cap.release()


def test_a_camera_outage_is_a_freeze_of_its_length_and_the_video_plays_at_real_time(tmp_path):
    rec = VideoRecorder(tmp_path / "gap.mp4", fps=5)
    t0 = datetime.now(timezone.utc)
    frames = list(_frames(20))
    times = [i * 0.2 for i in range(10)] + [1.8 + 4.0 + i * 0.2 for i in range(10)]  # 4 s without frames
    for img, t in zip(frames, times):
        rec.write(img, t0 + timedelta(seconds=t))
    path, fps = rec.close()
    assert rec.freeze_frames == 19 and rec.frames == 39  # 4 s at 5 frames/s, the last frame before it repeated
    assert fps == 5  # plays at real time: no rewrite at a lower rate
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 39
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) / cap.get(cv2.CAP_PROP_FPS) == pytest.approx(times[-1] - times[0]
                                                                                              + 0.2, abs=0.25)
    read = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        read.append(frame.astype(int))
    cap.release()
    before_gap = read[9]
    assert all(np.abs(read[i] - before_gap).mean() < 3 for i in range(10, 29))  # the freeze shows the last frame
    assert np.abs(read[29] - before_gap).mean() > 3  # then the camera's frames go on


def test_a_slow_camera_is_not_mistaken_for_an_outage(tmp_path):
    rec = VideoRecorder(tmp_path / "slow.mp4", fps=10)
    t0 = datetime.now(timezone.utc)
    for i, img in enumerate(_frames(12)):  # 3.4 of 10 frames/s, with jitter: no freeze is made up
        rec.write(img, t0 + timedelta(seconds=i / 3.4 + (0.05 if i % 3 == 0 else 0.0)))
    path, fps = rec.close()
    assert rec.freeze_frames == 0 and fps == pytest.approx(3.4, abs=0.15)


def test_abort_and_empty_recording_leave_nothing(tmp_path):
    rec = VideoRecorder(tmp_path / "a.mp4", fps=5)
    assert rec.close() == (None, None)
    rec2 = VideoRecorder(tmp_path / "b.mp4", fps=5)
    rec2.write(next(_frames(1)), datetime.now(timezone.utc))
    rec2.abort()
    assert list(tmp_path.iterdir()) == []


def test_browser_copy_is_webm_and_reused(tmp_path):
    rec = VideoRecorder(tmp_path / "o.mp4", fps=5, preferred_codec="mp4v")
    t0 = datetime.now(timezone.utc)
    for i, img in enumerate(_frames(6)):
        rec.write(img, t0 + timedelta(seconds=i / 5))
    path, _ = rec.close()
    preview = browser_video(path)
    assert preview.suffix == ".webm" and preview != path
    cap = cv2.VideoCapture(str(preview))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) in (6, 7)  # WebM counts are estimated
    cap.release()
    mtime = preview.stat().st_mtime_ns
    assert browser_video(path) == preview and preview.stat().st_mtime_ns == mtime


def test_decoding_reduces_jpeg_and_refuses_bad_bytes():
    big = encode_jpeg(Image.new("RGB", (2448, 2048), (90, 120, 150)), 95)
    img = decode_image(big, max_side=480)
    assert img.size == (612, 512)  # DCT-scaled 1/4: still >= 480 on the long side and >= 224 on the short
    assert needed_size((2448, 2048), 480) == (480, 402)
    assert decode_image(big).size == (2448, 2048)
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(b"<html>login</html>")
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(big[: len(big) // 3])


def test_decompression_bomb_is_refused_with_a_message():
    buf = io.BytesIO()
    Image.new("1", (25_000, 10_000)).save(buf, format="PNG")  # 250 MP, a few hundred KB on disk
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(buf.getvalue())


def test_order_zip_holds_images_and_csv(store):
    order, _ = store.open_order("ZIP1")
    t = datetime.now(timezone.utc)
    recs = [store.save_image(order, encode_jpeg(Image.new("RGB", (40, 30), (i, 0, 0)), 90), np.zeros(576, np.float32), t,
                             width=40, height=30, distance=None if i == 0 else 0.5) for i in range(3)]
    store.trash_images(order.id, [recs[1].id])
    zf = zipfile.ZipFile(io.BytesIO(b"".join(order_zip_chunks(store, store.get_order(order.id)))))
    names = sorted(zf.namelist())
    assert names == sorted([f"ZIP1/{recs[0].file_name}", f"ZIP1/{recs[2].file_name}", "ZIP1/images.csv"])
    lines = zf.read("ZIP1/images.csv").decode().splitlines()
    assert lines[0].split(",") == IMAGE_COLUMNS and len(lines) == 3
    assert zf.read(f"ZIP1/{recs[2].file_name}") == recs[2].path.read_bytes()
