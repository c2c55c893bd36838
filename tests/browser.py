"""Shared helpers of the browser tests: a real `streamlit run app.py` on a free port and Debian's Chromium."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "artifacts"


def require_browser():
    """The playwright sync API, or skip the module with the reason (make test installs both)."""
    api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
    return api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """One `streamlit run app.py` process (the real dashboard) on a free port, with its own EXPORT_DIR."""

    def __init__(self, export: Path, log: Path, **env_overrides: str) -> None:
        self.export, self.log_path = export, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "DUMMY_", "API_", "PREFIX"))}
        env.update({"EXPORT_DIR": str(export), "IMAGES_PER_SECOND": "10", "DESCRIPTOR_DOWNLOAD": "false",
                    "OPTIONS_TH_INIT": "0.15", "LOGGING_LEVEL": "INFO", "LAYOUT_LANDSCAPE": "true"})
        env.update(env_overrides)
        self.log = open(log, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        pytest.fail("streamlit did not start: " + log.read_text()[-3000:])

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def db_rows(export: Path, sql: str, *args) -> list[tuple]:
    from utils.storage import default_database_path

    con = sqlite3.connect(default_database_path(export), timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()




def start_order(page, url: str, number: str, video: bool = False) -> None:
    """Type the order number and press Start on the Capture page, as an operator would."""
    page.goto(url)
    page.get_by_role("button", name="Start").wait_for(timeout=90_000)
    if video:
        page.get_by_text("Options").click()
        page.get_by_text("video", exact=True).click()
    page.get_by_label("Order number").fill(number)
    page.get_by_label("Order number").press("Enter")
    page.get_by_role("button", name="Start").click()
    page.get_by_text(f"Order {number} started").wait_for(timeout=30_000)


# ---------------------------------------------------------------- login, sessions and memory (security tests)


def browser_log_in(page, name: str, password: str) -> None:
    """Fill the login form and press Log in."""
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the session's script run has finished (Streamlit marks the app 'notRunning')."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout)


class Wire:
    """Everything a page hears from and asks of the server: requests, and the WebSocket frames it receives."""

    def __init__(self, page) -> None:
        self.requests: list[str] = []
        self.frames: list[bytes] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.frames.append(payload if isinstance(payload, bytes) else str(payload).encode())

    def media_requests(self) -> list[str]:
        """Requests for Streamlit media (images, downloads): ``/media/...``, not the app's own fonts."""
        from urllib.parse import urlsplit

        return [u for u in self.requests if urlsplit(u).path.startswith("/media/")]

    def session_id(self) -> str:
        """The Streamlit session id the server gave this page (from its new_session message)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        for frame in self.frames:
            msg = ForwardMsg()
            try:
                msg.ParseFromString(frame)
            except Exception:  # noqa: BLE001 - not a ForwardMsg
                continue
            if msg.WhichOneof("type") == "new_session" and msg.new_session.initialize.session_id:
                return msg.new_session.initialize.session_id
        raise AssertionError("no new_session message seen on the page's WebSocket")

    def heard(self, text: str) -> bool:
        """Whether ``text`` appeared anywhere in what the server sent over the WebSocket."""
        needle = text.encode()
        return any(needle in f for f in self.frames)


def seed_order(export: Path, number: str, n_images: int = 2) -> None:
    """A closed order with ``n_images`` JPEGs in ``export``, written through the product's own store."""
    from datetime import datetime, timedelta, timezone

    from PIL import Image

    from utils.imaging import encode_jpeg
    from utils.storage import Store

    store = Store(export)
    order, _ = store.open_order(number)
    t0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    for i in range(n_images):
        img = Image.new("RGB", (96, 64), ((60 * i) % 256, 120, 200))
        store.save_image(order, encode_jpeg(img, 90), None, t0 + timedelta(seconds=i), width=96, height=64)
    store.close_order(order.id)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start or the last :func:`reset_peak`) of a process, in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> None:
    """Reset the process's peak memory (VmHWM) to its current size (Linux clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def open_login_page(context, url: str):
    """A new tab of ``context`` on ``url`` showing the login form, its script run finished; returns (page, wire)."""
    page = context.new_page()
    wire = Wire(page)
    page.goto(url)
    page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    wait_idle(page)
    return page, wire


def upload(server, session_id: str, cookies: dict[str, str], body_size: int, declared: int | None = None,
           chunk: int = 1 << 20) -> tuple[int | None, int]:
    """PUT a multipart upload for ``session_id`` the way the browser does; returns (status, bytes sent).

    The body is streamed in chunks; a server that answers early and closes the connection ends the sending.
    ``server`` is anything with a ``url`` (the dashboard, or a proxy in front of it).
    """
    import http.client
    from urllib.parse import urlsplit

    boundary = "----gate-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + body_size + len(tail)
    host = urlsplit(server.url)
    con = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    con.putrequest("PUT", f"/_stcore/upload_file/{session_id}/file-1")
    con.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    con.putheader("Content-Length", str(declared if declared is not None else total))
    con.putheader("X-Xsrftoken", cookies.get("_streamlit_xsrf", ""))
    con.putheader("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    con.endheaders()
    sent = 0
    try:
        con.send(head)
        block = b"\x89" * chunk
        while sent < body_size:
            n = min(chunk, body_size - sent)
            con.send(block[:n])
            sent += n
        con.send(tail)
    except OSError:  # the server answered and closed while we were still sending
        pass
    try:
        status = con.getresponse().status
    except (OSError, http.client.HTTPException):
        status = None
    con.close()
    return status, sent
