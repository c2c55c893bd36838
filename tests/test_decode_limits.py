"""Small files that decode to gigabytes (issue 9): refused from their header, decoded reduced (JPEG), or decoded in
bounded memory, at most ``MAX_PARALLEL_DECODES`` at once; through compute_stats, the upload analysis, the
statistics indexer and a real uvicorn API. Peak memory is this process's VmHWM, reset before each measurement.

Without the limits the two attack files took 4.9 GB / 20 s and 4.8 GB / 12 s each (see README, *Limits*).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import requests
from PIL import Image

import api
from tests.browser import memory_kb, reset_peak
from tests.test_api import serve, settings_for
from utils.image_stats import ImageTooLargeError, compute_stats
from utils.imaging import MAX_PARALLEL_DECODES, DecodersBusy, decode_slot
from utils.stats_store import UploadItem, analyze_items, backfill, load_images_frame

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type: grey, RGB, grey + alpha, RGBA


def png_bytes(width: int, height: int, bit_depth: int = 8, colour_type: int = 0,
              bands: list[tuple[int, int]] | None = None) -> bytes:
    """A valid PNG made without the pixels in memory: rows compressed a megabyte at a time.

    ``bands``: (rows, byte value of every sample byte) from the top; default all zero. A 14000 x 14000 16-bit
    grey image is 381 KB.
    """
    row_bytes = (width * _CHANNELS[colour_type] * bit_depth + 7) // 8
    per_chunk = max(1, (1 << 20) // (row_bytes + 1))
    comp = zlib.compressobj(9)
    parts = []
    for rows, value in bands or [(height, 0)]:
        row = b"\0" + bytes([value]) * row_bytes  # filter type 0, then the samples
        for done in range(0, rows, per_chunk):
            parts.append(comp.compress(row * min(per_chunk, rows - done)))
    parts.append(comp.flush())

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


@contextmanager
def peak_mb():
    """Measures this process's peak resident memory above its size at the start, in MB (``result["mb"]``)."""
    reset_peak(os.getpid())
    start = memory_kb(os.getpid())["VmRSS"]
    result: dict[str, float] = {}
    t0 = time.monotonic()
    yield result
    result["s"] = time.monotonic() - t0
    result["mb"] = (memory_kb(os.getpid())["VmHWM"] - start) / 1024


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """The attack's files: 381 KB of 16-bit PNG that is 14000 x 14000, and a 1 x 199,999,999 PNG."""
    return {"square.png": png_bytes(14000, 14000, 16), "line.png": png_bytes(1, 199_999_999)}


BOMB_MESSAGES = {"square.png": "14000 x 14000 = 196,000,000 pixels is more than the limit of 100,000,000 pixels",
                 "line.png": "1 x 199999999 pixels has an aspect ratio beyond the limit of 100:1"}


def big_jpeg(width: int, height: int) -> bytes:
    """A JPEG, left half red and right half blue, made in a child process (its pixels never enter this one)."""
    code = ("import io, sys; from PIL import Image; w, h = map(int, sys.argv[1:]); "
            "im = Image.new('RGB', (w, h), (255, 0, 0)); im.paste((0, 0, 255), (w // 2, 0, w, h)); "
            "buf = io.BytesIO(); im.save(buf, format='JPEG', quality=90); sys.stdout.buffer.write(buf.getvalue())")
    return subprocess.run([sys.executable, "-c", code, str(width), str(height)], check=True,
                          capture_output=True, timeout=120).stdout


# ----------------------------------------------------------------- compute_stats


def test_the_attack_files_are_refused_from_their_header(bombs):
    for name, data in bombs.items():
        assert len(data) < 400_000
        with peak_mb() as peak, pytest.raises(ImageTooLargeError) as info:
            compute_stats(data)
        assert BOMB_MESSAGES[name] in str(info.value), str(info.value)
        assert peak["mb"] < 50 and peak["s"] < 1, (name, peak)


def test_too_many_bytes_per_pixel_is_refused_with_the_limit():
    colour = png_bytes(9000, 9000, 8, 6)  # 81 MP RGBA: 309 MiB decoded at 4 bytes per pixel
    with pytest.raises(ImageTooLargeError, match="need 309 MiB decoded .4 bytes per pixel., more than the limit "
                                                 "of 256 MiB"):
        compute_stats(colour)


def test_a_large_image_within_the_limits_is_computed_in_bounded_memory():
    data = png_bytes(10000, 10000, 16, bands=[(5000, 0xFF), (5000, 0x00)])  # 100 MP, 16-bit: white over black
    with peak_mb() as peak:
        stats = compute_stats(data)
    assert (stats.width, stats.height, stats.mode, stats.decoded_scale) == (10000, 10000, "I;16", 1)
    assert stats.brightness == pytest.approx(0.5) and stats.contrast == pytest.approx(0.5)
    assert stats.sharpness == pytest.approx(2 * 255**2 / 10000, rel=1e-6)  # the edge: two rows of +-255
    assert stats.avg_color.hex == "#808080"
    assert peak["mb"] < 400, peak  # 200 MB of decoded pixels, the rest in strips (measured: about 310 MB)


def test_a_large_jpeg_is_decoded_reduced():
    data = big_jpeg(9000, 9000)  # 81 MP RGB: 309 MiB at full size, over the limit
    with peak_mb() as peak:
        stats = compute_stats(data)
    assert (stats.width, stats.height, stats.decoded_scale) == (9000, 9000, 2)
    assert stats.avg_color.rgb == pytest.approx((0.5, 0.0, 0.5), abs=0.02)
    assert stats.dominant_color.hex in {"#fe0000", "#ff0000", "#0000fe", "#0000ff"}
    assert peak["mb"] < 250, peak  # 4500 x 4500 decoded (measured: about 150 MB)


def test_decodes_wait_for_a_free_slot():
    small = png_bytes(16, 16, 8, 2, bands=[(16, 0x80)])
    with decode_slot(), decode_slot():  # every slot taken (MAX_PARALLEL_DECODES == 2)
        assert MAX_PARALLEL_DECODES == 2
        t0 = time.monotonic()
        with pytest.raises(DecodersBusy, match="2 images are being decoded already .the limit.; try again"):
            compute_stats(small, slot_wait=0.2)
        assert 0.2 <= time.monotonic() - t0 < 1
        done = threading.Event()
        waiting = threading.Thread(target=lambda: (compute_stats(small), done.set()))
        waiting.start()
        assert not done.wait(0.3)  # no timeout: it waits for a slot
    waiting.join(10)
    assert done.is_set()


# ----------------------------------------------------------------- upload analysis and indexer


def test_the_upload_analysis_gives_a_row_per_file(bombs):
    good = png_bytes(64, 48, 8, 2, bands=[(48, 0xC8)])
    items = [UploadItem(name, data) for name, data in bombs.items()] + [UploadItem("good.png", good)]
    with peak_mb() as peak:
        frame = analyze_items(items).set_index("source")
    assert frame.loc["good.png", "stats_status"] == "ok" and frame.loc["good.png", "avg_hex"] == "#c8c8c8"
    for name in bombs:
        assert frame.loc[name, "stats_status"] == "error" and BOMB_MESSAGES[name] in frame.loc[name, "error"]
    assert peak["mb"] < 50, peak


def test_the_indexer_records_the_refusal_and_goes_on(store, bombs):
    order, _ = store.open_order("BOMBS")
    when = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)
    for data in (*bombs.values(), png_bytes(64, 48, 8, 2, bands=[(48, 0x20)])):
        store.save_image(order, data, None, when, suffix=".png")
    with peak_mb() as peak:
        assert backfill(store) == 3
    frame = load_images_frame(store)
    assert list(frame["stats_status"]) == ["error", "error", "ok"], frame[["file_name", "error"]]
    assert all("limit" in e for e in frame["error"][:2])
    assert peak["mb"] < 50, peak


# ----------------------------------------------------------------- the API


def test_the_api_answers_413_for_each_and_for_three_at_once(tmp_path, bombs):
    settings = settings_for(tmp_path / "export", UPLOAD_MAX_BYTES=5_000_000)
    with serve(api.create_app(settings)) as (base, _):
        def post(name: str) -> requests.Response:
            return requests.post(f"{base}/stats", files={"content": (name, bombs[name], "image/png")}, timeout=60)

        with peak_mb() as peak:
            for name in bombs:
                r = post(name)
                assert r.status_code == 413 and BOMB_MESSAGES[name] in r.json()["detail"], r.text
            answers: list[requests.Response] = []
            threads = [threading.Thread(target=lambda n=n: answers.append(post(n)))
                       for n in ("square.png", "line.png", "square.png")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert [r.status_code for r in answers] == [413, 413, 413], [r.text for r in answers]
        assert all("limit" in r.json()["detail"] and "smaller image" in r.json()["detail"] for r in answers)
        assert peak["mb"] < 100 and peak["s"] < 10, peak
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (0, 0, 255)).save(buf, format="PNG")
        r = requests.post(f"{base}/stats", files={"content": ("ok.png", buf.getvalue(), "image/png")}, timeout=60)
        assert r.status_code == 200 and r.json()["color_data"]["avg_color"]["hex"] == "#0000ff"
