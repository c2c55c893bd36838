"""Settings page (admin): the configuration in effect (secrets masked), disk use and retention, the trash, the
scheduled jobs and the engine's state."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from utils.config import Settings
from utils.events.dispatcher import LEASE as EVENTS_LEASE, delivery_overview, dispatcher_of
from utils.events.outbox import retry_failed
from utils.jobs import LEASE, default_jobs, job_status
from utils.retention import GB, RATE_DAYS
from utils.storage import utc_now
from utils.ui import admin_action, cached_disk_use, code, get_engine, local_time, md, require_admin

require_admin()
engine = get_engine()
s = engine.settings
store = engine.store
st.title("Settings")

st.subheader("Disk and retention")
use = cached_disk_use(str(store.export_dir))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Orders", f"{use.orders_bytes / GB:.2f} GB")
c2.metric("Trash", f"{use.trash_bytes / GB:.2f} GB", help=f"Removed for good after TRASH_DAYS={s.TRASH_DAYS:g} days.")
c3.metric("Disk free", f"{use.free_percent:.0f} %", help=f"{use.disk_free / GB:.1f} of {use.disk_total / GB:.1f} GB")
c4.metric("Budget", f"{use.budget_bytes / GB:.2f} GB" if use.budget_bytes else "none",
          help="RETENTION_MAX_GB" + (f"; and at most {use.max_days:g} days (RETENTION_MAX_DAYS)" if use.max_days else ""))
if use.budget_bytes:
    st.progress(min(1.0, use.orders_bytes / use.budget_bytes),
                text=f"{use.orders_bytes / use.budget_bytes:.0%} of the budget used")
for warning in use.warnings:
    st.warning(md(warning), icon=":material/warning:")
if use.bytes_per_day > 0:
    lasts = (f"; the disk lasts about {use.days_left:,.0f} more days at that rate" if use.days_left is not None
             and use.days_left < 3650 else "")
    st.caption(f"Kept in the last {RATE_DAYS} days: {use.bytes_per_day / 1e6:,.1f} MB a day{lasts}.")

trashed = [o for o in store.list_orders(include_trashed=True) if o.trashed_at is not None]
st.subheader(f"Orders in the trash ({len(trashed)})")
if not trashed:
    st.caption("None. Retention moves the oldest closed orders here when a budget is exceeded.")
for o in trashed:
    due = o.trashed_at + pd.Timedelta(days=s.TRASH_DAYS)
    t1, t2 = st.columns([4, 1], vertical_alignment="center")
    t1.write(f"**{md(o.order_number)}** · {o.n_images} image(s) · in the trash since {local_time(o.trashed_at)}, "
             f"removed for good after {local_time(due)}")
    if t2.button("Restore", key=f"restore_order_{o.id}"):
        admin_action(store.restore_order, o.id)
        cached_disk_use.clear()
        st.toast(f"Order {o.order_number} restored.")
        st.rerun()

st.subheader("Scheduled jobs")
jobs = engine.scheduler.jobs if engine.scheduler is not None else default_jobs(store, s)
holder = store.lease_holder(LEASE)
if not s.JOBS_ENABLED:
    st.caption("JOBS_ENABLED is off in this process.")
if holder is None or holder[1] < utc_now().timestamp():
    st.caption("No process runs the jobs right now (none holds the lease).")
else:
    mine = engine.scheduler is not None and holder[0] == engine.scheduler.holder
    st.caption(f"Jobs run in `{holder[0]}`" + (" (this dashboard)" if mine else " (another process: the API or "
                                                                               "another dashboard)"))
def job_state(j) -> str:  # noqa: ANN001 - JobStatus
    if j.running:
        return "running"
    if not j.runs:
        return "not run yet"
    if j.error:
        return "failed"
    return "unavailable" if (j.result or "").startswith("not run") else "ok"


statuses = job_status(store, jobs, engine.scheduler.current if engine.scheduler else None)
st.dataframe(pd.DataFrame([{
    "job": j.title, "schedule": j.schedule, "state": job_state(j), "last run": local_time(j.last_started),
    "took (s)": j.duration_s,
    "result": j.error or j.result or "", "next run": local_time(j.next_run), "runs": j.runs, "failures": j.failures,
} for j in statuses]), hide_index=True, width="stretch")
for j in statuses:
    if j.error:
        st.error(f"{md(j.title)} failed at {local_time(j.last_finished)}: {md(j.error)}", icon=":material/error:")
if jobs:
    r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
    pick = r1.selectbox("Run a job now", [j.name for j in jobs], key="run_job_pick",
                        format_func=lambda n: next(j.title for j in jobs if j.name == n))
    if r2.button("Run at the next tick", key="run_job_now"):
        admin_action(store.record_job, pick, next_run=utc_now())
        st.toast(f"The job runs within {s.JOBS_TICK_S:g} s (in the process holding the lease).")

def short_time(when) -> str:  # noqa: ANN001 - datetime | None
    """HH:MM:SS today, else the date too (fits a metric)."""
    if when is None:
        return "–"
    local = when.astimezone()
    return f"{local:%H:%M:%S}" if local.date() == utc_now().astimezone().date() else f"{local:%Y-%m-%d %H:%M}"


st.subheader("Central archive")
if engine.syncer is None:
    st.caption("This station is on its own (set CENTRAL_DATABASE_URL and STORAGE_URL to sync into a central "
               "archive; see README, Several stations, one archive).")
else:
    sync = engine.syncer.status()
    b = sync.backlog
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Station", s.STATION_NAME)
    c2.metric("Images waiting", b.images)
    c3.metric("Waiting since", short_time(b.oldest))
    c4.metric("Last sent", short_time(sync.last_ok))
    st.caption(f"Files to {code(s.STORAGE_URL)}; rows to the central database. "
               + ("This dashboard runs the sync." if sync.holder else "Another process of this station (the API or "
                  "another dashboard) runs the sync."))
    if sync.problem:
        retry = f" Next try in {sync.retry_in_s:.0f} s." if sync.retry_in_s is not None else ""
        st.warning(f"{md(sync.problem)}.{retry} Capture goes on; images wait here and are sent in order.",
                   icon=":material/cloud_off:")
    if b.failed:
        st.error(f"{b.failed} change(s) cannot be sent: {md(b.last_error or '')}. Put the file back, then "
                 "retry them.", icon=":material/error:")
        if st.button("Retry the failed ones", key="sync_retry_failed"):
            admin_action(store.outbox_retry_failed)
            engine.syncer.wake()
            st.rerun()

st.subheader("Events (webhooks and MQTT)")
if not s.event_destinations:
    st.caption("No events are sent (set WEBHOOK_URLS or MQTT_URL; see README, Events).")
else:
    events_holder = store.lease_holder(EVENTS_LEASE)
    mine = dispatcher_of(store)
    st.caption("Order started, image kept, order closed, camera error and recovered; delivered at least once, in "
               "order, per destination. " + ("No process delivers right now." if events_holder is None else
                                            "This dashboard delivers them." if mine and mine.has_lease else
                                            "Another process of this station (the API or another dashboard) "
                                            "delivers them."))
    overview = delivery_overview(store, s.event_destinations)
    st.dataframe(pd.DataFrame([{**r, **{k: local_time(r[k]) for k in ("oldest waiting", "next attempt",
                                                                       "last delivered")}} for r in overview]),
                 hide_index=True, width="stretch")
    failed = sum(r["failed"] for r in overview)
    if failed:
        st.error(f"{failed} event(s) were refused for good (see the last error); fix the receiver, then send them "
                 "again.", icon=":material/error:")
        if st.button("Retry the failed events", key="events_retry_failed"):
            admin_action(retry_failed, store)
            st.rerun()

st.subheader("Configuration")
st.caption("Set by environment variables (see README, Configuration); restart the dashboard to change them.")
rows = []
for name, field in Settings.model_fields.items():
    rows.append({"variable": name, "value": s.shown(name), "meaning": field.description or ""})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.subheader("Engine")
st.write(f"Camera: {md(engine.camera.name)}")
st.write(f"Descriptor: {md(engine.descriptor.status if engine.descriptor else engine.descriptor_problem)}")
st.write(f"Database: `{store.where}`")
st.write(f"Recovery at start: {md(engine.recovery)}")
