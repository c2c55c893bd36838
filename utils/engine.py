"""The capture engine of one process: settings, store, descriptor, camera and worker, built once.

One engine per process (:func:`shared_engine`): the dashboard builds it at server start and its pages use it;
scripts and benchmarks may call :func:`build_engine` themselves. Only the process holding the engine lease drives
the camera (:mod:`utils.control.loop`); the HTTP API never builds one, it sends commands (:mod:`utils.api_control`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from communication import CameraError, CameraSource, make_camera
from describe_images import Descriptor, DescriptorUnavailable, load_descriptor, refilter
from ImageProcessingThread import CaptureOptions, CaptureWorker, RunSummary, WorkerBusy, worker_for
from utils.archive.sync import Syncer, ensure_syncer
from utils.camera_params import effective_params
from utils.config import Settings
from utils.control.loop import ControlLoop, ensure_control_loop
from utils.events.dispatcher import ensure_event_dispatcher
from utils.jobs import Scheduler, ensure_scheduler
from utils.keeper import kept_features
from utils.logs import setup_logging
from utils.stats_store import ensure_indexer
from utils.preflight import logfile_problems, store_problems
from utils.storage import DB_ERRORS, ImageRecord, OrderRecord, RecoveryReport, StorageError, Store, store_for

logger = logging.getLogger(__name__)


@dataclass
class Engine:
    """Everything the pages need; one per process."""

    settings: Settings
    store: Store
    camera: CameraSource
    worker: CaptureWorker
    descriptor: Descriptor | None
    descriptor_problem: str | None  # why distinct-image capture is unavailable, if it is
    recovery: RecoveryReport
    scheduler: Scheduler | None = None  # this process's jobs thread (it runs jobs while it holds the lease)
    syncer: Syncer | None = None  # this process's sync into the central archive (None: the station is on its own)
    control: ControlLoop | None = None  # the engine lease and the HTTP API's commands (utils/control)

    def start_order(self, order_number: str, options: CaptureOptions, started_by: str | None = None) -> OrderRecord:
        """Start (or resume) an order on this process's camera, if this process drives it (see utils.control).

        Raises WorkerBusy (an order runs, or another process drives the camera), OrderNumberError, StorageError,
        VideoError or ValueError, like :meth:`CaptureWorker.start`.
        """
        if self.control is not None and not self.control.take_lease():  # renewed now: the holder may have just left
            raise WorkerBusy(self.control.refusal() or "another process drives the camera")
        order = self.worker.start(order_number, options, self.settings.ORDER_NUMBER_MAX_LENGTH, started_by)
        if self.control is not None:
            self.control.wake()
        return order

    def close_order(self) -> RunSummary | None:
        """Close the running order (None when none ran); raises StorageError like :meth:`CaptureWorker.stop`."""
        try:
            return self.worker.stop()
        finally:
            if self.control is not None:
                self.control.wake()

    def options(
        self,
        mode: str | None = None,
        threshold: float | None = None,
        images_per_second: float | None = None,
        resolution: int | None = None,
    ) -> CaptureOptions:
        """Capture options from the settings, overridden by the operator's choices."""
        s = self.settings
        return CaptureOptions(
            mode=mode or ("distinct images", "video")[s.OPTIONS_SAVE_AS_CHOICE_INIT_IDX],  # type: ignore[arg-type]
            threshold=s.OPTIONS_TH_INIT if threshold is None else float(threshold),
            images_per_second=s.IMAGES_PER_SECOND if images_per_second is None else float(images_per_second),
            resolution=s.initial_resolution if resolution is None else int(resolution),
            keep_original=s.KEEP_ORIGINAL_BYTES,
            jpeg_quality=s.IMAGE_SAVE_QUALITY,
            video_codec=s.VIDEO_CODEC,
            settle_frames=s.settle_frames,
        )


class _UnavailableCamera:
    """Stands in for a camera whose configuration is wrong: every grab says what to fix."""

    def __init__(self, error: CameraError) -> None:
        self.error = error
        self.name = f"camera not configured ({error})"

    def grab(self):  # noqa: ANN201 - matches CameraSource.grab
        raise self.error

    def close(self) -> None:
        pass


def build_engine(settings: Settings) -> Engine:
    """Set up logging, open the store (and finish any interrupted write), load the descriptor, open the camera.

    Raises :class:`StorageError` with what to do when the log file, the export folder or the database cannot be
    used.
    """
    problems = logfile_problems(settings) + store_problems(settings)
    if problems:
        raise StorageError(" ".join(problems))
    setup_logging(settings.LOGGING_LEVEL, settings.LOGFILE)
    store = store_for(settings)
    try:
        recovery = store.recover()
    except DB_ERRORS as err:
        raise StorageError(store.open_problem(err)) from err
    ensure_indexer(store, settings.AVERAGING_METHOD)  # statistics of new and old images, off the capture path
    descriptor, problem = None, None
    try:
        descriptor = load_descriptor(
            settings.DESCRIPTOR_WEIGHTS_FILE,
            settings.DESCRIPTOR_DOWNLOAD,
            settings.DESCRIPTOR_FALLBACK,
            settings.TORCH_NUM_THREADS,
            mode=settings.DECISION_MODE,
        )
    except DescriptorUnavailable as err:
        problem = str(err)
    in_effect = effective_params(settings, store)  # saved on the Camera settings page, else CAMERA_PARAMS
    try:
        camera: CameraSource = make_camera(settings, in_effect.params)
    except CameraError as err:
        logger.error("Camera: %s", err)
        camera = _UnavailableCamera(err)
    worker = worker_for(
        f"{camera.name}|{store.database_key}",
        lambda: CaptureWorker(
            camera, descriptor, store, backoff_max=settings.CAMERA_BACKOFF_MAX,
            join_timeout=2 * settings.CAMERA_TIMEOUT + 5,  # a grab and its one retry may still be under way
        ),
    )
    logger.info("Engine ready: camera %s, export %s, database %s", camera.name, store.export_dir, store.where)
    scheduler = ensure_scheduler(worker.store, settings)
    syncer = ensure_syncer(worker.store, settings)
    ensure_event_dispatcher(worker.store, settings)  # webhooks and MQTT (None without a destination)
    engine = Engine(settings, worker.store, worker.camera, worker, worker.descriptor, problem, recovery, scheduler,
                    syncer)
    engine.control = ensure_control_loop(engine)  # this process drives the camera, or says who does
    return engine


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(settings: Settings) -> Engine:
    """The process's engine for these settings, built on first use (by the dashboard's server start or its first
    page, whichever comes first; never twice, so the store's recovery never runs beside a running order)."""
    key = settings.model_dump_json()
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = build_engine(settings)
        return engine


def forget_engines() -> None:
    """Drop the process's engines (tests; their workers and threads are stopped by their own ``stop_all_*``)."""
    with _engines_lock:
        _engines.clear()


def start_engine_in_background(settings: Settings) -> threading.Thread:
    """Build the engine in a thread (the dashboard's server start): the camera is driven and the HTTP API's commands
    are carried out before anyone opens the dashboard. A failure is logged; the pages show it too."""

    def build() -> None:
        try:
            shared_engine(settings)
        except StorageError as err:
            logger.error("The capture engine cannot start: %s", err)
        except Exception:  # noqa: BLE001 - the log says why; the first page shows it again
            logger.exception("The capture engine cannot start")

    thread = threading.Thread(target=build, name="engine-start", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class RefilterPlan:
    """Which kept images of an order would stay and which would go at a threshold."""

    order_id: int
    threshold: float
    keep: list[ImageRecord]
    drop: list[ImageRecord]


def plan_refilter(store: Store, order_id: int, threshold: float, descriptor: Descriptor) -> RefilterPlan:
    """Re-filter the order's kept images with ``threshold`` and the live decision's distance (greedy in capture
    order; manual saves stay). Images kept with another descriptor are described again from their files."""
    ids, feats, forced = kept_features(store, order_id, descriptor)
    by_id = {rec.id: rec for rec in store.images(order_id, kinds=("capture",))}
    mask = refilter(feats, threshold, forced, descriptor.layout) if ids else []
    keep = [by_id[i] for i, k in zip(ids, mask) if k and i in by_id]
    drop = [by_id[i] for i, k in zip(ids, mask) if not k and i in by_id]
    return RefilterPlan(order_id, float(threshold), keep, drop)


def apply_refilter(store: Store, plan: RefilterPlan) -> int:
    """Move the images the plan drops into the order's trash folder; returns how many moved."""
    moved = store.trash_images(plan.order_id, [rec.id for rec in plan.drop])
    logger.info("Re-filtered order %s at %.3f: %d image(s) moved to trash", plan.order_id, plan.threshold, moved)
    return moved
