"""The engine's side of the control: who drives the camera, and the commands of the HTTP API carried out.

Exactly one process drives a station's camera: the one that holds the lease ``capture-engine`` in the station
database. The dashboard's process takes it when its engine starts (at server start, before any browser opens it).
A second process on the same database (a second dashboard, a script) gets a clear refusal on Start that names the
holder, and takes over within the lease's time once the holder has stopped (at once when the holder was a process of
this machine that no longer exists, e.g. killed).

While it holds the lease, :class:`ControlLoop` publishes the engine's state about once a second
(``GET /orders/current``) and carries out the commands that the API queued (:mod:`utils.control.queue`) in order.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ImageProcessingThread import MODE_DISTINCT, MODE_VIDEO, WorkerBusy, WorkerSnapshot
from utils.control import queue
from utils.control.queue import Answer, Command
from utils.jobs import drop_dead_holder, holder_id
from utils.storage import DB_ERRORS, OrderNumberError, StorageError, validate_order_number
from utils.video import VideoError

if TYPE_CHECKING:
    from utils.engine import Engine

logger = logging.getLogger(__name__)

TICK_S = 0.1  # how often the loop looks for a waiting command (a cheap indexed read)
PUBLISH_S = 1.0  # how often the state is published and the lease renewed
LEASE_TTL_S = 10.0  # a holder that stopped renewing loses the lease after this long
SAVE_WAIT_S = 5.0  # how long save-image waits for the kept frame before it answers 202


def live_state(snap: WorkerSnapshot, camera: str) -> dict[str, Any]:
    """The worker's snapshot as JSON-ready data (``GET /orders/current``)."""
    order, opts = snap.order, snap.options
    return {
        "running": snap.running,
        "order_id": order.id if order is not None and snap.running else None,
        "order_number": order.order_number if order is not None and snap.running else None,
        "mode": opts.mode if opts is not None and snap.running else None,
        "started_by": snap.started_by if snap.running else None,
        "threshold": opts.threshold if opts is not None and snap.running and opts.mode == MODE_DISTINCT else None,
        "images_per_second": opts.images_per_second if opts is not None and snap.running else None,
        "resolution": opts.resolution if opts is not None and snap.running else None,
        "kept": snap.kept if snap.running else 0,
        "video_frames": snap.video_frames if snap.running else 0,
        "frames_seen": snap.frames_seen if snap.running else 0,
        "achieved_fps": round(snap.achieved_fps, 2) if snap.running else 0.0,
        "last_distance": snap.last_distance if snap.running else None,
        "last_frame_at": snap.latest_at.isoformat() if snap.latest_at is not None and snap.running else None,
        "last_saved_image_id": snap.last_saved.id if snap.last_saved is not None and snap.running else None,
        "camera": camera,
        "camera_error": snap.last_error,
        "camera_error_since": snap.error_since.isoformat() if snap.error_since is not None else None,
    }


class ControlLoop:
    """Holds the engine lease, publishes the engine's state and carries out queued commands (one thread)."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.store = engine.store
        self.holder = holder_id()
        self.holding = False
        self.other: str | None = None  # the holder while another process drives the camera
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_beat = 0.0

    # ------------------------------------------------------------ lease
    def take_lease(self) -> bool:
        """Take or renew the engine lease (a dead holder of this machine is replaced at once)."""
        try:
            got = self.store.acquire_lease(queue.LEASE, self.holder, LEASE_TTL_S)
            if not got:  # a holder of this machine that was killed gives it back at once
                drop_dead_holder(self.store, queue.LEASE, self.holder)
                got = self.store.acquire_lease(queue.LEASE, self.holder, LEASE_TTL_S)
            if got != self.holding:
                logger.log(logging.INFO if got else logging.WARNING, "Capture engine: %s the camera (%s)",
                           "this process drives" if got else "another process drives", self.holder)
            self.holding = got
            self.other = None if got else (self.store.lease_holder(queue.LEASE) or ("another process", 0))[0]
        except DB_ERRORS + (StorageError,) as err:
            logger.warning("Capture engine: cannot renew the lease (%s)", err)
        return self.holding

    def refusal(self) -> str | None:
        """Why this process may not start an order (another process drives the camera), None when it may."""
        if self.holding:
            return None
        return (f"The camera of this station is driven by another process ({self.other or 'unknown'}): use that "
                f"dashboard, or stop it; this one takes over within {LEASE_TTL_S:.0f} s after it stops.")

    # ------------------------------------------------------------ thread
    def start(self) -> "ControlLoop":
        """Take the lease at once (so Start works right after the engine is built), then run the thread."""
        self.take_lease()
        self._publish()
        self._thread = threading.Thread(target=self._run, name="capture-control", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and give the lease back."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.holding:
            try:
                self.store.release_lease(queue.LEASE, self.holder)
            except DB_ERRORS + (StorageError,) as err:
                logger.warning("Capture engine: could not give the lease back (%s); it expires in %.0f s",
                               err, LEASE_TTL_S)
            self.holding = False

    def wake(self) -> None:
        """Publish the state now (after the dashboard started or closed an order)."""
        self._next_beat = 0.0
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() >= self._next_beat:
                    self._next_beat = time.monotonic() + PUBLISH_S
                    if self.take_lease():
                        self._publish()
                while self.holding and not self._stop.is_set() and queue.has_waiting(self.store):
                    command = queue.claim_next(self.store)
                    if command is None:
                        break
                    queue.finish(self.store, command.id, self.execute(command))
                    self._publish()
            except DB_ERRORS + (StorageError,) as err:
                logger.warning("Capture engine: control loop: %s", err)
            except Exception:  # noqa: BLE001 - the loop must go on; the error is in the log
                logger.exception("Capture engine: control loop failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _publish(self) -> None:
        if not self.holding:
            return
        engine = self.engine
        try:
            queue.publish(self.store, self.holder, live_state(engine.worker.snapshot(), engine.camera.name))
        except DB_ERRORS + (StorageError,) as err:
            logger.warning("Capture engine: cannot publish its state (%s)", err)

    # ------------------------------------------------------------ commands
    def execute(self, command: Command) -> Answer:
        """Carry out one command; every outcome is an answer (status and body), never an exception."""
        logger.info("Capture engine: %s %s from %s", command.action, command.payload, command.requested_by)
        try:
            if command.action == "start":
                return self._start(command)
            if command.action == "close":
                return self._close(int(command.payload["order_id"]))
            if command.action == "save-image":
                return self._save_image()
            return Answer(400, {"detail": f"unknown command {command.action!r}"})
        except (OrderNumberError, ValueError) as err:
            return Answer(422, {"detail": str(err)})
        except WorkerBusy as err:
            return Answer(409, {"detail": str(err)})
        except (StorageError, VideoError) + DB_ERRORS as err:
            logger.error("Capture engine: %s failed: %s", command.action, err)
            return Answer(503, {"detail": str(err)})

    def _start(self, command: Command) -> Answer:
        p = command.payload
        engine = self.engine
        number = str(p.get("order_number", ""))
        validate_order_number(number, engine.settings.ORDER_NUMBER_MAX_LENGTH)
        opts = engine.options(p.get("mode"), p.get("threshold"), p.get("images_per_second"), p.get("resolution"))
        order = engine.start_order(number, opts, started_by=command.requested_by or "the HTTP API")
        return Answer(201, {"order_id": order.id, "options": asdict(opts)})

    def _close(self, order_id: int) -> Answer:
        engine = self.engine
        snap = engine.worker.snapshot()
        if snap.running and snap.order is not None and snap.order.id == order_id:
            summary = engine.close_order()
            if summary is None:  # closed meanwhile by the dashboard
                return Answer(200, {"order_id": order_id, "already_closed": True})
            return Answer(200, {"order_id": order_id, "already_closed": False, "kept": summary.kept,
                                "frames": summary.frames, "errors": summary.errors,
                                "video_frames": summary.order.video_frames})
        try:
            order = engine.store.get_order(order_id)
        except KeyError:
            return Answer(404, {"detail": f"no order with id {order_id}"})
        if order.kind != "capture":
            return Answer(409, {"detail": f"{order_id} is a collection of imported images, not an order"})
        if order.is_open:  # left open (the process ended while it ran): end it now, nothing runs on it
            engine.store.close_order(order_id)
            logger.info("Capture engine: closed order %s, which was open without running", order.order_number)
            return Answer(200, {"order_id": order_id, "already_closed": False, "kept": order.n_images})
        return Answer(200, {"order_id": order_id, "already_closed": True, "kept": order.n_images})

    def _save_image(self) -> Answer:
        worker = self.engine.worker
        snap = worker.snapshot()
        if not snap.running or snap.order is None:
            return Answer(409, {"detail": "no order is running: start one first (POST /orders)"})
        if snap.options is not None and snap.options.mode == MODE_VIDEO:
            return Answer(409, {"detail": f"order {snap.order.order_number} records a video, which keeps every "
                                          "frame; save-image is for distinct-image orders"})
        before = snap.last_saved.id if snap.last_saved is not None else None
        worker.save_next()
        deadline = time.monotonic() + SAVE_WAIT_S
        while time.monotonic() < deadline and not self._stop.is_set():
            now = worker.snapshot()
            if not now.save_next_pending and now.last_saved is not None and now.last_saved.id != before:
                return Answer(201, {"order_id": snap.order.id, "image_id": now.last_saved.id})
            if not now.running:
                break
            time.sleep(0.05)
        return Answer(202, {"order_id": snap.order.id, "image_id": None,
                            "detail": "the next frame the camera sends will be kept"})


_loops: dict[str, ControlLoop] = {}
_loops_lock = threading.Lock()


def ensure_control_loop(engine: "Engine") -> ControlLoop:
    """The process's control loop for the engine's database, started on first use (and again for a new worker)."""
    with _loops_lock:
        key = engine.store.database_key
        loop = _loops.get(key)
        alive = loop is not None and loop._thread is not None and loop._thread.is_alive()
        if loop is not None and alive and loop.engine.worker is engine.worker:
            loop.engine = engine
            return loop
        if loop is not None:
            loop.stop()
        loop = _loops[key] = ControlLoop(engine).start()
        return loop


def stop_all_control_loops() -> None:
    """Stop every control loop of this process and give the leases back (tests, shutdown)."""
    with _loops_lock:
        loops = list(_loops.values())
        _loops.clear()
    for loop in loops:
        loop.stop()

