"""Per-image statistics: known answers on images made here, EXIF and GPS written by Pillow, broken files,
and the statistics table with its indexer on a real SQLite store."""

from __future__ import annotations

import io
import json
import math
import sqlite3
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from utils.image_stats import (
    ImageStatsError,
    average_color,
    compute_stats,
    dominant_color,
    exif_capture_time,
    gps_position,
    json_safe,
    resolve_capture_time,
    rgb_hex,
)
from utils.imaging import encode_jpeg, from_array, make_exif
from utils.stats_store import StatsIndexer, UploadItem, analyze_items, backfill, load_images_frame, stats_rows

EPS = 1e-8


def png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG") if mode else Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def half_red_half_blue(red_first: bool = True) -> np.ndarray:
    arr = np.zeros((10, 12, 3), np.uint8)
    top, bottom = (0, 2) if red_first else (2, 0)
    arr[:5, :, top] = 255
    arr[5:, :, bottom] = 255
    return arr


# ----------------------------------------------------------------- colours: known answers

GEO_RB = math.sqrt(255 * EPS) / 255  # a channel that is 255 in half and 0 in the other half of the pixels
HARM_RB = 2 / (1 / 255 + 1 / EPS) / 255


@pytest.mark.parametrize(
    "method, rgb, hex_",
    [
        ("arithmetic", (0.5, 0.0, 0.5), "#800080"),
        ("geometric", (GEO_RB, EPS / 255, GEO_RB), "#000000"),
        ("harmonic", (HARM_RB, EPS / 255, HARM_RB), "#000000"),
    ],
)
def test_half_red_half_blue_by_hand(method, rgb, hex_):
    stats = compute_stats(png(half_red_half_blue()), method)
    assert stats.avg_color.rgb == pytest.approx(rgb, rel=1e-9, abs=1e-18)
    assert stats.avg_color.hex == hex_
    # equal halves: a tie, which goes to the lower hue (red, 0 deg, before blue, 240 deg)
    assert stats.dominant_color.rgb == (1.0, 0.0, 0.0) and stats.dominant_color.hex == "#ff0000"
    assert stats.color_data() == {
        "avg_color": {"rgb": list(stats.avg_color.rgb), "hex": hex_, "method": method},
        "dominant_color": {"rgb": [1.0, 0.0, 0.0], "hex": "#ff0000"},
    }
    # Rec. 601 luminance: red 76, blue 29 (OpenCV rounding)
    assert stats.brightness == pytest.approx((76 + 29) / 2 / 255, abs=1e-6)
    assert stats.contrast == pytest.approx((76 - 29) / 2 / 255, abs=1e-6)
    assert (stats.width, stats.height, stats.format, stats.opaque_fraction) == (12, 10, "PNG", 1.0)


def test_tie_rule_does_not_depend_on_pixel_order():
    assert rgb_hex(dominant_color(half_red_half_blue(red_first=False).reshape(-1, 3))) == "#ff0000"


def test_means_without_zeros_by_hand():
    pixels = np.array([[200, 100, 50], [50, 100, 200]] * 50, np.uint8)
    assert average_color(pixels, "arithmetic") * 255 == pytest.approx([125, 100, 125])
    assert average_color(pixels, "geometric") * 255 == pytest.approx([100, 100, 100])  # sqrt(200*50)
    assert average_color(pixels, "harmonic") * 255 == pytest.approx([80, 100, 80])  # 2 / (1/200 + 1/50)
    with pytest.raises(ValueError, match="arithmetic, geometric, harmonic"):
        average_color(pixels, "median")


def test_dominant_groups_reds_across_zero_degrees():
    # 30 % at 350 deg, 30 % at 10 deg, 40 % blue: the two reds are one sector, so red wins
    pixels = np.array([[255, 0, 43]] * 30 + [[255, 43, 0]] * 30 + [[0, 0, 255]] * 40, np.uint8)
    assert dominant_color(pixels) * 255 == pytest.approx([255, 21.5, 21.5])


def test_greys_are_binned_by_value_whatever_their_hue():
    # noisy greys (three different hues, saturation < 0.15) outnumber pure green
    greys = [[128, 128, 128], [130, 128, 126], [126, 128, 130]] * 20
    pixels = np.array(greys + [[0, 255, 0]] * 40, np.uint8)
    assert dominant_color(pixels) * 255 == pytest.approx([128, 128, 128])
    dark = np.array([[12, 0, 0], [0, 12, 0], [0, 0, 12]] * 20 + [[255, 255, 0]] * 50, np.uint8)
    assert rgb_hex(dominant_color(dark)) == "#040404"  # dark noise is black, not three colours


def test_rgba_transparent_pixels_are_left_out():
    arr = np.zeros((10, 10, 4), np.uint8)
    arr[:, :5] = (0, 255, 0, 255)
    arr[:, 4, 3] = 128  # just opaque
    arr[:, 5:] = (255, 0, 0, 127)  # just transparent
    stats = compute_stats(png(arr, "RGBA"))
    assert stats.avg_color.rgb == (0.0, 1.0, 0.0) and stats.avg_color.hex == "#00ff00"
    assert stats.dominant_color.hex == "#00ff00"
    assert stats.opaque_fraction == 0.5
    assert stats.brightness == pytest.approx(150 / 255, abs=1e-6) and stats.contrast == 0


def test_no_opaque_pixel_gives_no_color_data():
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 0] = 255
    stats = compute_stats(png(arr, "RGBA"))
    assert stats.color_data() is None and stats.avg_color is None and stats.brightness is None
    assert stats.opaque_fraction == 0.0


def test_other_modes_do_not_crash():
    pal = Image.new("P", (6, 6), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 6, 3))
    buf = io.BytesIO()
    pal.save(buf, format="PNG", transparency=1)  # the blue half is transparent
    stats = compute_stats(buf.getvalue())
    assert stats.avg_color.hex == "#ff0000" and stats.opaque_fraction == 0.5
    deep = np.full((4, 4), 65535, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(deep).save(buf, format="PNG")
    assert compute_stats(buf.getvalue()).brightness == pytest.approx(1.0)
    for mode in ("L", "LA", "CMYK", "1", "I", "F"):
        img = Image.new(mode, (5, 5))
        buf = io.BytesIO()
        img.save(buf, format="TIFF")
        assert compute_stats(buf.getvalue()).width == 5


# ----------------------------------------------------------------- brightness, contrast, sharpness


def test_brightness_contrast_sharpness():
    flat = compute_stats(png(np.full((32, 32, 3), 128, np.uint8)))
    assert (flat.brightness, flat.contrast, flat.sharpness) == (pytest.approx(128 / 255), 0.0, 0.0)
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert compute_stats(png(np.dstack([checker] * 3))).contrast == pytest.approx(0.5)
    edge = np.zeros((64, 64), np.uint8)
    edge[:, 32:] = 255
    sharp = compute_stats(png(np.dstack([edge] * 3)))
    blurred = compute_stats(png(np.dstack([cv2.GaussianBlur(edge, (0, 0), 3)] * 3)))
    assert sharp.sharpness > 10 * blurred.sharpness > 0
    assert blurred.brightness == pytest.approx(sharp.brightness, abs=0.01)


# ----------------------------------------------------------------- EXIF and GPS


def jpeg_with_exif(gps: dict | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "ACME"
    exif[ExifTags.Base.Model] = "Cam 1"
    exif[ExifTags.Base.XResolution] = 72.0
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    ifd[ExifTags.Base.SubsecTimeOriginal] = "25"
    ifd[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    ifd[ExifTags.Base.ExposureTime] = IFDRational(1, 250)
    ifd[ExifTags.Base.FNumber] = 2.8
    ifd[ExifTags.Base.FocalLength] = IFDRational(5, 0)  # broken rational
    ifd[ExifTags.Base.MakerNote] = b"\x00\x01\xff\xfe binary"
    ifd[ExifTags.Base.ExifVersion] = b"0232"
    ifd[ExifTags.Base.UserComment] = b"ASCII\x00\x00\x00hello"
    if gps is not None:
        g = exif.get_ifd(ExifTags.IFD.GPSInfo)
        for key, value in gps.items():
            g[getattr(ExifTags.GPS, key)] = value
    return encode_jpeg(Image.new("RGB", (40, 30), (10, 200, 30)), 95, exif)


def test_exif_tags_are_json_safe_and_gps_is_decoded():
    data = jpeg_with_exif({
        "GPSLatitudeRef": "N", "GPSLatitude": (30.0, 0.0, 0.0),
        "GPSLongitudeRef": "W", "GPSLongitude": (120.0, 30.0, 0.0),
        "GPSAltitudeRef": b"\x01", "GPSAltitude": 15.5,
    })
    stats = compute_stats(data)
    exif = stats.exif
    assert json.loads(json.dumps(exif, allow_nan=False)) == exif
    assert exif["Make"] == "ACME" and exif["Model"] == "Cam 1" and exif["XResolution"] == 72.0
    assert exif["ExposureTime"] == 0.004 and exif["FNumber"] == 2.8
    assert exif["FocalLength"] is None  # 5/0
    assert "MakerNote" not in exif  # binary: dropped
    assert exif["ExifVersion"] == "0232" and exif["UserComment"] == "hello"
    assert "ExifOffset" not in exif and isinstance(exif["GPSInfo"], dict)
    assert exif["GPSInfo"]["GPSLatitude"] == [30.0, 0.0, 0.0]
    assert stats.gps == exif["GPSPosition"] == {"latitude": 30.0, "longitude": -120.5, "altitude": -15.5}
    assert stats.exif_captured_at == datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=timezone(timedelta(hours=2)))
    row = stats.as_row()
    assert (row["gps_latitude"], row["gps_longitude"], row["gps_altitude"]) == (30.0, -120.5, -15.5)


def test_zero_gps_placeholder_in_a_file_is_dropped():
    data = jpeg_with_exif({"GPSLatitudeRef": "N", "GPSLatitude": (0.0, 0.0, 0.0),
                           "GPSLongitudeRef": "E", "GPSLongitude": (0.0, 0.0, 0.0)})
    stats = compute_stats(data)
    assert "GPSInfo" in stats.exif and "GPSPosition" not in stats.exif and stats.gps is None


@pytest.mark.parametrize(
    "gps, expected",
    [
        ({}, None),
        ({"GPSLatitude": (), "GPSLongitude": ()}, None),
        ({"GPSLatitude": (0, 0, 0), "GPSLongitude": (0, 0, 0)}, None),
        ({"GPSLatitude": (95, 0, 0), "GPSLongitude": (10, 0, 0)}, None),
        ({"GPSLatitude": (10, 70, 0), "GPSLongitude": (10, 0, 0)}, None),
        ({"GPSLatitude": (IFDRational(0, 0), 0, 0), "GPSLongitude": (10, 0, 0)}, None),
        ({"GPSLatitude": ("x", 0, 0), "GPSLongitude": (10, 0, 0)}, None),
        ({"GPSLatitude": (30, 0, 0), "GPSLongitude": (0, 0, 0)}, (30.0, 0.0)),  # real: on the prime meridian
        ({"GPSLatitude": (0, 0, 0), "GPSLongitude": (30, 0, 0)}, (0.0, 30.0)),  # real: on the equator
        ({"GPSLatitudeRef": b"S\x00", "GPSLatitude": (33, 51, 54.0), "GPSLongitudeRef": "E",
          "GPSLongitude": (151, 12, 36.0)}, (-33.865, 151.21)),
    ],
)
def test_gps_validation(gps, expected):
    pos = gps_position(gps)
    if expected is None:
        assert pos is None
    else:
        assert (pos["latitude"], pos["longitude"]) == pytest.approx(expected) and pos["altitude"] is None


def test_json_safe_never_raises():
    class Weird:
        def __str__(self):
            raise RuntimeError("no")

    assert json_safe(float("nan")) is None and json_safe(IFDRational(3, 4)) == 0.75
    assert json_safe((IFDRational(1, 2), 3)) == [0.5, 3]
    assert json_safe({"a": b"\xff\xfe\x00\x01", "b": b"ok\x00"}) == {"b": "ok"}
    assert json_safe(Weird()) is not None  # dropped, not raised
    assert json_safe("x\x00") == "x"


def test_capture_time_sources():
    exif_t = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    db_t = datetime(2024, 2, 1, tzinfo=timezone.utc)
    file_t = datetime(2024, 3, 1, tzinfo=timezone.utc)
    assert resolve_capture_time(exif_t, db_t, file_t) == (exif_t, "exif")
    assert resolve_capture_time(None, db_t, file_t) == (db_t, "database")
    assert resolve_capture_time(None, None, file_t) == (file_t, "file")
    assert resolve_capture_time(None, None, None) == (None, None)
    assert exif_capture_time({"DateTimeOriginal": "0000:00:00 00:00:00"}) is None
    assert exif_capture_time({"DateTimeOriginal": "yesterday"}) is None
    naive = exif_capture_time({"DateTimeOriginal": "2024:05:06 07:08:09"})
    assert naive.tzinfo is not None and naive.replace(tzinfo=None) == datetime(2024, 5, 6, 7, 8, 9)


# the attack of issue 9: capture times that leave datetime's range once moved to UTC or local time
CRAFTED_DATES = [("0001:01:01 00:00:00", "+14:00"), ("9999:12:31 23:59:59", "-12:00"),
                 ("0001:01:01 00:00:00", None), ("9999:12:31 23:59:59", None)]


def jpeg_dated(when: str, offset: str | None, colour=(90, 90, 90)) -> bytes:
    """A JPEG whose EXIF DateTimeOriginal (and OffsetTimeOriginal) is exactly ``when`` (``offset``)."""
    exif = Image.Exif()
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = when
    if offset:
        ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    return encode_jpeg(Image.new("RGB", (16, 16), colour), 90, exif)


def test_out_of_range_capture_times_are_no_capture_time():
    for when, offset in CRAFTED_DATES:
        stats = compute_stats(jpeg_dated(when, offset))
        assert stats.exif_captured_at is None and stats.exif["DateTimeOriginal"] == when, (when, offset)
    assert exif_capture_time({"DateTimeOriginal": "1900:01:01 00:00:00", "OffsetTimeOriginal": "-01:00"}) == \
        datetime(1900, 1, 1, 1, tzinfo=timezone.utc)  # the earliest kept (in UTC)
    assert exif_capture_time({"DateTimeOriginal": "1900:01:01 00:00:00", "OffsetTimeOriginal": "+01:00"}) is None
    assert exif_capture_time({"DateTimeOriginal": "2199:12:31 23:59:59", "OffsetTimeOriginal": "+00:00"}) is not None


def test_upload_analysis_gives_a_row_per_file_despite_crafted_dates():
    items = [UploadItem(f"crafted-{i}.jpg", jpeg_dated(w, o)) for i, (w, o) in enumerate(CRAFTED_DATES)]
    items.append(UploadItem("good.jpg", jpeg_dated("2024:05:06 07:08:09", "+02:00", (200, 0, 0))))
    frame = analyze_items(items).set_index("source")
    assert len(frame) == 5 and set(frame["stats_status"]) == {"ok"}, frame[["stats_status", "error"]]
    assert frame.loc["good.jpg", "captured_at"] == datetime(2024, 5, 6, 5, 8, 9, tzinfo=timezone.utc)
    assert frame["captured_at_source"].isna().tolist() == [True] * 4 + [False]


def test_the_indexer_survives_crafted_dates_and_indexes_everything(store):
    order, _ = store.open_order("DATES")
    t0 = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)
    indexer = StatsIndexer(store, "arithmetic", poll_interval=30).start()
    try:
        assert indexer.wait_idle(20)
        for i, (when, offset) in enumerate(CRAFTED_DATES):
            save(store, order, jpeg_dated(when, offset), t0 + timedelta(minutes=i))
            save(store, order, Image.new("RGB", (32, 32), (0, 0, 200)), t0 + timedelta(minutes=i, seconds=30))
        assert indexer.wait_idle(20), indexer.last_error
        assert indexer.running
        frame = load_images_frame(store)
        assert len(frame) == 8 and set(frame["stats_status"]) == {"ok"}, frame[["file_name", "stats_status", "error"]]
        crafted = frame[frame["captured_at_source"] == "database"]
        assert len(crafted) == 4 and (frame["captured_at_source"] == "exif").sum() == 4
        later = save(store, order, Image.new("RGB", (32, 32), (0, 200, 0)), t0 + timedelta(hours=1))
        assert indexer.wait_idle(20)
        assert stats_rows(store, [later.id])[later.id]["dominant_hex"] == "#00c800"
    finally:
        indexer.stop()


# ----------------------------------------------------------------- bad files


def test_truncated_garbage_and_empty_files_raise_clear_errors():
    full = encode_jpeg(from_array(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), 90)
    with pytest.raises(ImageStatsError, match="truncated"):
        compute_stats(full[: len(full) // 2])
    with pytest.raises(ImageStatsError, match="not an image"):
        compute_stats(b"this is not an image at all")
    with pytest.raises(ImageStatsError, match="empty"):
        compute_stats(b"")


# ----------------------------------------------------------------- the table and the indexer


def save(store, order, img: Image.Image | bytes, when: datetime, exif: bool = True, distance: float | None = 0.4):
    """Keep ``img`` in ``order``: JPEG with the dashboard's EXIF, or (exif=False) a lossless PNG."""
    if isinstance(img, bytes):
        return store.save_image(order, img, None, when, distance=distance)
    if not exif:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return store.save_image(order, buf.getvalue(), None, when, distance=distance, suffix=".png")
    data = encode_jpeg(img, 90, make_exif(when, order.order_number, distance))
    return store.save_image(order, data, None, when, distance=distance)


def test_backfill_records_errors_and_the_indexer_follows_new_images(store):
    order, _ = store.open_order("IDX-1")
    t0 = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)
    good = [save(store, order, Image.new("RGB", (64, 48), (200, 10, 10)), t0 + timedelta(hours=i), exif=i > 0)
            for i in range(3)]
    full = encode_jpeg(Image.new("RGB", (64, 48), (0, 0, 200)), 90)
    broken = save(store, order, full[: len(full) // 2], t0)
    assert backfill(store) == 4
    rows = stats_rows(store, [r.id for r in (*good, broken)])
    assert rows[good[0].id]["dominant_hex"] == "#c80a0a"  # the PNG, exactly
    assert all(rows[r.id]["error"] is None and rows[r.id]["dom_r"] > 0.7 > 0.1 > rows[r.id]["dom_b"] for r in good)
    assert "truncated" in rows[broken.id]["error"] and rows[broken.id]["width"] is None
    assert rows[good[1].id]["exif"]["ImageDescription"] == "order IDX-1" and rows[good[0].id]["exif"] == {}
    assert backfill(store) == 0  # nothing left; errors are not retried

    indexer = StatsIndexer(store, "arithmetic", poll_interval=30).start()  # a long poll: only notify() wakes it
    try:
        assert indexer.wait_idle(20)
        new = save(store, order, Image.new("RGB", (64, 48), (10, 10, 200)), t0 + timedelta(days=1), exif=False)
        assert indexer.wait_idle(20)
        assert stats_rows(store, [new.id])[new.id]["dominant_hex"] == "#0a0ac8"
    finally:
        indexer.stop()
    assert not indexer.running


def test_indexer_recomputes_when_the_averaging_method_changes(store):
    order, _ = store.open_order("IDX-2")
    rec = save(store, order, Image.fromarray(half_red_half_blue()), datetime(2024, 5, 1, tzinfo=timezone.utc), exif=False)
    backfill(store, "arithmetic")
    assert stats_rows(store, [rec.id])[rec.id]["avg_hex"] == "#800080"
    assert backfill(store, "geometric") == 1
    row = stats_rows(store, [rec.id])[rec.id]
    assert (row["avg_method"], row["avg_hex"]) == ("geometric", "#000000")


def test_images_frame_joins_orders_stats_and_capture_time_sources(store):
    order, _ = store.open_order("FRAME")
    db_time = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
    with_exif = save(store, order, Image.new("RGB", (32, 32), "white"), db_time)
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), "black").save(buf, format="PNG")
    no_exif = save(store, order, buf.getvalue(), db_time + timedelta(minutes=5))
    pending_stats = load_images_frame(store)
    assert list(pending_stats["stats_status"]) == ["pending", "pending"]
    backfill(store)
    frame = load_images_frame(store, with_exif=True).set_index("image_id")
    assert frame.loc[with_exif.id, "captured_at_source"] == "exif"
    assert frame.loc[with_exif.id, "captured_at"] == db_time  # the EXIF time written at save (ms precision)
    assert frame.loc[no_exif.id, "captured_at_source"] == "database"
    assert frame.loc[no_exif.id, "captured_at"] == db_time + timedelta(minutes=5)
    assert (frame.loc[no_exif.id, "width"], frame.loc[no_exif.id, "format"]) == (16, "PNG")
    assert frame.loc[with_exif.id, "order_number"] == "FRAME" and frame.loc[with_exif.id, "stats_status"] == "ok"
    assert frame.loc[with_exif.id, "exif"]["Software"] == "extract-unique-images"
    # one row per image, in the capture database itself
    con = sqlite3.connect(store.db_path)
    assert con.execute("SELECT COUNT(*) FROM image_stats").fetchone()[0] == 2
    con.close()


def test_statistics_are_kept_and_read_on_both_back_ends(store_factory):
    """The image_stats table in the station's database, SQLite or PostgreSQL: backfill, the indexer thread, the
    per-image table with labels, the row going with its image when the trash is purged."""
    import pandas as pd

    from utils.storage import utc_now

    store = store_factory()
    order, _ = store.open_order("BOTH")
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    a = save(store, order, Image.fromarray(half_red_half_blue()), t0, exif=False)
    b = save(store, order, Image.new("RGB", (32, 32), "white"), t0 + timedelta(minutes=1))
    store.set_labels(a.id, [("tabby", 0.7), ("tiger_cat", 0.25)], "m")
    assert backfill(store) == 2 and backfill(store) == 0
    assert stats_rows(store, [a.id, b.id])[a.id]["avg_hex"] == "#800080"
    frame = load_images_frame(store, with_exif=True).set_index("image_id")
    assert list(frame.index) == [a.id, b.id] and list(frame["stats_status"]) == ["ok", "ok"]
    assert frame.loc[a.id, "labels"] == "tabby 0.70; tiger_cat 0.25" and pd.isna(frame.loc[b.id, "labels"])
    assert frame.loc[b.id, "exif"]["ImageDescription"] == "order BOTH" and frame.loc[b.id, "captured_at"] == t0 + \
        timedelta(minutes=1)
    assert backfill(store, "geometric") == 2  # made with the other averaging method: computed again
    indexer = StatsIndexer(store, "geometric", poll_interval=30).start()
    try:
        c = save(store, order, Image.new("RGB", (16, 16), (10, 10, 200)), t0 + timedelta(minutes=2), exif=False)
        assert indexer.wait_idle(20)
        assert stats_rows(store, [c.id])[c.id]["dominant_hex"] == "#0a0ac8"
    finally:
        indexer.stop()
    store.trash_images(order.id, [b.id])
    assert store.purge_trash(utc_now() + timedelta(seconds=1)) == (1, 0)
    assert set(stats_rows(store, [a.id, b.id, c.id])) == {a.id, c.id}
