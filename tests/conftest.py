"""Shared fixtures: real SQLite stores in temporary folders, the seeded untrained descriptor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import postgres_server, postgres_url, s3_server, s3_bucket  # noqa: F401
from tests.archive_fixtures import archive, real  # noqa: F401,E402 - fixtures

ORIGINAL_TOYDATA = ROOT.parent / "shared" / "datasets" / "original-toydata"
PROJECT_TOYDATA = ROOT / "toydata"


def shown(markdown: str) -> str:
    """What a person sees of a Markdown text the app escaped (``utils.ui.md``): the backslashes removed."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


def wait_for(predicate, timeout: float = 30.0, step: float = 0.05, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (tests wait on conditions, not sleeps)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")


@pytest.fixture(scope="session")
def descriptor():
    """MobileNetV3-small with seeded random weights (no pretrained weights offline)."""
    from describe_images import untrained_descriptor

    return untrained_descriptor(seed=0)


@pytest.fixture()
def store(tmp_path):
    from utils.storage import Store

    return Store(tmp_path / "export")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request, tmp_path):
    """Stores on one database of each back end: the SQLite file in ``EXPORT_DIR/.capture``, or a fresh PostgreSQL
    database (``postgres_url``; skipped with the reason where PostgreSQL is missing). ``store_factory(**kwargs)``
    opens a Store on that database (and ``tmp_path/export``); ``.backend`` and ``.url`` (None for SQLite) say which.
    Every store is closed afterwards."""
    from utils.storage import Store

    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    made: list = []

    def make(export: Path | None = None, **kwargs):
        made.append(Store(export or tmp_path / "export", url=url, **kwargs))
        return made[-1]

    make.backend, make.url = request.param, url
    yield make
    for store in made:
        store.close()


def original_toydata() -> list[Path]:
    """The original app's 17 frames (skips the test when shared/ is not beside the checkout)."""
    files = sorted(ORIGINAL_TOYDATA.glob("*.JPG"))
    if len(files) != 17:
        pytest.skip(f"original toydata not found in {ORIGINAL_TOYDATA}")
    return files


def restart_engines() -> None:
    """What a restart of the dashboard does to this process's engines: every capture worker, control loop, jobs,
    sync, events and statistics thread is stopped and the caches are cleared, so the next page builds a fresh
    engine (the store's recovery runs again)."""
    import streamlit as st

    import ImageProcessingThread
    from utils.archive.indexer import stop_all_central_indexers
    from utils.archive.sync import stop_all_syncers
    from utils.control.loop import stop_all_control_loops
    from utils.engine import forget_engines
    from utils.events.dispatcher import stop_all_event_dispatchers
    from utils.jobs import stop_all_schedulers
    from utils.stats_store import stop_all_indexers

    stop_all_schedulers()
    stop_all_syncers()
    stop_all_event_dispatchers()
    stop_all_central_indexers()
    stop_all_indexers()
    stop_all_control_loops()
    forget_engines()
    for worker in list(ImageProcessingThread._workers.values()):
        worker.stop()
    ImageProcessingThread._workers.clear()
    st.cache_resource.clear()


@pytest.fixture()
def app_env(tmp_path, monkeypatch):
    """Environment for the dashboard run in-process (AppTest): a temporary EXPORT_DIR, no weight download.

    Afterwards every capture worker and statistics indexer is stopped and the Streamlit caches are
    cleared, so the next test builds a fresh engine.
    """
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "export"))
    monkeypatch.setenv("DESCRIPTOR_DOWNLOAD", "false")
    monkeypatch.setenv("LOGGING_LEVEL", "INFO")
    restart_engines()  # workers other tests registered
    yield tmp_path / "export"
    restart_engines()


@pytest.fixture()
def browser_factory():
    """New browser contexts of Debian's Chromium for one test (skipped when it or playwright is missing)."""
    from tests.browser import CHROMIUM, FLAGS, require_browser

    api = require_browser()
    with api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b.new_context
        b.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (headless, no network); skipped when either is missing."""
    from tests.browser import CHROMIUM, FLAGS, require_browser

    api = require_browser()
    with api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


# ---------------------------------------------------------------- real small file systems (root needed)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@pytest.fixture()
def tmpfs(tmp_path):
    """A mounted tmpfs factory: ``tmpfs(size)`` -> its folder; unmounted in teardown whatever happened."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (the disk-fault tests simulate a full / read-only disk)")
        res = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point))
        if res.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {res.stderr.strip() or res.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        _run("mount", "-o", "remount,rw", str(point))
        if _run("umount", str(point)).returncode != 0:
            _run("umount", "-l", str(point))  # a file still open somewhere: detach now, freed when closed


def remount(point: Path, mode: str, timeout: float = 15.0) -> None:
    """``mount -o remount,<mode>``; retried while a file is open for writing (EBUSY between two saves)."""
    end = time.monotonic() + timeout
    while True:
        res = _run("mount", "-o", f"remount,{mode}", str(point))
        if res.returncode == 0:
            return
        if time.monotonic() > end:
            raise AssertionError(f"remount,{mode} failed: {res.stderr}")
        time.sleep(0.02)
