"""Events of the capture (utils/events) on real components: a local HTTP receiver that fails for a while, a station
process killed with SIGKILL mid-delivery, the adapter simulator going down and up, Debian's mosquitto on loopback,
SQLite databases (also one of revision 0002 upgraded in place)."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.conftest import PROJECT_TOYDATA, ROOT, wait_for
from utils.config import load_settings
from utils.db import schema as db
from utils.events import outbox
from utils.events.dispatcher import ensure_event_dispatcher, stop_all_event_dispatchers
from utils.storage import StorageError, Store, store_for

SECRET = "s3cret-for-the-webhook-tests"
JPEG = sorted(PROJECT_TOYDATA.glob("*.jpg"))[0].read_bytes()


class Receiver:
    """A webhook receiver on loopback: answers ``fail_first`` requests with 500 (or ``status(body)`` decides), can
    hold its answers until released; records every request (headers, body)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.status = None  # optional callable(body dict) -> int
        self.hold = threading.Event()
        self.hold.set()  # set: answer at once
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    n = len(receiver.requests)
                    code = 500 if n < receiver.fail_first else 200
                    if receiver.status is not None:
                        code = receiver.status(json.loads(body))
                    receiver.requests.append((dict(self.headers), body, code))
                receiver.hold.wait(60)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender is gone

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/capture?token=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict]:
        """The bodies answered with 200, in arrival order."""
        with self.lock:
            return [json.loads(b) for _, b, code in self.requests if code == 200]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    stop_all_event_dispatchers()
    for r in made:
        r.close()


def settings_for(tmp_path: Path, **env: str):
    base = {"EXPORT_DIR": str(tmp_path / "export"), "STATION_NAME": "packing-3", "WEBHOOK_SECRET": SECRET,
            "EVENT_RETRY_FIRST_S": "0.05", "EVENT_RETRY_MAX_S": "0.2", "DESCRIPTOR_DOWNLOAD": "false"}
    return load_settings({**base, **env})


def event_rows(store: Store) -> list[dict]:
    """Every recorded event's body, in event order."""
    return [json.loads(r["body"]) for r in store._query(select(db.events.c.body).order_by(db.events.c.id))]


def capture(store: Store, number: str = "A-1", images: int = 3) -> None:
    order, _ = store.open_order(number)
    for k in range(images):
        store.save_image(order, JPEG, None, datetime.now(timezone.utc), distance=0.4 + k, width=64, height=48)
    store.close_order(order.id, counts={"frames": 12, "errors": 0})


def test_webhook_down_for_a_while_then_every_event_once_in_order_signed(tmp_path, receiver):
    r = receiver(fail_first=4)
    settings = settings_for(tmp_path, WEBHOOK_URLS=r.url)
    store = store_for(settings)
    ensure_event_dispatcher(store, settings)
    capture(store)
    recorded = event_rows(store)
    assert [e["type"] for e in recorded] == ["order.started", "image.kept", "image.kept", "image.kept",
                                             "order.closed"]
    wait_for(lambda: len(r.accepted()) == len(recorded), what="every event accepted after the receiver recovered")
    assert r.accepted() == recorded  # in order, each once, the body as recorded
    assert [json.loads(b)["id"] for _, b, code in r.requests if code != 200] == [recorded[0]["id"]] * 4
    for headers, body, _ in r.requests:
        event = json.loads(body)
        assert headers["X-Event-Id"] == event["id"] and headers["X-Event-Type"] == event["type"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Signature-256"], expected)
        assert headers["Content-Type"] == "application/json"
    first, *_, closed = recorded
    assert first["station"] == "packing-3" and first["data"]["order_number"] == "A-1"
    assert first["data"]["mode"] == "distinct images" and first["data"]["resumed"] is False
    kept = recorded[1]["data"]
    assert (kept["seq"], kept["distance"], kept["width"]) == (1, 0.4, 64) and kept["file_name"].startswith("00001_")
    assert closed["data"]["images"] == 3 and closed["data"]["frames"] == 12
    wait_for(lambda: outbox.states(store)[0].waiting == 0, what="the outbox emptied")
    state, = outbox.states(store)
    assert (state.waiting, state.failed, state.delivered, state.last_error) == (0, 0, 5, None)
    attempts = [r["attempts"] for r in store._query(select(db.event_deliveries.c.attempts)
                                                      .order_by(db.event_deliveries.c.event))]
    assert attempts == [5, 1, 1, 1, 1]


def test_no_destination_records_no_event(tmp_path):
    settings = settings_for(tmp_path)
    store = store_for(settings)
    assert ensure_event_dispatcher(store, settings) is None
    capture(store)
    assert event_rows(store) == []


def test_an_order_or_image_that_fails_to_commit_leaves_no_event_and_an_event_that_fails_no_row(tmp_path):
    store = Store(tmp_path / "export", station="st")
    store.event_destinations = ("http://127.0.0.1:9/hook",)
    with store.engine.begin() as con:  # the event's insert fails inside the transaction of the order / image
        con.execute(text("CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); "
                         "END"))
    with pytest.raises(StorageError):
        store.open_order("B-1")
    assert store.list_orders() == [] and event_rows(store) == []
    with store.engine.begin() as con:
        con.execute(text("DROP TRIGGER no_events"))
        con.execute(text("CREATE TRIGGER no_kept BEFORE INSERT ON events WHEN NEW.type = 'image.kept' "
                         "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    order, _ = store.open_order("B-1")
    with pytest.raises(StorageError):
        store.save_image(order, JPEG, None, datetime.now(timezone.utc))
    assert store.images(order.id) == [] and list(order.folder.iterdir()) == []
    assert [e["type"] for e in event_rows(store)] == ["order.started"]


def test_a_permanent_refusal_fails_after_a_few_attempts_the_next_go_on_and_retry_sends_it(tmp_path, receiver):
    r = receiver()
    r.status = lambda event: 404 if event["type"] == "order.started" else 200
    settings = settings_for(tmp_path, WEBHOOK_URLS=r.url, EVENT_GIVE_UP_AFTER="3")
    store = store_for(settings)
    ensure_event_dispatcher(store, settings)
    capture(store, images=1)
    wait_for(lambda: len(r.accepted()) == 2, what="the events after the refused one")
    assert [e["type"] for e in r.accepted()] == ["image.kept", "order.closed"]
    assert [json.loads(b)["type"] for _, b, code in r.requests if code == 404] == ["order.started"] * 3
    state, = outbox.states(store)
    assert state.failed == 1 and "answered 404" in state.last_error and "token" not in state.last_error
    r.status = None
    assert outbox.retry_failed(store) == 1  # wakes the dispatcher of this process after the commit
    wait_for(lambda: len(r.accepted()) == 3, what="the failed event sent again")
    assert r.accepted()[-1]["type"] == "order.started"
    assert outbox.states(store)[0].failed == 0


_STATION = """
import sys, time
sys.path.insert(0, {root!r})
from utils.config import load_settings
from utils.events.dispatcher import ensure_event_dispatcher
from utils.storage import store_for
settings = load_settings({env!r})
ensure_event_dispatcher(store_for(settings), settings)
print("started", flush=True)
time.sleep(120)
"""


def test_station_killed_after_the_receiver_got_the_event_delivers_it_again_with_the_same_id(tmp_path, receiver):
    r = receiver()
    r.hold.clear()  # the receiver takes the event but answers only after the station died
    env = {"EXPORT_DIR": str(tmp_path / "export"), "STATION_NAME": "packing-3", "WEBHOOK_URLS": r.url,
           "EVENT_RETRY_FIRST_S": "0.05", "EVENT_RETRY_MAX_S": "0.2"}
    settings = load_settings(env)
    store = store_for(settings)
    store.open_order("K-1")  # queued by this process; delivered by the station process below
    station = subprocess.Popen([sys.executable, "-c", _STATION.format(root=str(ROOT), env=env)],
                               stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(r.requests) == 1, what="the station process to send the event")
        os.kill(station.pid, signal.SIGKILL)
        station.wait(30)
    finally:
        if station.poll() is None:
            station.kill()
    r.hold.set()
    assert outbox.states(store)[0].waiting == 1  # not marked done: the station died before the answer
    ensure_event_dispatcher(store, settings)  # the restarted station (the dead process's lease is taken over)
    wait_for(lambda: outbox.states(store)[0].waiting == 0, what="the event delivered after the restart")
    ids = [json.loads(b)["id"] for _, b, _ in r.requests]
    assert len(ids) == 2 and ids[0] == ids[1] == event_rows(store)[0]["id"]  # at least once, the same id


def test_camera_error_once_per_outage_and_recovered_with_its_duration(tmp_path):
    from communication import BaslerAdapterCamera
    from DataModels_BaslerCameraAdapter import TakePhotoParams
    from describe_images import load_descriptor
    from ImageProcessingThread import CaptureOptions, CaptureWorker
    from utils.demo_adapter import DemoAdapterServer

    server = DemoAdapterServer(folder=PROJECT_TOYDATA).start()
    camera = BaslerAdapterCamera(server.url, TakePhotoParams(), timeout=5.0)
    store = Store(tmp_path / "export", station="st")
    store.event_destinations = ("mqtt",)
    worker = CaptureWorker(camera, load_descriptor(allow_download=False), store, backoff_max=0.2)
    try:
        worker.start("CAM-1", CaptureOptions(threshold=0.15, images_per_second=20, resolution=160))
        wait_for(lambda: worker.snapshot().frames_seen >= 3, what="frames")
        server.down()
        wait_for(lambda: worker.snapshot().error_count >= 4, what="several failed grabs")
        server.up()
        seen = worker.snapshot().frames_seen
        wait_for(lambda: worker.snapshot().frames_seen > seen + 2, what="frames after the camera came back")
        summary = worker.stop()
    finally:
        worker.stop()
        server.stop()
        camera.close()
    events = event_rows(store)
    types = [e["type"] for e in events]
    assert types[0] == "order.started" and types[-1] == "order.closed"
    assert types.count("camera.error") == 1 and types.count("camera.recovered") == 1
    assert types.index("camera.error") < types.index("camera.recovered")
    error = next(e for e in events if e["type"] == "camera.error")["data"]
    recovered = next(e for e in events if e["type"] == "camera.recovered")["data"]
    assert "connection refused" in error["message"] and error["order_number"] == "CAM-1"
    assert recovered["message"] == error["message"] and recovered["lasted_s"] > 0
    assert events[-1]["data"]["errors"] == summary.errors >= 4
    assert types.count("image.kept") == events[-1]["data"]["images"] == summary.kept


def test_delivered_events_are_pruned_waiting_ones_are_kept(tmp_path):
    store = Store(tmp_path / "export", station="st")
    store.event_destinations = ("a", "b")
    capture(store, images=1)
    done = outbox.waiting(store, "a")
    for item in done:
        outbox.mark_done(store, item, datetime.now(timezone.utc))
    later = datetime.now(timezone.utc) + timedelta(days=1)
    assert outbox.prune(store, later) == 0  # "b" still waits for every event
    for item in outbox.waiting(store, "b")[:2]:
        outbox.mark_done(store, item, datetime.now(timezone.utc))
    assert outbox.prune(store, later) == 2
    assert [e["type"] for e in event_rows(store)] == ["order.closed"]
    assert outbox.prune(store, datetime.now(timezone.utc) - timedelta(days=1)) == 0


def test_the_migration_upgrades_a_database_of_revision_0002(tmp_path):
    from sqlalchemy import create_engine

    from utils.db import migrate

    path = tmp_path / "export" / ".capture" / "capture.sqlite3"
    path.parent.mkdir(parents=True)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as con:
        migrate.upgrade(con, migrate.STATION_MIGRATIONS, "0002")
        con.execute(text("INSERT INTO orders (order_number, folder, mode, status, started_at) "
                         "VALUES ('OLD-1', 'OLD-1', 'distinct images', 'open', '2026-01-01T00:00:00+00:00')"))
    engine.dispose()
    store = Store(tmp_path / "export", station="st")
    with store.engine.connect() as con:
        assert migrate.current_revision(con) == migrate.head_revision(migrate.STATION_MIGRATIONS)
    store.event_destinations = ("mqtt",)
    (tmp_path / "export" / "OLD-1").mkdir()
    order, resumed = store.open_order("OLD-1")
    assert resumed and order.order_number == "OLD-1"
    assert [(e["type"], e["data"]["resumed"]) for e in event_rows(store)] == [("order.started", True)]


# ---------------------------------------------------------------- MQTT against Debian's mosquitto


@pytest.fixture()
def mosquitto(tmp_path):
    """A mosquitto broker on a free loopback port with one user (station / pw-of-the-station)."""
    from tests.servers import free_ports

    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    passwd = shutil.which("mosquitto_passwd")
    if binary is None or passwd is None:
        pytest.skip("mosquitto is not installed (scripts/install-test-packages.sh installs Debian's mosquitto)")
    pwfile = tmp_path / "mosquitto.passwd"
    subprocess.run([passwd, "-b", "-c", str(pwfile), "station", "pw-of-the-station"], check=True, capture_output=True)
    port, = free_ports(1)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
                    f"persistence false\nuser {getpass.getuser()}\n")  # as root it would drop to 'mosquitto'
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening() -> bool:
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(lambda: listening() or proc.poll() is not None, what="mosquitto to listen")
        if proc.poll() is not None:
            pytest.fail(f"mosquitto did not start: {proc.stderr.read().decode(errors='replace')}")
        yield port
    finally:
        stop_all_event_dispatchers()
        proc.terminate()
        proc.wait(10)


def test_mqtt_topics_payloads_and_availability(tmp_path, mosquitto):
    import paho.mqtt.client as mqtt

    messages: list[tuple[str, bytes, int, bool]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
    sub.username_pw_set("station", "pw-of-the-station")
    subscribed = threading.Event()
    sub.on_connect = lambda c, *a: c.subscribe("plant/packing-3/#", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = lambda c, u, m: messages.append((m.topic, m.payload, m.qos, m.retain))
    sub.connect("127.0.0.1", mosquitto)
    sub.loop_start()
    try:
        assert subscribed.wait(30)
        settings = settings_for(tmp_path, MQTT_URL=f"mqtt://station:pw-of-the-station@127.0.0.1:{mosquitto}",
                                MQTT_TOPIC_PREFIX="plant/packing-3")
        store = store_for(settings)
        ensure_event_dispatcher(store, settings)
        capture(store, images=2)
        store.record_event("camera.error", {"order_id": None, "order_number": None, "camera": "c", "message": "x"})
        recorded = event_rows(store)
        wait_for(lambda: len([m for m in messages if not m[0].endswith("/available")]) == len(recorded),
                 what="every event on the broker")
        published = [m for m in messages if not m[0].endswith("/available")]
        assert [m[0] for m in published] == ["plant/packing-3/order/started", "plant/packing-3/image/kept",
                                             "plant/packing-3/image/kept", "plant/packing-3/order/closed",
                                             "plant/packing-3/camera/error"]
        bodies = [r["body"] for r in store._query(select(db.events.c.body).order_by(db.events.c.id))]
        assert [m[1].decode() for m in published] == bodies  # the webhook's body, byte for byte
        assert all(m[2] == 1 for m in published)
        assert ("plant/packing-3/available", b"online") in [(m[0], m[1]) for m in messages]
        stop_all_event_dispatchers()
        wait_for(lambda: messages[-1][:2] == ("plant/packing-3/available", b"offline"), what="offline")
        assert outbox.states(store)[0].delivered == len(recorded)
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_mqtt_broker_refusing_the_login_keeps_the_events(tmp_path, mosquitto):
    settings = settings_for(tmp_path, MQTT_URL=f"mqtt://station:wrong@127.0.0.1:{mosquitto}", WEBHOOK_TIMEOUT_S="1")
    store = store_for(settings)
    ensure_event_dispatcher(store, settings)
    store.open_order("M-1")
    wait_for(lambda: (outbox.states(store)[0].last_error or "") != "", what="the failed attempt noted")
    state, = outbox.states(store)
    assert state.waiting == 1 and state.delivered == 0
    assert "MQTT" in state.last_error and "wrong" not in state.last_error


def test_settings_page_shows_the_delivery_state_and_retries_the_failed_events(app_env, monkeypatch, receiver):
    from streamlit.testing.v1 import AppTest

    r = receiver()
    r.status = lambda event: 410 if event["type"] == "order.started" else 200
    for name, value in {"WEBHOOK_URLS": r.url, "EVENT_GIVE_UP_AFTER": "1", "JOBS_ENABLED": "false",
                        "STATION_NAME": "packing-3", "EVENT_RETRY_FIRST_S": "0.05"}.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception, at.exception
    store = Store(app_env, station="packing-3")  # another process of the station: its events wait for the poll
    store.event_destinations = (r.url,)
    capture(store, images=1)
    wait_for(lambda: len(r.accepted()) == 2, what="the events after the refused one")
    at.run()
    table = at.dataframe[-2].value  # the events' table (the configuration's is the last)
    row = table.iloc[0]
    assert (row["destination"], row["state"], row["failed"], row["delivered"]) == (
        f"http://127.0.0.1:{r.server.server_address[1]}/…", "failed", 1, 2)
    assert "answered 410" in row["last error"] and "token=abc" not in row["last error"]
    assert any("refused for good" in e.value for e in at.error)
    r.status = None
    at.button(key="events_retry_failed").click().run()
    wait_for(lambda: len(r.accepted()) == 3, what="the failed event sent again")
    assert r.accepted()[-1]["type"] == "order.started"
