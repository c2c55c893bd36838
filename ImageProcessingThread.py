"""The capture worker: camera -> features -> distinct images on disk (or a video), in the background.

One :class:`CaptureWorker` per camera per process (:func:`worker_for`). While an order runs
it uses two threads so that both CPU cores work:

* **acquire**: paces camera requests at ``images_per_second``, decodes each frame (only as
  many pixels as needed), scales it to the chosen resolution and prepares the network
  input; hands it over through a queue of two (when processing falls behind, the oldest
  frame is dropped and counted);
* **process**: computes the features, compares them with the kept images in one
  vectorized step, saves distinct frames (or writes the video frame).

It never calls Streamlit. The UI reads :meth:`CaptureWorker.snapshot` and changes the
threshold, the rate and "save the next frame" while it runs. Camera errors never end a run:
the worker backs off (0.5 s doubling up to ``backoff_max``), shows the error and how long it
lasts, and goes on when the camera answers again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from PIL import Image

from communication import CameraError, CameraSource, Frame
from describe_images import Descriptor
from utils.imaging import ImageDecodeError, decode_image, fit_max_side, from_array
from utils.keeper import Keeper
from utils.storage import DB_ERRORS, ImageRecord, OrderRecord, StorageError, Store, utc_now
from utils.video import VideoError, VideoRecorder

logger = logging.getLogger(__name__)

MODE_DISTINCT = "distinct images"
MODE_VIDEO = "video"
Mode = Literal["distinct images", "video"]
_RATE_WINDOW = 20  # frames over which the achieved rate is measured
RECENT_KEPT = 6  # kept images shown in the live view's strip


class WorkerBusy(RuntimeError):
    """Start was pressed while an order runs; the message names the running order."""


@dataclass(frozen=True)
class CaptureOptions:
    """How one order is captured; threshold and rate may change while it runs."""

    mode: Mode = MODE_DISTINCT
    threshold: float = 0.325
    images_per_second: float = 5.0
    resolution: int = 480
    keep_original: bool = False
    jpeg_quality: int = 95
    video_codec: str = "h264"
    settle_frames: int = 0  # frames the scene must hold still before it is judged (0: every frame)


@dataclass(frozen=True)
class RunSummary:
    """What a finished run produced (shown after Close order)."""

    order: OrderRecord
    kept: int
    frames: int
    errors: int
    video_path: Path | None = None
    video_fps: float | None = None


@dataclass(frozen=True)
class WorkerSnapshot:
    """A consistent copy of the worker's state for the UI (cheap; no image is copied)."""

    running: bool = False
    order: OrderRecord | None = None
    options: CaptureOptions | None = None
    latest_frame: Image.Image | None = None
    latest_at: datetime | None = None
    last_distance: float | None = None
    settling: bool = False  # the scene is moving: the latest frame was not judged
    kept: int = 0
    frames_seen: int = 0
    achieved_fps: float = 0.0
    dropped: int = 0
    last_error: str | None = None
    error_count: int = 0
    error_since: datetime | None = None
    last_saved: ImageRecord | None = None
    recent: tuple[ImageRecord, ...] = ()  # the last kept images, newest first
    video_frames: int = 0
    save_next_pending: bool = False
    finished: RunSummary | None = None
    started_by: str | None = None  # who started the running order when not the dashboard (e.g. "api:operator")

    @property
    def error_duration_s(self) -> float | None:
        """How long the current error has lasted, in seconds."""
        return None if self.error_since is None else (utc_now() - self.error_since).total_seconds()


@dataclass
class _Prepared:
    frame: Frame
    image: Image.Image  # scaled to the resolution, RGB or L
    net_input: np.ndarray | None
    data: bytes | None  # the camera's original bytes (when kept untouched)


class CaptureWorker:
    """Runs orders on one camera; thread-safe; see the module docstring."""

    def __init__(
        self,
        camera: CameraSource,
        descriptor: Descriptor | None,
        store: Store,
        *,
        backoff_max: float = 10.0,
        join_timeout: float = 15.0,
    ) -> None:
        self.camera = camera
        self.descriptor = descriptor
        self.store = store
        self.backoff_max = backoff_max
        self.join_timeout = join_timeout
        self._lock = threading.RLock()  # guards _state and run control
        self._state = WorkerSnapshot()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()  # the running order's; each run gets its own event and queue
        self._keeper: Keeper | None = None
        self._save_next = threading.Event()
        self._recorder: VideoRecorder | None = None
        self._times: deque[float] = deque(maxlen=_RATE_WINDOW)
        self._camera_params: Any = None  # parameters for the camera, handed over at the next start

    # ------------------------------------------------------------ control (UI side)
    def reconfigure_camera(self, params: Any) -> bool:
        """New parameters for the camera (``set_params``): used now when no order runs (True), else from the next
        order's start (False), so that a running order keeps one size and colour of frames."""
        with self._lock:
            self._camera_params = params
            if self._state.running:
                return False
            self._apply_camera_params()
            return True

    def _apply_camera_params(self) -> None:
        params, self._camera_params = self._camera_params, None
        set_params = getattr(self.camera, "set_params", None)
        if params is not None and set_params is not None:
            set_params(params)
            logger.info("Camera %s uses new parameters from now on", self.camera.name)

    @property
    def running(self) -> bool:
        return self._state.running

    def snapshot(self) -> WorkerSnapshot:
        with self._lock:
            return replace(self._state, save_next_pending=self._save_next.is_set())

    def start(self, order_number: str, options: CaptureOptions, max_length: int = 64,
              started_by: str | None = None) -> OrderRecord:
        """Open (or resume) the order and start capturing; ``started_by`` names a starter other than the dashboard.

        Raises WorkerBusy, OrderNumberError, StorageError, or ValueError for a bad option.
        """
        if options.mode not in (MODE_DISTINCT, MODE_VIDEO):
            raise ValueError(f"unknown mode {options.mode!r}")
        if options.images_per_second <= 0:
            raise ValueError("images_per_second must be positive")
        with self._lock:
            if self._state.running:
                running = self._state.order.order_number if self._state.order else "?"
                raise WorkerBusy(f"Order {running} is running on this camera; close it before starting another.")
            if options.mode == MODE_DISTINCT and self.descriptor is None:
                raise ValueError("No image descriptor is available; distinct-image capture is disabled.")
            self._apply_camera_params()  # parameters saved while the last order ran
            if options.mode == MODE_VIDEO:  # fail before the order exists when no codec works
                VideoRecorder(self.store.export_dir / "probe.mp4", options.images_per_second, options.video_codec).probe()
            order, resumed = self.store.open_order(
                order_number,
                options.mode,
                threshold=options.threshold if options.mode == MODE_DISTINCT else None,
                images_per_second=options.images_per_second,
                resolution=options.resolution,
                camera=self.camera.name,
                descriptor=str(self.descriptor.status) if self.descriptor else None,
                max_length=max_length,
            )
            self._keeper = None
            kept = 0
            if options.mode == MODE_DISTINCT:
                assert self.descriptor is not None
                self._keeper = Keeper(
                    self.store, self.descriptor, order, threshold=options.threshold,
                    settle_frames=options.settle_frames, jpeg_quality=options.jpeg_quality,
                    camera_name=self.camera.name, resume=resumed,
                )
                kept = self._keeper.kept
            self._recorder = None
            if options.mode == MODE_VIDEO:
                self._recorder = VideoRecorder(self._video_path(order), options.images_per_second, options.video_codec)
            self._stop = stop = threading.Event()
            frames: queue.Queue[_Prepared] = queue.Queue(maxsize=2)
            self._save_next.clear()
            self._times.clear()
            recent = tuple(reversed(self.store.images(order.id, offset=max(0, kept - RECENT_KEPT),
                                                      kinds=("capture",)))) if kept else ()
            self._state = WorkerSnapshot(running=True, order=order, options=options, kept=kept, recent=recent,
                                         started_by=started_by)
            self._threads = [
                threading.Thread(target=self._guard(self._acquire_loop, stop, frames), name="capture-acquire",
                                 daemon=True),
                threading.Thread(target=self._guard(self._process_loop, stop, frames), name="capture-process",
                                 daemon=True),
            ]
            for t in self._threads:
                t.start()
        logger.info(
            "%s order %s (%s, %s images/s, threshold %s, resolution %s) on %s%s",
            "Resumed" if resumed else "Started", order.order_number, options.mode, options.images_per_second,
            options.threshold, options.resolution, self.camera.name, f" by {started_by}" if started_by else "",
        )
        return order

    def stop(self) -> RunSummary | None:
        """Close the running order: stop both threads (event + join), finish the video, close the order."""
        with self._lock:
            if not self._state.running:
                return self._state.finished
            self._stop.set()
            threads = self._threads
        deadline = time.monotonic() + self.join_timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:  # a camera call that ignores its timeout; the daemon thread ends when it returns
            logger.error("Threads %s did not stop within %.0f s", stuck, self.join_timeout)
        with self._lock:
            state = self._state
            order = state.order
            assert order is not None
            video_path, video_fps = None, None
            if self._recorder is not None:
                try:
                    video_path, video_fps = self._recorder.close()
                except Exception as err:  # noqa: BLE001 - report, still close the order
                    logger.exception("Finishing the video failed")
                    self._set_error(f"Finishing the video failed: {err}")
                self._recorder = None
            try:
                closed = self.store.close_order(
                    order.id,
                    video_file=video_path.name if video_path else None,
                    video_frames=state.video_frames if video_path else None,
                    video_fps=video_fps,
                    counts={"frames": state.frames_seen, "dropped": state.dropped, "errors": state.error_count},
                )
            except DB_ERRORS + (StorageError,) as err:  # e.g. a completely full disk
                self._state = replace(self._state, running=False, finished=None)
                self._threads = []
                message = (
                    f"Order {order.order_number} is stopped but could not be closed ({err}). Nothing is lost: "
                    "free space, then press Start with the same order number and Close order again."
                )
                logger.error("%s", message)
                raise StorageError(message) from err
            summary = RunSummary(
                order=closed,
                kept=self._state.kept,
                frames=self._state.frames_seen,
                errors=self._state.error_count,
                video_path=video_path,
                video_fps=video_fps,
            )
            self._state = replace(self._state, running=False, order=closed, finished=summary)
            self._threads = []
        logger.info(
            "Closed order %s: %d image(s) kept of %d frames, %d error(s)%s",
            closed.order_number, summary.kept, summary.frames, summary.errors,
            f", video {video_path}" if video_path else "",
        )
        return summary

    def set_threshold(self, threshold: float) -> None:
        """Change the threshold of the running order at once."""
        with self._lock:
            if self._state.options is not None:
                self._state = replace(self._state, options=replace(self._state.options, threshold=float(threshold)))
            if self._keeper is not None:
                self._keeper.set_threshold(threshold)
            order = self._state.order if self._state.running else None
        if order is not None:
            self.store.update_order(order.id, threshold=float(threshold))

    def set_rate(self, images_per_second: float) -> None:
        """Change the request rate of the running order at once."""
        if images_per_second <= 0:
            raise ValueError("images_per_second must be positive")
        with self._lock:
            if self._state.options is not None:
                opts = replace(self._state.options, images_per_second=float(images_per_second))
                self._state = replace(self._state, options=opts)
            order = self._state.order if self._state.running else None
        if order is not None:
            self.store.update_order(order.id, images_per_second=float(images_per_second))

    def save_next(self) -> None:
        """Keep the next frame whatever its distance (distinct-images mode)."""
        self._save_next.set()

    # ------------------------------------------------------------ internals
    def _video_path(self, order: OrderRecord) -> Path:
        path = order.folder / f"{order.folder.name}.mp4"
        k = 1
        while path.exists():
            k += 1
            path = order.folder / f"{order.folder.name}_{k}.mp4"
        return path

    def _options(self) -> CaptureOptions:
        opts = self._state.options
        assert opts is not None
        return opts

    def _guard(
        self, loop: Callable[[threading.Event, "queue.Queue[_Prepared]"], None], stop: threading.Event,
        frames: "queue.Queue[_Prepared]",
    ) -> Callable[[], None]:
        """Run a loop of one run (its own stop event and queue: a thread that outlives its run never joins
        the next one); an unexpected exception is logged and shown, and the loop restarts."""

        def run() -> None:
            while not stop.is_set():
                try:
                    loop(stop, frames)
                    return
                except Exception as err:  # noqa: BLE001 - a bug must not silently end capture
                    logger.exception("Capture %s failed", loop.__name__)
                    self._set_error(f"Internal error in {loop.__name__}: {type(err).__name__}: {err}")
                    stop.wait(1.0)

        return run

    def _set_error(self, message: str) -> None:
        with self._lock:
            s = self._state
            since = s.error_since or utc_now()
            self._state = replace(s, last_error=message, error_count=s.error_count + 1, error_since=since)

    def _clear_error(self) -> None:
        with self._lock:
            if self._state.last_error is not None:
                lasted = self._state.error_duration_s or 0.0
                logger.info("Capture recovered after %.1f s: %s", lasted, self._state.last_error)
                self._state = replace(self._state, last_error=None, error_since=None)

    def _camera_event(self, event_type: str, message: str, since: datetime | None = None) -> None:
        """Record camera.error (when an error starts) or camera.recovered (frames again) for the webhooks and MQTT;
        a database that cannot take it is logged, capture goes on."""
        order = self._state.order
        data = {"order_id": order.id if order else None, "order_number": order.order_number if order else None,
                "camera": self.camera.name, "message": message}
        if since is not None:
            data["lasted_s"] = round((utc_now() - since).total_seconds(), 3)
        try:
            self.store.record_event(event_type, data)
        except StorageError as err:
            logger.error("Could not record the %s event: %s", event_type, err)

    def _acquire_loop(self, stop: threading.Event, frames: "queue.Queue[_Prepared]") -> None:
        next_t = time.monotonic()
        failures = 0
        camera_error: tuple[str, datetime] | None = None  # the camera's error of this outage, since when
        while not stop.is_set():
            now = time.monotonic()
            if now < next_t:
                stop.wait(next_t - now)
                continue
            opts = self._options()
            next_t = max(next_t + 1.0 / opts.images_per_second, now)
            try:
                frame = self.camera.grab()
                prepared = self._prepare(frame, opts)
            except (CameraError, ImageDecodeError) as err:
                failures += 1
                delay = min(self.backoff_max, 0.5 * 2 ** (failures - 1))
                msg = f"Camera: {err}" if isinstance(err, CameraError) else f"Camera sent a bad image: {err}"
                self._set_error(msg)
                logger.warning("%s (retry in %.1f s)", msg, delay)
                if camera_error is None:
                    camera_error = (msg, utc_now())
                    self._camera_event("camera.error", msg)
                stop.wait(delay)
                next_t = time.monotonic()
                continue
            if failures:
                failures = 0
                self._clear_error()
            if camera_error is not None:
                self._camera_event("camera.recovered", camera_error[0], since=camera_error[1])
                camera_error = None
            with self._lock:
                self._times.append(time.monotonic())
            try:
                frames.put_nowait(prepared)
            except queue.Full:
                try:
                    frames.get_nowait()
                    with self._lock:
                        self._state = replace(self._state, dropped=self._state.dropped + 1)
                except queue.Empty:
                    pass
                frames.put_nowait(prepared)

    def _prepare(self, frame: Frame, opts: CaptureOptions) -> _Prepared:
        """Decode (reduced), scale to the resolution, and prepare the network input."""
        if frame.data is not None:
            decoded = decode_image(frame.data, max_side=opts.resolution)
        elif frame.image is not None:
            decoded = from_array(frame.image)
        else:
            raise ImageDecodeError("the camera returned an empty frame")
        net_input = None
        if opts.mode == MODE_DISTINCT and self.descriptor is not None:
            net_input = self.descriptor.prepare(decoded)
        image = fit_max_side(decoded, opts.resolution)
        keep_bytes = frame.data if opts.keep_original else None
        return _Prepared(frame=frame, image=image, net_input=net_input, data=keep_bytes)

    def _process_loop(self, stop: threading.Event, frames: "queue.Queue[_Prepared]") -> None:
        while True:
            try:
                item = frames.get(timeout=0.05)
            except queue.Empty:
                if stop.is_set():
                    return  # queue drained: every acquired frame was processed
                continue
            opts = self._options()
            if opts.mode == MODE_VIDEO:
                self._process_video(item)
            else:
                self._process_distinct(item, opts)
            with self._lock:
                times = self._times
                fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
                self._state = replace(
                    self._state,
                    latest_frame=item.image,
                    latest_at=item.frame.timestamp,
                    frames_seen=self._state.frames_seen + 1,
                    achieved_fps=fps,
                )

    def _process_video(self, item: _Prepared) -> None:
        assert self._recorder is not None
        try:
            self._recorder.write(item.image, item.frame.timestamp)
        except (VideoError, OSError, ValueError) as err:
            self._set_error(f"Video: {err}")
            return
        with self._lock:
            self._state = replace(self._state, video_frames=self._recorder.frames)

    def _process_distinct(self, item: _Prepared, opts: CaptureOptions) -> None:
        keeper = self._keeper
        assert keeper is not None and item.net_input is not None
        forced = self._save_next.is_set()
        try:
            offered = keeper.offer(item.image, item.net_input, item.frame.timestamp, still=item.frame.still,
                                   force=forced, original=item.data)
        except StorageError as err:
            message = f"Saving failed: {err}"
            if message != self._state.last_error:  # once per problem, not once per frame (disk full: 23 lines/s)
                logger.error("%s", err)
            self._set_error(message)
            return
        decision = offered.decision
        with self._lock:
            self._state = replace(
                self._state, last_distance=None if np.isinf(decision.distance) else decision.distance,
                settling=decision.settling,
            )
        if offered.record is None:
            return
        if forced:
            self._save_next.clear()
        with self._lock:
            recent = (offered.record, *self._state.recent)[:RECENT_KEPT]
            self._state = replace(self._state, kept=keeper.kept, last_saved=offered.record, recent=recent)
        if self._state.last_error and self._state.last_error.startswith("Saving failed"):
            self._clear_error()


# ------------------------------------------------------------ one worker per camera per process

_workers: dict[str, CaptureWorker] = {}
_workers_lock = threading.Lock()


def worker_for(key: str, factory: Callable[[], CaptureWorker]) -> CaptureWorker:
    """The process's worker for camera ``key``, created by ``factory`` on first use."""
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None:
            worker = _workers[key] = factory()
        return worker
