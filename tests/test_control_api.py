"""The plant drives capture: the HTTP API (a real uvicorn) runs orders in the engine of a real dashboard process
(`streamlit run app.py`), the engine runs in exactly one process, and commands the engine did not take are dropped.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

import api
from tests.browser import Dashboard, browser_log_in, db_rows
from tests.test_api import serve, settings_for
from utils.config import load_settings
from utils.control import queue
from utils.control.loop import ControlLoop, stop_all_control_loops
from utils.storage import Store

ADMIN, OPERATOR = "admin-token-0123456789", "operator-token-0123456"
TOKENS = {"API_TOKEN": ADMIN, "API_OPERATOR_TOKEN": OPERATOR}
AS_OPERATOR = {"Authorization": f"Bearer {OPERATOR}"}


def wait_for(check, timeout: float = 60.0, what: str = "the condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    """A real dashboard server (its engine starts with the server; nobody opens it) and the API beside it."""
    base = tmp_path_factory.mktemp("control")
    export = base / "export"
    dash = Dashboard(export, base / "streamlit.log", **TOKENS, DUMMY_USER="op", DUMMY_PW="op-password-1",
                     DUMMY_ROLE="operator")
    try:
        with serve(api.create_app(settings_for(export, **TOKENS))) as (url, _):
            yield dash, url, export
    finally:
        dash.stop()


def current(url: str) -> requests.Response:
    return requests.get(url + "/orders/current", headers=AS_OPERATOR, timeout=10)


def test_an_mes_runs_an_order_without_a_browser(station, browser):
    dash, url, export = station
    # the engine started with the dashboard's server: no browser has opened it
    idle = wait_for(lambda: current(url).status_code == 200 and current(url).json(), what="the engine's state")
    assert idle["running"] is False and idle["order"] is None

    assert requests.post(url + "/orders", json={"order_number": "MES-1"}, timeout=30).status_code == 401
    bad = requests.post(url + "/orders", headers=AS_OPERATOR, json={"order_number": "a/b"}, timeout=30)
    assert bad.status_code == 422 and "/" in bad.json()["detail"]
    far = requests.post(url + "/orders", headers=AS_OPERATOR, json={"order_number": "X", "threshold": 7}, timeout=30)
    assert far.status_code == 422 and "threshold" in far.json()["detail"]

    started = requests.post(url + "/orders", headers=AS_OPERATOR, json={"order_number": "MES-1"}, timeout=30)
    assert started.status_code == 201, started.text
    order = started.json()["order"]
    assert order["order_number"] == "MES-1" and order["status"] == "open"
    busy = requests.post(url + "/orders", headers=AS_OPERATOR, json={"order_number": "MES-2"}, timeout=30)
    assert busy.status_code == 409 and "MES-1" in busy.json()["detail"]

    live = wait_for(lambda: (c := current(url).json())["frames_seen"] > 0 and c, what="frames")
    assert live["running"] and live["order"]["id"] == order["id"] and live["started_by"] == "api:operator"

    saved = requests.post(url + "/orders/current/save-image", headers=AS_OPERATOR, timeout=30)
    assert saved.status_code == 201, saved.text
    image = requests.get(f"{url}/images/{saved.json()['image_id']}", headers=AS_OPERATOR, timeout=10).json()
    assert image["order_id"] == order["id"] and image["forced"] is True
    # the operator's token runs orders and reads them, nothing else
    assert requests.get(url + "/jobs", headers=AS_OPERATOR, timeout=10).status_code == 403

    # the dashboard shows the order like one started by hand, and can close it
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(dash.url)
        browser_log_in(page, "op", "op-password-1")
        page.get_by_text("Started through the HTTP API (api:operator)").wait_for(timeout=60_000)
        assert page.get_by_label("Order number").input_value() == "MES-1"
        assert page.get_by_role("button", name="Close order").is_enabled()
        assert not page.get_by_role("button", name="Start").is_enabled()
    finally:
        page.close()

    closed = requests.post(f"{url}/orders/{order['id']}/close", headers=AS_OPERATOR, timeout=60)
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["already_closed"] is False and body["order"]["status"] == "closed"
    files = sorted(p.name for p in (export / "MES-1").glob("*.jpg"))
    rows = db_rows(export, "SELECT file_name FROM images WHERE order_id = ? AND state = 'ok'", order["id"])
    assert body["kept"] == body["order"]["n_images"] == len(files) == len(rows) >= 1
    again = requests.post(f"{url}/orders/{order['id']}/close", headers=AS_OPERATOR, timeout=60)
    assert again.status_code == 200 and again.json()["already_closed"] is True
    assert requests.post(url + "/orders/999/close", headers=AS_OPERATOR, timeout=30).status_code == 404
    assert wait_for(lambda: current(url).json()["running"] is False, what="the engine to publish the close")
    nothing = requests.post(url + "/orders/current/save-image", headers=AS_OPERATOR, timeout=30)
    assert nothing.status_code == 409 and "no order is running" in nothing.json()["detail"]


def test_without_a_running_engine_the_api_says_so(tmp_path):
    Store(tmp_path / "export").close()
    with serve(api.create_app(settings_for(tmp_path / "export", **TOKENS))) as (url, _):
        r = current(url)
        assert r.status_code == 503 and "dashboard" in r.json()["detail"]
        r = requests.post(url + "/orders", headers=AS_OPERATOR, json={"order_number": "A-1"}, timeout=30)
        assert r.status_code == 503 and r.headers["Retry-After"]
    assert db_rows(tmp_path / "export", "SELECT count(*) FROM control_commands") == [(0,)]


def test_a_command_the_engine_did_not_take_in_time_is_dropped(tmp_path, app_env):
    """504 means nothing happened: an engine that comes back later does not carry the old command out."""
    export = app_env
    store = Store(export)
    queue.publish(store, "elsewhere:1:x", {"running": False})  # a fresh state, but no engine takes commands
    with serve(api.create_app(settings_for(export, CONTROL_TIMEOUT_S=1, **TOKENS))) as (url, _):
        r = requests.post(url + "/orders", headers=AS_OPERATOR, json={"order_number": "LATE-1"}, timeout=30)
    assert r.status_code == 504 and "nothing was done" in r.json()["detail"]
    assert db_rows(export, "SELECT action, state FROM control_commands") == [("start", "expired")]

    from utils.engine import shared_engine

    engine = shared_engine(load_settings())
    engine.control.wake()
    time.sleep(1.0)  # a few ticks of the engine's loop
    assert not engine.worker.running and store.list_orders() == []


def test_one_process_drives_the_camera(app_env):
    from ImageProcessingThread import WorkerBusy
    from utils.engine import shared_engine

    engine = shared_engine(load_settings())
    assert engine.control.holding
    holder = engine.control.holder
    other = ControlLoop(engine)  # a second process on the same database, as the lease sees it
    assert not other.take_lease()
    assert holder in other.refusal()

    stop_all_control_loops()  # the first process stops: the lease is given back
    assert other.take_lease() and other.refusal() is None
    with pytest.raises(WorkerBusy, match=other.holder):
        engine.start_order("B-1", engine.options())  # its engine no longer drives the camera
    other.stop()


def test_a_dead_holder_of_this_machine_is_replaced_at_once(app_env):
    import socket
    import subprocess
    import sys

    store = Store(app_env)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:abcdef"
    assert store.acquire_lease(queue.LEASE, dead, 3600)
    from utils.engine import shared_engine

    engine = shared_engine(load_settings())
    assert engine.control.holding and store.lease_holder(queue.LEASE)[0] == engine.control.holder
    alive = f"{socket.gethostname()}:1:abcdef"  # pid 1 runs: its lease is respected until it expires
    stop_all_control_loops()
    assert store.acquire_lease(queue.LEASE, alive, 3600)
    assert not ControlLoop(engine).take_lease()


def test_operator_token_needs_the_admin_token():
    from utils.config import ConfigError

    with pytest.raises(ConfigError, match="API_OPERATOR_TOKEN needs API_TOKEN"):
        load_settings({"API_OPERATOR_TOKEN": OPERATOR, "EXPORT_DIR": str(Path("/tmp/x"))})
    with pytest.raises(ConfigError, match="must differ"):
        load_settings({"API_OPERATOR_TOKEN": ADMIN, "API_TOKEN": ADMIN, "EXPORT_DIR": str(Path("/tmp/x"))})
