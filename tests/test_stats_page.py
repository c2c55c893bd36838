"""The statistics page and the upload analysis with AppTest on a real store, and their exports opened and checked."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timezone

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, shown
from tests.test_url_fetch import ImageServer
from utils.imaging import encode_jpeg, make_exif
from utils.stats_plots import build_figures, export_zip, filter_images, png_export_available, table_csv
from utils.stats_store import IMAGE_COLUMNS, backfill, ensure_indexer, load_images_frame
from utils.storage import Store

APP = str(ROOT / "app.py")
UPLOAD_PAGE = str(ROOT / "pages" / "upload.py")
PLOTS = {"images_per_day", "images_per_month", "images_per_order", "distance", "brightness", "sharpness",
         "dominant_colors"}


@pytest.fixture()
def env(app_env):
    return app_env


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def jpeg(colour, when: datetime | None, number: str = "X", size=(64, 48)) -> bytes:
    return encode_jpeg(Image.new("RGB", size, colour), 90, make_exif(when, number, 0.4) if when else None)


def populate(export) -> Store:
    """Order A-1: 3 images in April and May 2024; order B-2: 2 images and one truncated file. Both closed."""
    store = Store(export)
    a, _ = store.open_order("A-1")
    for i, when in enumerate([utc(2024, 4, 10, 12), utc(2024, 4, 20, 12), utc(2024, 5, 5, 12)]):
        store.save_image(a, jpeg((200, 20 * i, 0), when, "A-1"), None, when, distance=None if i == 0 else 0.3 + i / 10)
    store.close_order(a.id)
    b, _ = store.open_order("B-2")
    for i, when in enumerate([utc(2024, 5, 6, 9), utc(2024, 5, 6, 10)]):
        store.save_image(b, jpeg((0, 0, 200), when, "B-2"), None, when, distance=0.45)
    full = jpeg((0, 200, 0), None)
    store.save_image(b, full[: len(full) // 2], None, utc(2024, 5, 6, 11), distance=0.5)
    store.close_order(b.id)
    return store


def stats_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/statistics_page.py").run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_statistics_page_figures_plots_table_and_filters(env):
    backfill(populate(env))
    at = stats_page()
    m = metrics(at)
    assert (m["Orders"], m["Images"], m["Images per order"]) == ("2", "6", "3.0")
    assert m["Storage used"].endswith("KB") and "min" in m["Capture duration"]
    assert len(at.get("plotly_chart")) == len(PLOTS)
    assert sorted(len(d.value) for d in at.dataframe) == [1, 6]  # the unreadable file, the image table
    assert any("1 image(s) could not be read" in e.label for e in at.expander)
    assert [b.proto.label for b in at.get("download_button")] == ["Download table (CSV)",
                                                                  "Download plots and table (ZIP)"]

    at.multiselect(key="stats_orders").set_value(["A-1"]).run()
    m = metrics(at)
    assert (m["Orders"], m["Images"]) == ("1", "3")
    assert len(at.get("plotly_chart")) == len(PLOTS)  # no unreadable image in A-1: all plots still there
    at.date_input(key="stats_dates").set_value((date(2024, 5, 1), date(2024, 5, 31))).run()
    assert (metrics(at)["Orders"], metrics(at)["Images"]) == ("1", "1")
    at.multiselect(key="stats_orders").set_value([]).run()
    assert (metrics(at)["Orders"], metrics(at)["Images"]) == ("2", "4")
    assert not at.exception


def test_statistics_page_starts_the_indexer(env):
    store = populate(env)
    at = stats_page()  # nothing computed yet: the page starts the background indexer
    indexer = ensure_indexer(store, "arithmetic")
    assert indexer.running and indexer.wait_idle(30)
    at.run()
    assert not any("still being computed" in i.value for i in at.info)
    frame = load_images_frame(store)
    assert sorted(frame["stats_status"]) == ["error"] + ["ok"] * 5
    assert len(at.get("plotly_chart")) == len(PLOTS)


def test_exports_csv_and_zip(env):
    store = populate(env)
    backfill(store)
    images = load_images_frame(store)
    figs = build_figures(images)
    assert set(figs) == PLOTS
    csv = table_csv(images, IMAGE_COLUMNS)
    table = pd.read_csv(io.BytesIO(csv))
    assert list(table.columns) == IMAGE_COLUMNS and len(table) == 6
    assert sorted(table["image_id"]) == sorted(images["image_id"])
    bad = table[table["stats_status"] == "error"]
    assert len(bad) == 1 and "truncated" in bad["error"].iloc[0] and bad["order_number"].iloc[0] == "B-2"
    assert set(table["captured_at_source"]) == {"exif", "database"}
    assert pd.to_datetime(table["captured_at"], utc=True).min() == pd.Timestamp("2024-04-10 12:00", tz="UTC")
    only_a = table_csv(filter_images(images, orders=["A-1"]), IMAGE_COLUMNS)
    assert len(pd.read_csv(io.BytesIO(only_a))) == 3

    html_zip = zipfile.ZipFile(io.BytesIO(export_zip(figs, csv, png=False)))
    assert html_zip.namelist() == ["images.csv"] + [f"plots/{name}.html" for name in figs]
    assert html_zip.read("images.csv") == csv
    page = html_zip.read("plots/images_per_month.html").decode()
    assert "<html>" in page[:100] and "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined

    auto = zipfile.ZipFile(io.BytesIO(export_zip(figs, csv)))
    suffix = ".png" if png_export_available() else ".html"
    assert auto.namelist() == ["images.csv"] + [f"plots/{name}{suffix}" for name in figs]
    if suffix == ".png":
        with Image.open(io.BytesIO(auto.read("plots/dominant_colors.png"))) as img:
            assert img.format == "PNG" and img.size == (1000, 550)


def test_upload_analysis_of_files_and_urls_stores_nothing(env, monkeypatch):
    monkeypatch.setenv("URL_ALLOW_PRIVATE", "true")
    server = ImageServer()
    try:
        at = AppTest.from_file(UPLOAD_PAGE, default_timeout=60).run()
        assert not at.exception
        at.button(key="upload_analyse").click().run()
        assert any("at least one image" in w.value for w in at.warning)

        buf = io.BytesIO()
        Image.new("RGB", (20, 10), (255, 255, 0)).save(buf, format="PNG")
        at.file_uploader(key="upload_files").set_value([
            ("jan.jpg", jpeg((250, 0, 0), utc(2024, 1, 15, 9)), "image/jpeg"),
            ("feb.jpg", jpeg((0, 0, 250), utc(2024, 2, 20, 9)), "image/jpeg"),
            ("plain.png", buf.getvalue(), "image/png"),
            ("broken.png", b"garbage, not a png", "image/png"),
        ])
        urls = f"{server.url('/red.png')}\n# a comment\n{server.url('/missing')}\nftp://example.com/x.png\n"
        at.text_area(key="upload_urls").input(urls)
        at.button(key="upload_analyse").click().run()
        assert not at.exception
        m = metrics(at)
        assert (m["Images analysed"], m["Failed"], m["With capture time"]) == ("4", "3", "3")
        errors = " | ".join(shown(e.value) for e in at.error)
        assert "broken.png: not an image" in errors and "HTTP 404" in errors and "only http://" in errors
        assert len(at.get("plotly_chart")) == 5  # per day, per month, brightness, sharpness, colours
        (table,) = at.dataframe
        assert len(table.value) == 7
        by_source = table.value.set_index("source")
        assert by_source.loc[server.url("/red.png"), "captured_at_source"] == "file"
        assert by_source.loc["jan.jpg", "captured_at_source"] == "exif"
        assert by_source.loc["plain.png", "dominant_hex"] == "#ffff00"
        assert [b.proto.label for b in at.get("download_button")] == ["Download table (CSV)",
                                                                      "Download plots and table (ZIP)"]
    finally:
        server.close()
    assert not env.exists()  # nothing written into the orders (not even a database)


def test_pages_are_for_admins_only_when_a_login_is_configured(env, monkeypatch):
    from utils.auth import User

    monkeypatch.setenv("DUMMY_USER", "ole")
    monkeypatch.setenv("DUMMY_PW", "pw-of-ole")  # a login is configured: nobody is admin without logging in
    for page in (UPLOAD_PAGE, str(ROOT / "pages" / "statistics_page.py")):
        at = AppTest.from_file(page, default_timeout=60)
        at.session_state["auth_user"] = User("ole", "operator")
        at.run()
        assert [e.value for e in at.error] == ["This page is for administrators."], page
        assert not at.get("plotly_chart") and not at.file_uploader and not at.metric
    assert not env.exists()  # refused before the engine or the store was touched


def test_without_a_browser_the_zip_holds_html_plots(env, monkeypatch):
    import utils.stats_plots as stats_plots

    monkeypatch.setenv("BROWSER_PATH", str(env / "no-such-chrome"))  # where kaleido looks for Chrome first
    monkeypatch.setattr(stats_plots, "_png_works", {})
    figs = build_figures(pd.DataFrame({"captured_at": pd.to_datetime(["2024-05-01T08:00:00Z"]), "order_folder": ["A"],
                                       "brightness": [0.5], "sharpness": [10.0], "dominant_hex": ["#ff0000"]}))
    assert stats_plots.figures_png(figs) is None
    members = zipfile.ZipFile(io.BytesIO(export_zip(figs, b"a\n1\n"))).namelist()
    assert members == ["images.csv"] + [f"plots/{name}.html" for name in figs]
    assert stats_plots._png_works == {"ok": False} and not png_export_available()  # remembered: no second try


def test_upload_page_survives_decompression_bombs_and_crafted_dates(env):
    """Issue 9 through the page: small files that decode to gigabytes and out-of-range EXIF dates, among good ones."""
    import os

    from tests.browser import memory_kb, reset_peak
    from tests.test_decode_limits import BOMB_MESSAGES, png_bytes
    from tests.test_image_stats import jpeg_dated

    at = AppTest.from_file(UPLOAD_PAGE, default_timeout=60).run()
    at.file_uploader(key="upload_files").set_value([
        ("square.png", png_bytes(14000, 14000, 16), "image/png"),
        ("line.png", png_bytes(1, 199_999_999), "image/png"),
        ("year1.jpg", jpeg_dated("0001:01:01 00:00:00", "+14:00"), "image/jpeg"),
        ("jan.jpg", jpeg((250, 0, 0), utc(2024, 1, 15, 9)), "image/jpeg"),
    ])
    reset_peak(os.getpid())
    start = memory_kb(os.getpid())["VmRSS"]
    at.button(key="upload_analyse").click().run()
    peak_mb = (memory_kb(os.getpid())["VmHWM"] - start) / 1024
    assert not at.exception, at.exception
    m = metrics(at)
    assert (m["Images analysed"], m["Failed"], m["With capture time"]) == ("2", "2", "1")  # year 1: none
    errors = " | ".join(shown(e.value) for e in at.error)
    assert all(f"{name}: image too large to decode: {message}" in errors for name, message in BOMB_MESSAGES.items())
    assert peak_mb < 100, peak_mb  # the page and its plots included (measured: 25 MB); before: gigabytes


def test_versions_have_statistics_and_labels_are_counted(env):
    store = populate(env)
    a = next(o for o in store.list_orders() if o.order_number == "A-1")
    first, second, third = store.images(a.id)
    when = utc(2024, 4, 10, 13)
    version = store.save_image(a, jpeg((10, 10, 10), None, size=(32, 24)), None, when, width=32, height=24,
                               kind="version", source=first, operation={"name": "greyscale"}, tool="Pillow")
    store.set_labels(first.id, [("carton", 0.8), ("crate", 0.1)], "m")
    store.set_labels(second.id, [("carton", 0.6)], "m")
    store.set_labels(third.id, [("tabby cat", 0.5)], "m")
    backfill(store)
    frame = load_images_frame(store)
    row = frame[frame["image_id"] == version.id].iloc[0]
    assert (row["kind"], row["source_image_id"], row["stats_status"], row["width"]) == ("version", first.id, "ok", 32)
    assert frame[frame["image_id"] == first.id]["labels"].iloc[0] == "carton 0.80; crate 0.10"

    at = stats_page()
    assert metrics(at)["Images"] == "6"  # captured and imported images: the version is not one more capture
    assert len(at.get("plotly_chart")) == len(PLOTS) + 1  # + the labels plot
    labels_fig = next(c for c in at.get("plotly_chart") if "labels" in c.proto.id)
    import base64
    import json

    import numpy as np

    bars = json.loads(labels_fig.proto.spec)["data"][0]
    x = bars["x"]
    if isinstance(x, dict):  # plotly's typed-array encoding
        x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).tolist()
    assert dict(zip(bars["y"], x)) == {"carton": 2, "tabby cat": 1}
    at.multiselect(key="stats_kinds").set_value(["capture", "import", "version"]).run()
    assert metrics(at)["Images"] == "7"
    at.multiselect(key="stats_kinds").set_value(["version"]).run()
    assert metrics(at)["Images"] == "1"
