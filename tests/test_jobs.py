"""Scheduled jobs (utils/jobs.py), retention (utils/retention.py) and the nightly snapshot (utils/reports.py) on
real stores and files: short intervals, a lease held by another process, failing jobs, budgets in bytes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
import threading
from datetime import date, datetime, timedelta, timezone

import cv2
import numpy as np
import torch

from tests.conftest import ROOT, wait_for
from utils.config import load_settings
from utils.jobs import LEASE, JobContext, JobSpec, LabelsJob, Scheduler, default_jobs, job_status
from utils.reports import PLOTLY_JS, write_snapshot
from utils.retention import GB, apply_retention, disk_use, folder_size, plan_retention
from utils.storage import Store, utc_now

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)


def noisy_jpeg(seed: int, size: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    return cv2.imencode(".jpg", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))[1].tobytes()


def closed_order(store: Store, number: str, n: int, closed_at: datetime | None = None):
    order, _ = store.open_order(number)
    for i in range(n):
        store.save_image(order, noisy_jpeg(hash(number) % 1000 + i), None, utc_now(), width=96, height=96)
    order = store.close_order(order.id)
    if closed_at is not None:
        with store._tx() as con:
            con.execute("UPDATE orders SET closed_at = ?, started_at = ? WHERE id = ?",
                        (closed_at.isoformat(), (closed_at - timedelta(hours=1)).isoformat(), order.id))
    return store.get_order(order.id)


def settings_for(store: Store, **env: str):
    return load_settings({"EXPORT_DIR": str(store.export_dir), "DESCRIPTOR_DOWNLOAD": "false", **env})


# ----------------------------------------------------------------- scheduler


def counting_job(name: str, every: float, calls: list, fail: bool = False) -> JobSpec:
    def run(ctx: JobContext) -> str:
        calls.append(name)
        if fail:
            raise RuntimeError(f"{name} broke")
        return f"{name} ran"
    return JobSpec(name, name.title(), run, every_s=every)


def test_due_jobs_run_and_their_runs_are_recorded_a_failure_is_contained(store):
    calls: list[str] = []
    jobs = [counting_job("first", 60, calls), counting_job("broken", 60, calls, fail=True),
            counting_job("last", 600, calls)]
    sched = Scheduler(store, jobs, tick_s=1, holder="me")
    assert sched.tick(T0) == ["first", "broken", "last"]  # interval jobs run when first seen
    status = {s.name: s for s in job_status(store, jobs)}
    assert status["first"].result == "first ran" and status["first"].error is None
    assert status["broken"].error == "RuntimeError: broken broke" and status["broken"].failures == 1
    assert status["last"].result == "last ran"  # ran after the failing one
    assert status["first"].next_run == status["first"].last_finished + timedelta(seconds=60)
    assert sched.tick(T0 + timedelta(seconds=30)) == []  # nothing due
    assert sched.tick(T0 + timedelta(seconds=61)) == ["first", "broken"]
    status = {s.name: s for s in job_status(store, jobs)}
    assert (status["first"].runs, status["broken"].runs, status["broken"].failures, status["last"].runs) == (2, 2, 2, 1)
    assert calls == ["first", "broken", "last", "first", "broken"]


def test_a_daily_job_waits_for_its_time_of_day():
    spec = JobSpec("snap", "Snapshot", lambda ctx: "", daily_at="02:00")
    local = datetime(2026, 3, 4, 1, 30).astimezone()
    assert spec.next_after(local) == local.replace(hour=2, minute=0)
    after = local.replace(hour=2, minute=0)
    assert spec.next_after(after) == (after + timedelta(days=1))
    assert spec.schedule == "daily at 02:00"
    assert JobSpec("x", "X", lambda c: "", every_s=5400).schedule == "every 1.5 h"


def test_only_the_lease_holder_runs_jobs_and_the_other_takes_over_when_it_stops(store):
    calls: list[str] = []
    a = Scheduler(store, [counting_job("a", 1, calls)], tick_s=10, holder="A")
    b = Scheduler(store, [counting_job("a", 1, calls)], tick_s=10, holder="B")
    assert a.tick() == ["a"] and a.holding
    assert b.tick() == [] and not b.holding  # same database, second process: waits
    a.stop()  # gives the lease back
    assert store.lease_holder(LEASE) is None
    wait_for(lambda: b.tick() == ["a"], timeout=10, what="B takes over")
    assert b.holding and store.lease_holder(LEASE)[0] == "B"


def test_no_job_runs_while_another_process_holds_the_lease(store):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from utils.storage import Store
        s = Store({str(store.export_dir)!r})
        assert s.acquire_lease("jobs", "dashboard-elsewhere", ttl_s=120)
        print("held", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    calls: list[str] = []
    sched = Scheduler(store, [counting_job("stats", 0.05, calls)], tick_s=0.05, holder="api")
    try:
        assert proc.stdout.readline().strip() == "held"
        sched.start()
        threading.Event().wait(0.5)  # ten ticks
        assert calls == [] and not sched.holding
        assert store.lease_holder(LEASE)[0] == "dashboard-elsewhere"
    finally:
        proc.kill()
        proc.wait(10)
        sched.stop()


def test_the_jobs_thread_runs_jobs_repeatedly_and_stops_cleanly(store):
    calls: list[str] = []
    sched = Scheduler(store, [counting_job("quick", 0.05, calls)], tick_s=0.02, holder="me").start()
    try:
        wait_for(lambda: len(calls) >= 3, timeout=20, what="three runs")
    finally:
        sched.stop()
    assert not sched.running and store.lease_holder(LEASE) is None
    n = len(calls)
    threading.Event().wait(0.2)
    assert len(calls) == n


def test_a_long_job_keeps_the_lease_with_the_heartbeat(store):
    started, release = threading.Event(), threading.Event()

    def long_job(ctx: JobContext) -> str:
        started.set()
        release.wait(10)
        return "done"

    sched = Scheduler(store, [JobSpec("long", "Long", long_job, every_s=3600)], tick_s=0.05, holder="me").start()
    try:
        assert started.wait(10)
        first = store.lease_holder(LEASE)[1]
        threading.Event().wait(0.4)  # longer than the lease (3 ticks)
        holder, expires = store.lease_holder(LEASE)
        assert holder == "me" and expires > first
        assert not store.acquire_lease(LEASE, "other", ttl_s=1)
        assert job_status(store, sched.jobs)[0].running
    finally:
        release.set()
        sched.stop()


def test_the_configured_jobs_follow_the_settings(store):
    s = settings_for(store, JOB_LABELS_EVERY_S="0", SNAPSHOT_AT="")
    assert [j.name for j in default_jobs(store, s)] == ["stats", "trash", "retention"]
    s = settings_for(store)
    assert [j.name for j in default_jobs(store, s)] == ["stats", "labels", "trash", "snapshot", "retention"]


# ----------------------------------------------------------------- the product's jobs


def test_trash_job_removes_what_waited_long_enough(store):
    order = closed_order(store, "T-1", 2)
    first = store.images(order.id)[0]
    store.trash_images(order.id, [first.id])
    trash_job = {j.name: j for j in default_jobs(store, settings_for(store, TRASH_DAYS="1"))}["trash"]
    assert "0 image(s)" in trash_job.run(JobContext(threading.Event()))
    assert store.get_image(first.id).path.is_file()
    trash_job = {j.name: j for j in default_jobs(store, settings_for(store, TRASH_DAYS="0"))}["trash"]
    assert "1 image(s)" in trash_job.run(JobContext(threading.Event()))
    assert not (order.folder / "trash" / first.file_name).exists()


def test_stats_job_computes_missing_statistics(store):
    from utils.stats_store import stats_rows, stop_all_indexers

    order = closed_order(store, "S-1", 3)
    try:
        stats = {j.name: j for j in default_jobs(store, settings_for(store))}["stats"]
        result = stats.run(JobContext(threading.Event()))
        ids = [r.id for r in store.images(order.id)]
        assert set(stats_rows(store, ids)) == set(ids)
        assert "unreadable" in result
    finally:
        stop_all_indexers()


def test_labels_job_without_pretrained_weights_says_why_and_labels_nothing(store, tmp_path):
    closed_order(store, "L-0", 1)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty-hub"))
    try:
        result = LabelsJob(store, settings_for(store))(JobContext(threading.Event()))
    finally:
        torch.hub.set_dir(old)
    assert result.startswith("not run: no pretrained classifier") and "DESCRIPTOR_WEIGHTS_FILE" in result
    assert len(store.unlabelled_images()) == 1


def test_labels_job_labels_every_new_image_once_with_the_weights_file(store, tmp_path):
    from tests.test_labels import _seeded_mobilenet

    weights = tmp_path / "mobilenet.pth"
    torch.save(_seeded_mobilenet().state_dict(), weights)
    order = closed_order(store, "L-1", 3)
    broken = store.save_image(store.open_order("L-2")[0], b"not an image at all", None, utc_now())
    job = LabelsJob(store, settings_for(store, DESCRIPTOR_WEIGHTS_FILE=str(weights)))
    result = job(JobContext(threading.Event()))
    assert result == "3 image(s) labelled, 1 unreadable"
    labels = store.labels_of([r.id for r in store.images(order.id)])
    assert len(labels) == 3 and all(len(v) == 5 for v in labels.values())
    assert all(str(weights) in model for v in labels.values() for _, _, model in v)
    scores = [sc for v in labels.values() for _, sc, _ in v]
    assert all(0 <= sc <= 1 for sc in scores)
    assert [r.id for r in store.unlabelled_images()] == [broken.id]
    assert job(JobContext(threading.Event())) == "0 image(s) labelled, 1 unreadable"  # nothing labelled twice


# ----------------------------------------------------------------- retention


def test_retention_moves_the_oldest_closed_orders_until_the_rest_fits(store):
    old = closed_order(store, "OLD", 3, T0 - timedelta(days=30))
    mid = closed_order(store, "MID", 3, T0 - timedelta(days=20))
    kept = closed_order(store, "KEEP", 3, T0 - timedelta(days=40))
    store.set_order_keep(kept.id, True)
    new = closed_order(store, "NEW", 3, T0 - timedelta(days=1))
    running, _ = store.open_order("RUN")
    store.save_image(running, noisy_jpeg(99), None, utc_now())
    size = {o.order_number: folder_size(o.folder) for o in (old, mid, kept, new)}
    total = sum(size.values()) + folder_size(running.folder)
    budget = total - size["OLD"]  # one order too many: OLD (the oldest not marked keep) goes, MID stays
    plan = plan_retention(store, budget, None, T0)
    assert [o.order_number for o, _, _ in plan.moves] == ["OLD"] and plan.over_budget_after == 0
    s = settings_for(store, RETENTION_MAX_GB=str(budget / GB))
    summary = apply_retention(store, s, T0)
    assert summary.startswith("1 order(s) to the trash") and "OLD" in summary
    assert store.get_order(old.id).trashed_at is not None
    assert {o.order_number for o in store.list_orders()} == {"MID", "KEEP", "NEW", "RUN"}
    assert (store.trash_dir / old.folder.name).is_dir()  # not gone: in the trash
    # a budget nothing but keep and open orders could meet
    plan = plan_retention(store, 1, None, T0)
    assert {o.order_number for o, _, _ in plan.moves} == {"MID", "NEW"} and plan.over_budget_after > 0


def test_retention_by_age_spares_keep_and_open_orders(store):
    old = closed_order(store, "OLD", 1, T0 - timedelta(days=100))
    kept = closed_order(store, "KEEP", 1, T0 - timedelta(days=100))
    store.set_order_keep(kept.id, True)
    closed_order(store, "RECENT", 1, T0 - timedelta(days=5))
    store.open_order("RUN")
    s = settings_for(store, RETENTION_MAX_DAYS="30")
    apply_retention(store, s, T0)
    assert {o.order_number for o in store.list_orders()} == {"KEEP", "RECENT", "RUN"}
    assert store.get_order(old.id).trashed_at is not None


def test_without_a_budget_retention_moves_nothing(store):
    closed_order(store, "A", 1, T0 - timedelta(days=1000))
    assert apply_retention(store, settings_for(store), T0).startswith("no budget set")
    assert len(store.list_orders()) == 1


def test_disk_use_warns_before_the_disk_is_full(tmpfs):
    disk = tmpfs("3m")
    store = Store(disk / "export")
    order = closed_order(store, "FULL", 0)
    filler = order.folder / "video.bin"
    filler.write_bytes(b"\0" * int(2.6e6))
    use = disk_use(store, settings_for(store, DISK_WARN_FREE_PERCENT="20", RETENTION_MAX_GB="0.001"))
    assert use.free_percent < 20
    assert any("% full" in w and "DISK_WARN_FREE_PERCENT" in w for w in use.warnings)
    assert any("above the budget" in w for w in use.warnings)
    assert use.orders_bytes >= 2.6e6


# ----------------------------------------------------------------- the nightly snapshot


def test_snapshot_writes_tables_and_plots_whole_and_replaces_the_same_day(store, tmp_path):
    order = closed_order(store, "SNAP", 3)
    src = store.images(order.id)[0]
    store.save_image(order, noisy_jpeg(5), None, utc_now(), kind="version", source=src,
                     operation={"name": "blur"}, tool="opencv")
    store.set_labels(src.id, [("carton", 0.9)], "m")
    from utils.stats_store import backfill

    backfill(store)
    reports = tmp_path / "reports"
    folder = write_snapshot(store, reports, date(2026, 3, 4), png=False)
    assert folder == reports / "2026-03-04"
    rows = list(csv.DictReader(io.StringIO((folder / "images.csv").read_text())))
    assert len(rows) == 4 and sorted(r["kind"] for r in rows) == ["capture"] * 3 + ["version"]
    assert list(csv.reader(io.StringIO((folder / "labels.csv").read_text()))) == [["label", "images"], ["carton", "1"]]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["images"] == 4 and summary["by_kind"] == {"capture": 3, "version": 1}
    html = (folder / "plots" / "images_per_day.html").read_text()
    assert f'src="../../{PLOTLY_JS}"' in html and (reports / PLOTLY_JS).stat().st_size > 1_000_000
    assert set(summary["plots"]) == {p.stem for p in (folder / "plots").iterdir()}
    store.trash_images(order.id, [src.id])
    folder = write_snapshot(store, reports, date(2026, 3, 4), png=False)
    assert len(list(csv.DictReader(io.StringIO((folder / "images.csv").read_text())))) == 2
    assert sorted(p.name for p in reports.iterdir()) == ["2026-03-04", PLOTLY_JS]  # no temporary left
