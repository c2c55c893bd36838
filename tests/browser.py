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
    con = sqlite3.connect(export / "capture.sqlite3", timeout=30)
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
