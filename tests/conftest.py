"""Shared fixtures: real SQLite stores in temporary folders, the seeded untrained descriptor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ORIGINAL_TOYDATA = ROOT.parent / "shared" / "datasets" / "original-toydata"
PROJECT_TOYDATA = ROOT / "toydata"


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


def original_toydata() -> list[Path]:
    """The original app's 17 frames (skips the test when shared/ is not beside the checkout)."""
    files = sorted(ORIGINAL_TOYDATA.glob("*.JPG"))
    if len(files) != 17:
        pytest.skip(f"original toydata not found in {ORIGINAL_TOYDATA}")
    return files


@pytest.fixture()
def app_env(tmp_path, monkeypatch):
    """Environment for the dashboard run in-process (AppTest): a temporary EXPORT_DIR, no weight download.

    Afterwards every capture worker and statistics indexer is stopped and the Streamlit caches are
    cleared, so the next test builds a fresh engine.
    """
    import streamlit as st

    import ImageProcessingThread
    from utils.stats_store import stop_all_indexers

    def reset() -> None:
        stop_all_indexers()
        for worker in list(ImageProcessingThread._workers.values()):
            worker.stop()
        ImageProcessingThread._workers.clear()
        st.cache_resource.clear()

    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "export"))
    monkeypatch.setenv("DESCRIPTOR_DOWNLOAD", "false")
    monkeypatch.setenv("LOGGING_LEVEL", "INFO")
    reset()  # workers other tests registered
    yield tmp_path / "export"
    reset()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (headless, no network); skipped when either is missing."""
    from tests.browser import CHROMIUM, FLAGS, require_browser

    api = require_browser()
    with api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()
