"""Issue 9, reproduced as the attacker or the careless operator did it: each test fails without its fix.

Capture must never stop or brick (1, 2, 4), configuration values that passed the check but broke the app (8),
login that fails closed (9) and forwarded headers that nobody configured (11). Points 3, 5, 6, 14 and 16 are in
the image-statistics, URL-fetch and API tests; 10 in tests/test_auth*.py; 15 in tests/test_security_browser.py.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

import api
from communication import FolderCamera
from describe_images import load_descriptor
from ImageProcessingThread import CaptureOptions, CaptureWorker
from tests.conftest import PROJECT_TOYDATA, ROOT, remount, restart_engines, wait_for
from tests.test_api import own_address, serve, settings_for
from utils.config import ConfigError, load_settings
from utils.imaging import encode_jpeg
from utils.storage import DATABASE_NAME, PRIVATE_FOLDER, OrderNumberError, StorageError, Store


def jpeg(i: int = 0) -> bytes:
    return encode_jpeg(Image.new("RGB", (64, 48), (i * 40 % 256, 90, 160)), 90)


def check_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m utils.config`` (the services' ExecStartPre) with only these variables."""
    full = {"PATH": "/usr/bin:/bin", "EXPORT_DIR": str(tmp_path / "export"), **env}
    return subprocess.run([sys.executable, "-m", "utils.config"], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=120)


# ----------------------------------------------------------------- 1. an order number bricks the store


def test_1_no_order_can_take_the_place_of_the_database(tmp_path):
    """The attack: order 'capture.sqlite3-journal' became a folder at SQLite's journal path. New installations
    keep the database in EXPORT_DIR/.capture/ (a name no order may have); an older one, with the database beside
    the orders, refuses every name of the database's files."""
    store = Store(tmp_path / "new")
    assert store.db_path == tmp_path / "new" / PRIVATE_FOLDER / DATABASE_NAME
    for name in (".capture", ".capture-journal"):
        with pytest.raises(OrderNumberError):
            store.open_order(name)
    order, _ = store.open_order("capture.sqlite3-journal")  # harmless here: it is just a name
    store.save_image(order, jpeg(), None, datetime.now(timezone.utc))
    assert Store(tmp_path / "new").health_problem() is None

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    sqlite3.connect(legacy / DATABASE_NAME).close()  # the layout of earlier versions
    old = Store(legacy)
    assert old.db_path == legacy / DATABASE_NAME
    for name in ("capture.sqlite3-journal", "CAPTURE.SQLITE3-WAL", "capture.sqlite3-shm", "capture.sqlite3", "trash"):
        with pytest.raises(OrderNumberError, match="file the dashboard keeps"):
            old.open_order(name)
    assert not (legacy / "capture.sqlite3-journal").exists()
    order, _ = old.open_order("ORDER-1")
    old.save_image(order, jpeg(), None, datetime.now(timezone.utc))


def test_1_a_bricked_store_is_named_by_the_check_and_health(tmp_path):
    """Where a folder does sit at the journal's path (made by hand, or by an older version), the configuration
    check fails with the reason instead of saying all is well, and /health answers 503 with it."""
    export = tmp_path / "export"
    Store(export)
    db = export / PRIVATE_FOLDER / DATABASE_NAME
    journal = db.with_name(db.name + "-journal")
    journal.mkdir()
    proc = check_cli(tmp_path)
    assert proc.returncode == 2, proc.stdout
    assert "is a folder, where SQLite keeps its journal" in proc.stderr and "Traceback" not in proc.stderr
    with serve(api.create_app(settings_for(export))) as (base, _):
        r = requests.get(f"{base}/health", timeout=10)
        assert r.status_code == 503 and "journal" in r.json()["detail"]
        r = requests.get(f"{base}/orders", timeout=10)
        assert r.status_code == 503 and "journal" in r.json()["detail"]
    journal.rmdir()
    assert check_cli(tmp_path).returncode == 0


# ----------------------------------------------------------------- 2. a database lock deadlocks every later write

LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("COMMIT")
""")


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen:
    """A real second process that holds SQLite's write lock for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_2_a_locked_database_fails_the_save_and_releases_everything(tmp_path):
    store = Store(tmp_path / "export", busy_timeout_s=0.5)
    order, _ = store.open_order("LOCK-1")
    locker = hold_write_lock(store.db_path, 3)
    with pytest.raises(StorageError, match="locked"):
        store.save_image(order, jpeg(1), None, datetime.now(timezone.utc))
    # before the fix the store's own lock stayed taken: this next write blocked forever
    start = time.monotonic()
    with pytest.raises(StorageError, match="locked"):
        store.save_image(order, jpeg(2), None, datetime.now(timezone.utc))
    assert time.monotonic() - start < 5
    locker.wait(10)
    kept = store.save_image(order, jpeg(3), None, datetime.now(timezone.utc))
    assert kept.state == "ok" and [r.seq for r in store.images(order.id)] == [kept.seq]
    assert {p.name for p in order.folder.iterdir()} == {kept.file_name}  # nothing half-written


def test_2_capture_survives_a_locked_database(tmp_path):
    """The worker shows the lock as an error, keeps running, and keeps the scene once the lock is gone."""
    store = Store(tmp_path / "export", busy_timeout_s=0.5)
    worker = CaptureWorker(FolderCamera(PROJECT_TOYDATA), load_descriptor(None, False, "thumbnail"), store)
    opts = CaptureOptions(mode="distinct images", threshold=0.0, images_per_second=10, resolution=320)
    worker.start("LOCKED-1", opts)
    locker = hold_write_lock(store.db_path, 4)
    try:
        wait_for(lambda: (worker.snapshot().last_error or "").startswith("Saving failed"), timeout=20,
                 what="the lock shown as an error")
        assert "locked" in worker.snapshot().last_error and worker.snapshot().running
        locker.wait(15)
        wait_for(lambda: worker.snapshot().kept >= 3, timeout=30, what="capture after the lock")
        wait_for(lambda: worker.snapshot().last_error is None, timeout=10, what="the error cleared")
    finally:
        summary = worker.stop()
    rows = store.images(summary.order.id)
    files = {p.name for p in summary.order.folder.iterdir() if p.is_file()}
    assert len(rows) == summary.kept >= 3 and files == {r.file_name for r in rows}


# ----------------------------------------------------------------- 4. a store that cannot open at start


def test_4_a_corrupt_database_is_a_clear_refusal_everywhere(tmp_path):
    export = tmp_path / "export"
    db = export / PRIVATE_FOLDER / DATABASE_NAME
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database " * 400)
    proc = check_cli(tmp_path)
    assert proc.returncode == 2 and "damaged or not a database" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(StorageError, match="Restore it from the backup"):
        Store(export)
    with serve(api.create_app(settings_for(export))) as (base, _):
        health = requests.get(f"{base}/health", timeout=10)
        assert health.status_code == 503 and "damaged" in health.json()["detail"]
        r = requests.get(f"{base}/orders", timeout=10)
        assert r.status_code == 503 and "damaged" in r.json()["detail"]


def test_4_the_dashboard_shows_one_clear_page_for_a_broken_store(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    export = tmp_path / "export"
    (export / PRIVATE_FOLDER).mkdir(parents=True)
    (export / PRIVATE_FOLDER / DATABASE_NAME).write_bytes(b"garbage" * 1000)
    monkeypatch.setenv("EXPORT_DIR", str(export))
    monkeypatch.setenv("DESCRIPTOR_DOWNLOAD", "false")
    restart_engines()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
        assert not at.exception
        assert [e.value for e in at.error if "cannot start" in e.value and "damaged" in e.value]
        assert not [b for b in at.button if b.key == "button_start"]
    finally:
        restart_engines()


def test_4_a_read_only_export_folder_is_named_by_the_check(tmpfs, tmp_path):
    """A read-only file system (a real tmpfs remounted read-only; root needed): the check names EXPORT_DIR."""
    point = tmpfs("4m")
    Store(point / "export").close()
    remount(point, "ro")
    proc = check_cli(tmp_path, EXPORT_DIR=str(point / "export"))
    assert proc.returncode == 2 and "EXPORT_DIR" in proc.stderr and "Traceback" not in proc.stderr
    assert "read-only" in proc.stderr.lower()


# ----------------------------------------------------------------- 8. values that passed the check but broke the app


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"OPTIONS_TH_INC": "1e-9"}, "OPTIONS_TH_INC is too small"),
        ({"OPTIONS_TH_MAX": "1e9"}, "OPTIONS_TH_MAX"),
        ({"OPTIONS_TH_MAX": "inf"}, "OPTIONS_TH_MAX"),
        ({"OPTIONS_TH_MAX": "nan"}, "OPTIONS_TH_MAX"),
        ({"EXPORT_DIR": ""}, "EXPORT_DIR"),
        ({"EXPORT_DIR": str(ROOT)}, "program's own folder"),
        ({"EXPORT_DIR": str(ROOT.parent)}, "program's own folder"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///file::memory:?cache=shared"}, "DATABASE_URL"),
        ({"LOGFILE": "/etc/hostname/app.log"}, "LOGFILE"),
        ({"API_TOKEN": "a"}, "API_TOKEN"),
        ({"TRUSTED_PROXIES": "*"}, "TRUSTED_PROXIES"),
    ],
)
def test_8_values_that_broke_the_app_are_refused_by_name(env, needle, tmp_path):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_settings({"EXPORT_DIR": str(tmp_path / "export"), **env})


def test_8_the_threshold_slider_has_a_bounded_number_of_values():
    s = load_settings({"OPTIONS_TH_MIN": "0", "OPTIONS_TH_MAX": "100", "OPTIONS_TH_INC": "0.1"})
    assert len(s.threshold_options) == 1001


def test_8_an_unwritable_logfile_is_named_by_the_check(tmp_path):
    """As root every folder is writable: a log file whose folder is a regular file cannot be."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    proc = check_cli(tmp_path, LOGFILE=str(blocker / "sub" / "dashboard.log"))
    assert proc.returncode == 2 and "LOGFILE" in proc.stderr and "Traceback" not in proc.stderr


# ----------------------------------------------------------------- 9. login that fails closed


@pytest.mark.parametrize("env", [{"DUMMY_USER": "stats"}, {"DUMMY_USER": "stats", "DUMMY_PW": ""},
                                 {"DUMMY_PW": "secret"}, {"DUMMY_USER": "stats", "DUMMY_PW": "None"}])
def test_9_a_half_set_dummy_login_is_refused(env, tmp_path):
    with pytest.raises(ConfigError, match="DUMMY_USER and DUMMY_PW go together"):
        load_settings(env)
    proc = check_cli(tmp_path, **env)
    assert proc.returncode == 2 and "DUMMY_PW" in proc.stderr


def test_9_an_unprefixed_login_under_a_prefix_is_refused(tmp_path):
    users = '{"anna": {"hash": "$argon2id$v=19$m=65536,t=3,p=4$abc$def", "role": "admin"}}'
    with pytest.raises(ConfigError, match="reads ST2_AUTH_USERS"):
        load_settings({"PREFIX": "ST2", "AUTH_USERS": users})
    assert load_settings({"PREFIX": "ST2", "ST2_AUTH_USERS": users, "AUTH_USERS": users}).AUTH_USERS
    proc = check_cli(tmp_path, PREFIX="ST2", AUTH_USERS=users, ST2_EXPORT_DIR=str(tmp_path / "e2"))
    assert proc.returncode == 2 and "ST2_AUTH_USERS" in proc.stderr


def test_9_the_check_says_which_login_is_in_force(tmp_path):
    users = '{"anna": {"hash": "$argon2id$v=19$m=65536,t=3,p=4$abc$def", "role": "admin"}}'
    assert "login: AUTH_USERS with 1 user(s), 1 admin(s)" in check_cli(tmp_path, AUTH_USERS=users).stdout
    assert "login: NONE" in check_cli(tmp_path).stdout


# ----------------------------------------------------------------- 11. forwarded headers nobody configured


def test_11_plain_uvicorn_with_forwarded_allow_ips_star_still_refuses_remote_clients(tmp_path):
    """``FORWARDED_ALLOW_IPS=*`` (common in container images) made uvicorn believe a remote client's
    ``X-Forwarded-For: 127.0.0.1``; the no-token loopback rule must not."""
    import os
    import socket

    ip = own_address()
    if ip is None:
        pytest.skip("no non-loopback interface")
    export = tmp_path / "export"
    Store(export)
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "EXPORT_DIR": str(export), "FORWARDED_ALLOW_IPS": "*", "LOGGING_LEVEL": "INFO"}
    env.pop("API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api:app", "--host", "0.0.0.0", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=60, what="uvicorn api:app")
        spoofed = requests.get(f"http://{ip}:{port}/orders", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10)
        assert spoofed.status_code == 403, spoofed.text
        assert requests.get(f"http://127.0.0.1:{port}/orders", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_11_python_m_api_believes_forwarded_headers_only_from_trusted_proxies(tmp_path):
    """Through a proxy listed in TRUSTED_PROXIES the real client counts; without the setting no forwarded
    request counts as local, whatever FORWARDED_ALLOW_IPS says."""
    export = tmp_path / "export"
    Store(export)
    with serve(api.create_app(settings_for(export))) as (base, _):
        assert requests.get(f"{base}/orders", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10).status_code == 403
    with serve(api.create_app(settings_for(export, TRUSTED_PROXIES="127.0.0.1"))) as (base, _):
        local = requests.get(f"{base}/orders", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10)
        remote = requests.get(f"{base}/orders", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}, timeout=10)
        assert local.status_code == 200 and remote.status_code == 403


def test_11_the_dashboard_refuses_to_start_when_uvicorn_would_believe_anybody(tmp_path):
    from utils.preflight import forwarded_problems

    s = load_settings({"EXPORT_DIR": str(tmp_path / "e")})
    assert forwarded_problems(s, {"FORWARDED_ALLOW_IPS": "*"})
    assert forwarded_problems(s, {"FORWARDED_ALLOW_IPS": "10.0.0.0/8"})
    assert not forwarded_problems(s, {})
    trusted = load_settings({"EXPORT_DIR": str(tmp_path / "e"), "TRUSTED_PROXIES": "127.0.0.1,::1"})
    assert not forwarded_problems(trusted, {"FORWARDED_ALLOW_IPS": "127.0.0.1,::1"})
    proc = check_cli(tmp_path, FORWARDED_ALLOW_IPS="*")
    assert proc.returncode == 2 and "FORWARDED_ALLOW_IPS" in proc.stderr


def test_client_address_rules():
    from utils.asgi import client_address, networks

    def scope(peer: str, xff: str | None = None) -> dict:
        headers = [(b"x-forwarded-for", xff.encode())] if xff else []
        return {"client": (peer, 1234), "headers": headers}

    none: list = []
    proxy = networks(["127.0.0.1"])
    assert client_address(scope("203.0.113.5"), none) == "203.0.113.5"
    assert client_address(scope("::ffff:203.0.113.5"), none) == "203.0.113.5"
    assert client_address(scope("127.0.0.1"), none) is None  # a local browser or a proxy: nobody's own
    assert client_address(scope("203.0.113.5", "10.1.1.1"), none) == "203.0.113.5"  # the header is ignored
    assert client_address(scope("10.1.1.1", "10.1.1.1"), none) is None  # uvicorn may have taken it from there
    assert client_address(scope("127.0.0.1", "198.51.100.2"), proxy) == "198.51.100.2"
    assert client_address(scope("198.51.100.2", "6.6.6.6, 198.51.100.2"), proxy) == "198.51.100.2"
    assert client_address(scope("203.0.113.5", "127.0.0.1"), proxy) == "203.0.113.5"  # not through the proxy


# ----------------------------------------------------------------- 7. the order ZIP was built in memory


def test_7_the_order_zip_streams_from_disk_with_bounded_memory(tmp_path, browser_factory):
    """A 60 MB order downloaded from the gallery by 3 tabs at once: the dashboard's memory grows by a few MB
    (the in-memory ZIP held 60 MB per tab, and kept it after the browser closed); the ZIPs are complete."""
    import io
    import threading
    import zipfile

    from tests.browser import Dashboard, memory_kb, reset_peak

    export = tmp_path / "export"
    store = Store(export)
    order, _ = store.open_order("BIG-1")
    rng = np.random.default_rng(7)
    sizes = []
    for i in range(24):
        payload = rng.integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()
        store.save_image(order, payload, None, datetime.now(timezone.utc))
        sizes.append(len(payload))
    store.close_order(order.id)
    dash = Dashboard(export, tmp_path / "streamlit.log")
    try:
        page = browser_factory().new_page()
        page.goto(dash.url + "/gallery")
        link = page.get_by_role("link", name="Download order as ZIP")
        link.wait_for(timeout=90_000)
        url = dash.url + link.get_attribute("href")
        pid = dash.proc.pid
        before = memory_kb(pid)["VmRSS"]
        reset_peak(pid)
        results: list[bytes] = []

        def fetch() -> None:
            with requests.get(url, stream=True, timeout=120) as r:
                assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
                buf = io.BytesIO()
                for chunk in r.iter_content(1 << 16):
                    buf.write(chunk)
                results.append(buf.getvalue())

        threads = [threading.Thread(target=fetch) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        peak_mb = (memory_kb(pid)["VmHWM"] - before) / 1024
        print(f"3 parallel downloads of a {sum(sizes) / 1e6:.0f} MB order: peak +{peak_mb:.1f} MB")
        assert len(results) == 3
        for data in results:
            zf = zipfile.ZipFile(io.BytesIO(data))
            assert zf.testzip() is None
            infos = [i for i in zf.infolist() if i.filename.endswith(".jpg")]
            assert sorted(i.file_size for i in infos) == sorted(sizes)
        assert peak_mb < 30, peak_mb
        for _ in range(3):  # clients that go away mid-download give their slot back
            with requests.get(url, stream=True, timeout=60) as r:
                next(r.iter_content(1 << 16))
        start = time.monotonic()
        assert len(requests.get(url, timeout=60).content) == len(results[0])
        assert time.monotonic() - start < 30
        page.close()  # the session is gone: its link stops working within the housekeeping period
        wait_for(lambda: requests.get(url, timeout=10).status_code == 404, timeout=30, what="link expired")
    finally:
        dash.stop()


# ----------------------------------------------------------------- 12. the ZIP followed symbolic links


def test_12_the_zip_leaves_out_links_out_of_export_dir(tmp_path):
    import io
    import zipfile

    from utils.exports import order_zip_chunks

    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the password file")
    store = Store(tmp_path / "export")
    order, _ = store.open_order("LINKS-1")
    kept = [store.save_image(order, jpeg(i), None, datetime.now(timezone.utc)) for i in range(3)]
    kept[1].path.unlink()
    kept[1].path.symlink_to(secret)  # an image replaced by a link out of EXPORT_DIR
    kept[2].path.unlink()
    kept[2].path.symlink_to(kept[0].path)  # a link inside: left out too (the ZIP holds files, not links)
    zf = zipfile.ZipFile(io.BytesIO(b"".join(order_zip_chunks(store, store.get_order(order.id)))))
    names = zf.namelist()
    assert names == [f"LINKS-1/{kept[0].file_name}", "LINKS-1/images.csv"]
    assert all(b"password" not in zf.read(n) for n in names)
    with serve(api.create_app(settings_for(tmp_path / "export"))) as (base, _):  # the API the same way
        assert requests.get(f"{base}/images/{kept[1].id}/file", timeout=10).status_code == 404
        assert requests.get(f"{base}/images/{kept[0].id}/file", timeout=10).status_code == 200


# ----------------------------------------------------------------- 13. order numbers as Markdown, mixed scripts


@pytest.mark.parametrize("name", ["ОRDER-1", "ORDЕR-1", "xοx", "Auftrag-Ѕ1"])  # Cyrillic О/Е/Ѕ, Greek ο among Latin
def test_13_look_alike_scripts_mixed_in_one_order_number_are_refused(name, tmp_path):
    from utils.storage import validate_order_number

    with pytest.raises(OrderNumberError, match="several scripts"):
        validate_order_number(name)
    with pytest.raises(OrderNumberError, match="several scripts"):
        Store(tmp_path / "export").open_order(name)


@pytest.mark.parametrize("name", ["ORDER-1", "Заказ-1", "Παραγγελία-2", "注文-123", "ABC-注文", "Größe-7", "주문-1"])
def test_13_one_script_per_order_number_is_fine(name):
    from utils.storage import validate_order_number

    assert validate_order_number(name) == name


def test_13_order_numbers_are_shown_as_typed(tmp_path, browser_factory):
    """``_x_`` showed as bold italic 'x' in messages and the sidebar; it must read ``_x_`` everywhere."""
    from tests.browser import ARTIFACTS, Dashboard, start_order

    dash = Dashboard(tmp_path / "export", tmp_path / "streamlit.log")
    try:
        page = browser_factory(viewport={"width": 1400, "height": 1000}).new_page()
        start_order(page, dash.url, "_x_#1")  # waits for the literal text "Order _x_#1 started"
        page.locator('[data-testid="stSidebar"]').get_by_text("Running order _x_#1").wait_for(timeout=30_000)
        page.get_by_role("button", name="Close order").click()
        page.get_by_role("heading", name="Order _x_#1").wait_for(timeout=30_000)
        page.get_by_text("Order _x_#1 closed").wait_for(timeout=30_000)
        assert page.locator("[data-testid='stMain'] em, [data-testid='stSidebar'] em").count() == 0
        page.screenshot(path=str(ARTIFACTS / "order-number-as-typed.png"))
    finally:
        dash.stop()


# ----------------------------------------------------------------- 17. a gallery of thousands of images


def test_17_the_gallery_pages_through_an_order(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    export = tmp_path / "export"
    store = Store(export)
    order, _ = store.open_order("MANY-1")
    for i in range(130):
        store.save_image(order, jpeg(i), None, datetime.now(timezone.utc))
    store.close_order(order.id)
    monkeypatch.setenv("EXPORT_DIR", str(export))
    monkeypatch.setenv("DESCRIPTOR_DOWNLOAD", "false")
    restart_engines()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
        at.switch_page("pages/gallery.py").run()
        assert not at.exception
        thumbs = at.get("image")
        assert len(thumbs) == 60 + 1  # one page of thumbnails and the large image
        assert any("Images 1–60 of 130" in c.value for c in at.caption)
        at.number_input(key=f"gallery_page_{order.id}").set_value(3).run()
        assert any("Images 121–130 of 130" in c.value for c in at.caption)
        assert len(at.get("image")) == 10 + 1
        at.number_input(key=f"gallery_page_{order.id}").set_value(1).run()
        at.number_input(key=f"gallery_jump_{order.id}").set_value(75).run()  # jump: page 2, image #75 large
        assert any("Images 61–120 of 130" in c.value for c in at.caption)
        assert at.select_slider[0].value.seq == 75
        at.number_input(key=f"gallery_jump_{order.id}").set_value(500).run()
        assert any("Image #500 is not" in w.value for w in at.warning)
    finally:
        restart_engines()
