"""Camera faults: the real worker and BaslerAdapterCamera against the local adapter simulator.

For every fault the worker must keep running, show the error (what and how long), back off
(never longer than ``backoff_max`` between two requests), resume by itself, and leave every
kept image with its row and every row with its file.

"The camera comes back after a minute" uses ``FAULT_OUTAGE_S`` seconds of outage: 5 by default
(fast), ``FAULT_OUTAGE_S=60 pytest tests/test_faults.py -k outage`` runs the real minute.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from communication import BaslerAdapterCamera, CameraError
from DataModels_BaslerCameraAdapter import TakePhotoParams
from describe_images import load_descriptor
from ImageProcessingThread import CaptureOptions, CaptureWorker
from tests.conftest import PROJECT_TOYDATA, wait_for
from utils.demo_adapter import DemoAdapterServer
from utils.files import is_temp_file

OUTAGE_S = float(os.environ.get("FAULT_OUTAGE_S", "5"))
BACKOFF_MAX = 0.4  # short, so that each fault lasts a few backoffs in a short test
SLACK = 0.8  # scheduling delay tolerated on two loaded cores
TIMEOUT = 1.0  # CAMERA_TIMEOUT of the client




class TimedCamera:
    """Forwards to the real camera and records every grab: (start, end, error or None)."""

    def __init__(self, camera: BaslerAdapterCamera) -> None:
        self.camera = camera
        self.name = camera.name
        self.calls: list[tuple[float, float, CameraError | None]] = []
        self._lock = threading.Lock()

    def grab(self):
        t0 = time.monotonic()
        try:
            frame = self.camera.grab()
        except CameraError as err:
            with self._lock:
                self.calls.append((t0, time.monotonic(), err))
            raise
        with self._lock:
            self.calls.append((t0, time.monotonic(), None))
        return frame

    def close(self) -> None:
        self.camera.close()

    def pauses_after_failures(self, since: float = 0.0) -> list[float]:
        """Seconds between the end of each failed request and the start of the next request."""
        with self._lock:
            calls = [c for c in self.calls if c[1] >= since]  # a request in flight at ``since`` counts too
        return [nxt[0] - cur[1] for cur, nxt in zip(calls, calls[1:]) if cur[2] is not None]

    def failures(self, since: float = 0.0) -> list[CameraError]:
        with self._lock:
            return [c[2] for c in self.calls if c[1] >= since and c[2] is not None]


@pytest.fixture(scope="module")
def thumb_descriptor():
    return load_descriptor(allow_download=False)  # the thumbnail fallback offline: fastest


class Rig:
    """A demo adapter, the Basler client on it (timed), a store and a running worker."""

    def __init__(self, tmp_path, descriptor, backoff_max=BACKOFF_MAX, tokens=None, token=None, rate=20.0):
        from utils.storage import Store

        self.server = DemoAdapterServer(folder=PROJECT_TOYDATA, tokens=tokens).start()
        self.camera = TimedCamera(BaslerAdapterCamera(self.server.url, TakePhotoParams(), token=token, timeout=TIMEOUT))
        self.store = Store(tmp_path / "export")
        self.worker = CaptureWorker(self.camera, descriptor, self.store, backoff_max=backoff_max)
        self.backoff_max = backoff_max
        self.order = self.worker.start("FAULTS", CaptureOptions(threshold=0.15, images_per_second=rate, resolution=320))

    def snap(self):
        return self.worker.snapshot()

    def wait_frames(self, n: int, timeout: float = 30.0) -> None:
        start = self.snap().frames_seen
        wait_for(lambda: self.snap().frames_seen >= start + n, timeout, what=f"{n} more frames")

    def close(self):
        summary = self.worker.stop()
        self.server.stop()
        self.camera.close()
        return summary

    def assert_consistent(self) -> None:
        order = self.store.get_order(self.order.id)
        entries = list(order.folder.iterdir())
        assert not [p for p in entries if is_temp_file(p)]
        pending = self.store._query("SELECT id FROM images WHERE order_id = ? AND state = 'pending'", (order.id,))
        assert not pending
        files = sorted(p.name for p in entries if p.is_file())
        rows = sorted(r.file_name for r in self.store.images(order.id))
        assert files == rows and rows, (files, rows)
        assert len(rows) == self.snap().kept


@pytest.fixture()
def rig(tmp_path, thumb_descriptor):
    made: list[Rig] = []

    def make(**kwargs) -> Rig:
        r = Rig(tmp_path / str(len(made)), thumb_descriptor, **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.worker.stop()
        r.server.stop()


def check_fault_episode(r: Rig, inject, expected: str, kind: str, count: int = 5, also: tuple[str, ...] = ()) -> None:
    """Inject ``count`` failing requests' worth of faults and check error, duration, backoff and recovery.

    Every failure must be of ``kind`` (or of a kind in ``also``, side effects the fault may cause).
    """
    r.wait_frames(3)
    errors0 = r.snap().error_count
    t0 = time.monotonic()
    inject()
    wait_for(lambda: r.snap().last_error is not None, what="the error to show")
    first = r.snap()
    lasted_first = first.error_duration_s  # a live value: read it now
    assert first.running and first.error_since is not None and lasted_first >= 0
    assert first.last_error.startswith("Camera: ") and expected in first.last_error, first.last_error
    time.sleep(r.backoff_max + 0.1)
    second = r.snap()
    if second.last_error is not None:  # still failing: the same episode, longer
        assert second.error_since == first.error_since
        assert second.error_duration_s >= lasted_first + r.backoff_max
    wait_for(lambda: r.snap().error_count >= errors0 + count, what=f"{count} failed requests")
    during = r.snap()  # the episode lasts at least the backoffs between its failures
    assert during.last_error is None or during.error_duration_s >= (count - 1) * 0.9 * min(0.5, r.backoff_max)
    seen = r.snap().frames_seen
    wait_for(lambda: r.snap().last_error is None and r.snap().frames_seen >= seen + 5, what="frames resuming")
    assert r.snap().error_since is None and r.snap().running
    failures = r.camera.failures(since=t0)
    assert failures and failures[0].kind == kind, [(f.kind, str(f)) for f in failures]
    assert len(failures) >= count and all(f.kind in (kind, *also) for f in failures), [(f.kind, str(f)) for f in failures]
    pauses = r.camera.pauses_after_failures(since=t0)
    assert pauses and min(pauses) >= 0.9 * min(0.5, r.backoff_max), pauses  # it does back off ...
    assert max(pauses) <= r.backoff_max + SLACK, pauses  # ... never longer than backoff_max


# (faults injected for one failed grab, expected text, CameraError kind); 5xx and dropped connections are
# retried once on a fresh connection by the client, so one failed grab takes two of them
FAULTS = {
    "401": (["unauthorized"], "requires a token: set CAMERA_TOKEN", "auth"),
    "422": (["status:422"], "refused the parameters", "bad_parameter"),
    "400 no image": (["no_image"], "delivered no image in time", "no_image"),
    "500 dropped connection": (["server_error_close"] * 2, "HTTP 500 Internal Server Error", "server"),
    "reset": (["reset"] * 2, "connection reset or closed by the server", "connection"),
    "garbage": (["garbage"], "the answer is not an image", "not_image"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_shown_backed_off_and_recovered(rig, name):
    faults, expected, kind = FAULTS[name]
    r = rig()
    check_fault_episode(r, lambda: r.server.inject(*(faults * 5)), expected, kind)
    if name == "400 no image":
        assert "No image retrieved." in r.camera.failures()[0].args[0] and "timeout_ms" in str(r.camera.failures()[0])
    if kind in ("server", "connection"):
        assert "failed again after reconnecting" in str(r.camera.failures()[0])
    r.close()
    r.assert_consistent()


def test_single_500_or_reset_is_retried_without_an_error(rig):
    r = rig()
    r.wait_frames(3)
    for fault in ("server_error_close", "reset"):
        requests = r.server.requests
        r.server.inject(fault)
        wait_for(lambda: r.server.requests >= requests + 3, what="requests after the fault")
    r.wait_frames(3)
    assert r.snap().error_count == 0 and r.camera.failures() == []
    assert r.server.concurrent_violations == 0
    r.close()
    r.assert_consistent()


def test_wrong_token_after_rotation_then_fixed(rig):
    r = rig(tokens=["secret"], token="secret")
    r.wait_frames(3)
    r.server.tokens = ["rotated"]  # the adapter's token changed: every request is refused
    wait_for(lambda: r.snap().error_count >= 3, what="refused requests")
    snap = r.snap()
    assert "refused the token: check CAMERA_TOKEN" in snap.last_error and "Invalid access token" in snap.last_error
    assert "secret" not in snap.last_error  # never show the token
    assert snap.error_duration_s > 0.5
    r.server.tokens = ["secret"]
    seen = r.snap().frames_seen
    wait_for(lambda: r.snap().last_error is None and r.snap().frames_seen >= seen + 5, what="frames resuming")
    assert max(r.camera.pauses_after_failures()) <= r.backoff_max + SLACK
    r.close()
    r.assert_consistent()


def test_timeout_is_shown_and_recovered(rig):
    r = rig()
    # answers later than CAMERA_TIMEOUT: the client gives up, drops the connection and backs off; should the
    # late answer still be in flight when the next request comes, the adapter answers 500 (as the real one does)
    check_fault_episode(r, lambda: r.server.inject(*[f"slow:{TIMEOUT + 0.2}"] * 3), "no answer within CAMERA_TIMEOUT",
                        "timeout", count=2, also=("server",))
    r.close()
    r.assert_consistent()


def test_slow_answers_lower_the_rate_without_errors(rig):
    r = rig(rate=20.0)
    r.wait_frames(25)  # the rate window fills at full speed
    wait_for(lambda: r.snap().achieved_fps > 12, what="full speed")
    r.server.set_latency(0.2)  # the camera takes 0.2 s per image: at most 5 frames/s
    seen = r.snap().frames_seen
    wait_for(lambda: r.snap().frames_seen >= seen + 22, what="slow frames")  # the window holds only slow ones
    slow = r.snap()
    assert slow.last_error is None and slow.error_count == 0
    assert 3.0 < slow.achieved_fps < 5.5, slow.achieved_fps
    r.server.set_latency(0.0)
    r.wait_frames(25)
    wait_for(lambda: r.snap().achieved_fps > 12, what="full speed again")
    assert r.snap().error_count == 0 and r.server.concurrent_violations == 0
    r.close()
    r.assert_consistent()


def test_outage_camera_comes_back_by_itself(rig):
    """The camera disappears for FAULT_OUTAGE_S seconds (5 by default, 60 for the real minute)."""
    backoff_max = 2.0
    r = rig(backoff_max=backoff_max)
    r.wait_frames(5)
    kept = r.snap().kept
    t_down = time.monotonic()
    r.server.down()
    wait_for(lambda: r.snap().last_error is not None, what="the error to show")
    first = r.snap()
    assert "cannot reach the camera adapter (connection refused)" in first.last_error, first.last_error
    assert "CAMERA_ADDRESS" in first.last_error
    durations = []
    while time.monotonic() - t_down < OUTAGE_S:
        snap = r.snap()
        assert snap.running and snap.error_since == first.error_since
        durations.append(snap.error_duration_s)
        time.sleep(min(1.0, OUTAGE_S / 10))
    assert durations == sorted(durations) and durations[-1] >= OUTAGE_S - 1.5, durations
    t_up = time.monotonic()
    r.server.up()
    seen = r.snap().frames_seen
    wait_for(lambda: r.snap().last_error is None and r.snap().frames_seen > seen, timeout=backoff_max + 10,
             what="frames after the camera came back")
    resumed_after = time.monotonic() - t_up
    assert resumed_after <= backoff_max + SLACK + 0.5, resumed_after
    r.wait_frames(10)
    pauses = r.camera.pauses_after_failures(since=t_down)
    assert max(pauses) <= backoff_max + SLACK, pauses
    assert pauses[:3] == sorted(pauses[:3]) and pauses[0] < 0.5 + SLACK  # 0.5, 1, 2, 2, ... doubling
    if OUTAGE_S >= 4:
        assert sum(p >= 0.9 * backoff_max for p in pauses) >= 1  # it reached backoff_max and stayed there
    assert len(r.camera.failures(since=t_down)) <= OUTAGE_S / 0.5 + 3  # no hammering of a dead camera
    assert r.snap().error_count == len(r.camera.failures())
    summary = r.close()
    assert summary.frames > 0 and summary.kept >= kept
    r.assert_consistent()
