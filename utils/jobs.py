"""Scheduled jobs: one thread, in exactly one process, runs the configured jobs when they are due.

Every process that may run jobs (the dashboard, the HTTP API) starts a :class:`Scheduler`; each tick it takes or
renews the lease ``jobs`` in the database (:meth:`utils.storage.Store.acquire_lease`). Only the holder runs jobs;
the others wait and take over when the holder stops renewing (it stopped, or died: the lease lasts three ticks).
A heartbeat thread renews the lease while a long job runs.

Each job's last start, end, duration, result or error and next run are rows of the ``jobs`` table, so the Settings
page of any process shows them. A failing job is logged and recorded, and never stops the others.

The jobs (see :func:`default_jobs`): statistics backfill, labels for new images, trash clean-up after
``TRASH_DAYS``, the nightly analytics snapshot (``SNAPSHOT_AT``), retention.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from utils.config import Settings
from utils.storage import Store, utc_now

logger = logging.getLogger(__name__)

LEASE = "jobs"
LEASE_TICKS = 3  # the lease lasts this many ticks: a holder that misses two renewals keeps it


@dataclass
class JobContext:
    """What a running job may look at: the stop flag (check it between batches)."""

    stop: threading.Event


@dataclass(frozen=True)
class JobSpec:
    """A job: its name, what it does, when (every ``every_s`` seconds, or daily at ``daily_at`` local HH:MM)."""

    name: str
    title: str
    run: Callable[[JobContext], str]  # returns a one-line result
    every_s: float | None = None
    daily_at: str | None = None

    @property
    def schedule(self) -> str:
        if self.daily_at:
            return f"daily at {self.daily_at}"
        s = self.every_s or 0
        return f"every {s / 3600:g} h" if s >= 3600 else f"every {s / 60:g} min" if s >= 60 else f"every {s:g} s"

    def next_after(self, moment: datetime) -> datetime:
        """When the job is next due after ``moment`` (an aware datetime)."""
        if self.daily_at:
            hh, mm = (int(x) for x in self.daily_at.split(":"))
            local = moment.astimezone()
            due = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
            if due <= local:
                due += timedelta(days=1)
            return due
        return moment + timedelta(seconds=float(self.every_s or 0))


@dataclass(frozen=True)
class JobStatus:
    """A job as the Settings page shows it."""

    name: str
    title: str
    schedule: str
    last_started: datetime | None
    last_finished: datetime | None
    duration_s: float | None
    result: str | None
    error: str | None
    next_run: datetime | None
    runs: int
    failures: int
    running: bool


def holder_id() -> str:
    """This process's name in the lease: host, pid and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def drop_dead_holder(store: Store, lease: str, holder: str) -> None:
    """Take the lease back at once from a process of this computer that died (``kill -9``, power cut) instead of
    waiting for it to expire (``holder``: the caller's own name, left alone)."""
    held = store.lease_holder(lease)
    if held is None or held[0] == holder:
        return
    host, _, rest = held[0].partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        logger.info("Lease %s: process %s is gone; taking over its lease", lease, pid)
        store.release_lease(lease, held[0])
    except PermissionError:  # alive, another user's
        pass


class Scheduler:
    """Runs ``jobs`` when due while this process holds the lease (see the module docstring)."""

    def __init__(self, store: Store, jobs: list[JobSpec], tick_s: float = 30.0, holder: str | None = None) -> None:
        self.store = store
        self.jobs = list(jobs)
        self.tick_s = float(tick_s)
        self.holder = holder or holder_id()
        self.holding = False
        self.current: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None

    @property
    def lease_ttl(self) -> float:
        return LEASE_TICKS * self.tick_s

    def _renew(self) -> bool:
        try:
            self.holding = self.store.acquire_lease(LEASE, self.holder, self.lease_ttl)
        except Exception as err:  # noqa: BLE001 - the database is busy or gone: not holding, try next tick
            logger.warning("Jobs: cannot take the lease (%s)", err)
            self.holding = False
        return self.holding

    # -- one tick
    def tick(self, now: datetime | None = None) -> list[str]:
        """Take or renew the lease; run every job that is due. Returns the names of the jobs run."""
        if not self._renew():
            return []
        ran = []
        rows = self.store.job_rows()
        for spec in self.jobs:
            if self._stop.is_set():
                break
            moment = now or utc_now()
            row = rows.get(spec.name)
            due = row["next_run"] if row else None
            if due is None:  # first time seen: interval jobs run now, daily ones at their time
                due = moment if spec.every_s else spec.next_after(moment)
                self.store.record_job(spec.name, next_run=due)
            if due <= moment:
                if not self._renew():
                    break
                self.run_job(spec, now)
                ran.append(spec.name)
        return ran

    def run_job(self, spec: JobSpec, now: datetime | None = None) -> None:
        """Run one job now and record what happened; an exception is recorded, logged and contained."""
        started = now or utc_now()
        t0 = time.monotonic()
        self.current = spec.name
        self.store.record_job(spec.name, last_started=started)
        result, error = None, None
        try:
            result = spec.run(JobContext(self._stop))
            logger.info("Job %s: %s", spec.name, result)
        except Exception as err:  # noqa: BLE001 - one job's failure never stops the others
            error = f"{type(err).__name__}: {err}"
            logger.exception("Job %s failed", spec.name)
        finally:
            self.current = None
        duration = time.monotonic() - t0
        finished = (now + timedelta(seconds=duration)) if now else utc_now()
        row = self.store.job_rows().get(spec.name, {})
        self.store.record_job(
            spec.name, last_finished=finished, duration_s=round(duration, 3), result=result, error=error,
            next_run=spec.next_after(finished), runs=int(row.get("runs") or 0) + 1,
            failures=int(row.get("failures") or 0) + (error is not None),
        )

    # -- thread
    def start(self) -> "Scheduler":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._heartbeat = threading.Thread(target=self._beat, name="jobs-lease", daemon=True)
        self._thread.start()
        self._heartbeat.start()
        logger.info("Jobs thread started (%s); %d job(s): %s", self.holder, len(self.jobs),
                    ", ".join(f"{j.name} {j.schedule}" for j in self.jobs) or "none")
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the jobs thread outlives any bug and tries again next tick
                logger.exception("Jobs: tick failed")
            self._stop.wait(self.tick_s)

    def _beat(self) -> None:
        while not self._stop.wait(self.tick_s):
            if self.current is not None:  # the loop renews between jobs; a long job needs the heartbeat
                self._renew()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the running job (which sees the stop flag) and give the lease back."""
        self._stop.set()
        for t in (self._thread, self._heartbeat):
            if t is not None:
                t.join(timeout)
        try:
            self.store.release_lease(LEASE, self.holder)
        except Exception:  # noqa: BLE001 - it expires by itself
            logger.warning("Jobs: could not give the lease back; it expires in %.0f s", self.lease_ttl)
        self.holding = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> list[JobStatus]:
        return job_status(self.store, self.jobs, self.current)


def job_status(store: Store, jobs: list[JobSpec], current: str | None = None) -> list[JobStatus]:
    """The configured jobs with their recorded runs (any process's)."""
    rows = store.job_rows()
    out = []
    for spec in jobs:
        r = rows.get(spec.name, {})
        out.append(JobStatus(spec.name, spec.title, spec.schedule, r.get("last_started"), r.get("last_finished"),
                             r.get("duration_s"), r.get("result"), r.get("error"), r.get("next_run"),
                             int(r.get("runs") or 0), int(r.get("failures") or 0),
                             current == spec.name or _started_not_finished(r)))
    return out


def _started_not_finished(row: dict) -> bool:
    started, finished = row.get("last_started"), row.get("last_finished")
    return started is not None and (finished is None or finished < started)


# ----------------------------------------------------------------- the product's jobs


def _stats_job(store: Store, settings: Settings) -> Callable[[JobContext], str]:
    def run(ctx: JobContext) -> str:
        from utils.stats_store import ensure_indexer

        indexer = ensure_indexer(store, settings.AVERAGING_METHOD)
        errors_before = indexer.errors
        indexer.rescan()
        done = indexer.backfill(ctx.stop)
        return f"{done} image(s) computed, {indexer.errors - errors_before} unreadable"
    return run


class LabelsJob:
    """Labels (top-5 ImageNet classes) for every kept image without them, in batches; the labeller is loaded
    once per process, and not at all when its pretrained weights cannot be had (the result says why)."""

    BATCH = 32

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.unavailable: str | None = None

    def labeler(self):  # noqa: ANN201 - utils.tools.labels.Labeler, imported lazily (torch)
        from utils.tools.labels import LabelsUnavailable
        from utils.tools.service import get_labeler

        try:
            labeler = get_labeler(self.settings)
        except LabelsUnavailable as err:
            self.unavailable = str(err)
            return None
        self.unavailable = None
        return labeler

    def __call__(self, ctx: JobContext) -> str:
        from utils.imaging import ImageDecodeError, decode_image

        labeler = self.labeler()
        if labeler is None:
            return f"not run: no pretrained classifier ({self.unavailable})"
        done, unreadable, after = 0, 0, 0
        while not ctx.stop.is_set():
            batch = self.store.unlabelled_images(limit=self.BATCH, after_id=after)
            if not batch:
                break
            after = batch[-1].id
            images, recs = [], []
            for rec in batch:
                try:
                    images.append(decode_image(rec.path.read_bytes(), max_side=1024))
                    recs.append(rec)
                except (OSError, ImageDecodeError) as err:
                    unreadable += 1
                    logger.warning("Labels: %s cannot be read (%s)", rec.path, err)
            for rec, labels in zip(recs, labeler.batch(images, k=5) if images else []):
                self.store.set_labels(rec.id, [(lb.name, lb.score) for lb in labels], labeler.model_name)
                done += 1
        return f"{done} image(s) labelled" + (f", {unreadable} unreadable" if unreadable else "")


def _trash_job(store: Store, settings: Settings) -> Callable[[JobContext], str]:
    def run(ctx: JobContext) -> str:
        images, orders = store.purge_trash(utc_now() - timedelta(days=settings.TRASH_DAYS))
        return f"removed for good: {images} image(s), {orders} order(s) in the trash over {settings.TRASH_DAYS:g} days"
    return run


def _snapshot_job(store: Store, settings: Settings) -> Callable[[JobContext], str]:
    def run(ctx: JobContext) -> str:
        from utils.reports import write_snapshot

        folder = write_snapshot(store, settings.reports_dir, utc_now().astimezone().date())
        return f"written to {folder}"
    return run


def _retention_job(store: Store, settings: Settings) -> Callable[[JobContext], str]:
    def run(ctx: JobContext) -> str:
        from utils.retention import apply_retention

        return apply_retention(store, settings)
    return run


def _local_copies_job(store: Store, settings: Settings) -> Callable[[JobContext], str]:
    def run(ctx: JobContext) -> str:
        from utils.archive.local import remove_archived_copies

        return remove_archived_copies(store, settings, stop=ctx.stop.is_set)
    return run


def default_jobs(store: Store, settings: Settings) -> list[JobSpec]:
    """The jobs the settings turn on (an interval of 0 or an empty SNAPSHOT_AT turns one off)."""
    specs = [
        JobSpec("stats", "Statistics backfill", _stats_job(store, settings), every_s=settings.JOB_STATS_EVERY_S),
        JobSpec("labels", "Labels for new images", LabelsJob(store, settings), every_s=settings.JOB_LABELS_EVERY_S),
        JobSpec("trash", "Trash clean-up", _trash_job(store, settings), every_s=settings.JOB_TRASH_EVERY_S),
        JobSpec("snapshot", "Nightly analytics snapshot", _snapshot_job(store, settings), daily_at=settings.SNAPSHOT_AT),
        JobSpec("retention", "Retention", _retention_job(store, settings), every_s=settings.JOB_RETENTION_EVERY_S),
    ]
    if settings.archive_enabled and settings.ARCHIVE_LOCAL_KEEP_DAYS is not None:
        specs.append(JobSpec("local_copies", "Local copies of archived images", _local_copies_job(store, settings),
                             every_s=settings.JOB_RETENTION_EVERY_S))
    return [j for j in specs if j.every_s or j.daily_at]


_schedulers: dict[str, Scheduler] = {}
_lock = threading.Lock()


def ensure_scheduler(store: Store, settings: Settings) -> Scheduler | None:
    """The jobs thread of this database in this process (started once), or None with JOBS_ENABLED off."""
    if not settings.JOBS_ENABLED:
        return None
    key = store.database_key
    with _lock:
        sched = _schedulers.get(key)
        if sched is None or not sched.running:
            sched = Scheduler(store, default_jobs(store, settings), settings.JOBS_TICK_S).start()
            _schedulers[key] = sched
        return sched


def stop_all_schedulers() -> None:
    """Stop every jobs thread of this process and give their leases back (tests, shutdown)."""
    with _lock:
        for sched in _schedulers.values():
            sched.stop()
        _schedulers.clear()
