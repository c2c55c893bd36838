"""Settings page (admin): the configuration in effect (secrets masked), disk use and retention, the trash, the
scheduled jobs and the engine's state."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from utils.config import Settings
from utils.events.dispatcher import LEASE as EVENTS_LEASE, delivery_overview, dispatcher_of
from utils.events.outbox import retry_failed
from utils.i18n import t
from utils.jobs import LEASE, default_jobs, job_status
from utils.retention import GB, RATE_DAYS
from utils.storage import utc_now
from utils.ui import admin_action, cached_disk_use, code, get_engine, local_time, md, require_admin

require_admin()
engine = get_engine()
s = engine.settings
store = engine.store
st.title(t("Settings"))

st.subheader(t("Disk and retention"))
use = cached_disk_use(str(store.export_dir))
c1, c2, c3, c4 = st.columns(4)
c1.metric(t("Orders"), f"{use.orders_bytes / GB:.2f} GB")
c2.metric(t("Trash"), f"{use.trash_bytes / GB:.2f} GB",
          help=t("Removed for good after TRASH_DAYS={days:g} days.", days=s.TRASH_DAYS))
c3.metric(t("Disk free"), f"{use.free_percent:.0f} %",
          help=t("{free:.1f} of {total:.1f} GB", free=use.disk_free / GB, total=use.disk_total / GB))
c4.metric(t("Budget"), f"{use.budget_bytes / GB:.2f} GB" if use.budget_bytes else t("none"),
          help="RETENTION_MAX_GB" + (t("; and at most {days:g} days (RETENTION_MAX_DAYS)", days=use.max_days)
                                     if use.max_days else ""))
if use.budget_bytes:
    st.progress(min(1.0, use.orders_bytes / use.budget_bytes),
                text=t("{share:.0%} of the budget used", share=use.orders_bytes / use.budget_bytes))
for warning in use.warnings:
    st.warning(md(warning), icon=":material/warning:")
if use.bytes_per_day > 0:
    lasts = (t("; the disk lasts about {days:,.0f} more days at that rate", days=use.days_left)
             if use.days_left is not None and use.days_left < 3650 else "")
    st.caption(t("Kept in the last {days} days: {mb:,.1f} MB a day{lasts}.", days=RATE_DAYS,
                 mb=use.bytes_per_day / 1e6, lasts=lasts))

trashed = [o for o in store.list_orders(include_trashed=True) if o.trashed_at is not None]
st.subheader(t("Orders in the trash ({n})", n=len(trashed)))
if not trashed:
    st.caption(t("None. Retention moves the oldest closed orders here when a budget is exceeded."))
for o in trashed:
    due = o.trashed_at + pd.Timedelta(days=s.TRASH_DAYS)
    t1, t2 = st.columns([4, 1], vertical_alignment="center")
    t1.write(t("**{number}** · {n} image(s) · in the trash since {since}, removed for good after {due}",
               number=md(o.order_number), n=o.n_images, since=local_time(o.trashed_at), due=local_time(due)))
    if t2.button(t("Restore"), key=f"restore_order_{o.id}"):
        admin_action(store.restore_order, o.id)
        cached_disk_use.clear()
        st.toast(t("Order {number} restored.", number=o.order_number))
        st.rerun()

st.subheader(t("Scheduled jobs"))
jobs = engine.scheduler.jobs if engine.scheduler is not None else default_jobs(store, s)
holder = store.lease_holder(LEASE)
if not s.JOBS_ENABLED:
    st.caption(t("JOBS_ENABLED is off in this process."))
if holder is None or holder[1] < utc_now().timestamp():
    st.caption(t("No process runs the jobs right now (none holds the lease)."))
else:
    mine = engine.scheduler is not None and holder[0] == engine.scheduler.holder
    st.caption(t("Jobs run in `{holder}`", holder=holder[0])
               + (t(" (this dashboard)") if mine else t(" (another process: the API or another dashboard)")))
def job_state(j) -> str:  # noqa: ANN001 - JobStatus
    if j.running:
        return t("running")
    if not j.runs:
        return t("not run yet")
    if j.error:
        return t("failed")
    return t("unavailable") if (j.result or "").startswith("not run") else t("ok")


statuses = job_status(store, jobs, engine.scheduler.current if engine.scheduler else None)
st.dataframe(pd.DataFrame([{
    t("job"): j.title, t("schedule"): j.schedule, t("state"): job_state(j), t("last run"): local_time(j.last_started),
    t("took (s)"): j.duration_s, t("result"): j.error or j.result or "", t("next run"): local_time(j.next_run),
    t("runs"): j.runs, t("failures"): j.failures,
} for j in statuses]), hide_index=True, width="stretch")
for j in statuses:
    if j.error:
        st.error(t("{job} failed at {when}: {error}", job=md(j.title), when=local_time(j.last_finished),
                   error=md(j.error)), icon=":material/error:")
if jobs:
    r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
    pick = r1.selectbox(t("Run a job now"), [j.name for j in jobs], key="run_job_pick",
                        format_func=lambda n: next(j.title for j in jobs if j.name == n))
    if r2.button(t("Run at the next tick"), key="run_job_now"):
        admin_action(store.record_job, pick, next_run=utc_now())
        st.toast(t("The job runs within {s:g} s (in the process holding the lease).", s=s.JOBS_TICK_S))

def short_time(when) -> str:  # noqa: ANN001 - datetime | None
    """HH:MM:SS today, else the date too (fits a metric)."""
    if when is None:
        return "–"
    local = when.astimezone()
    return f"{local:%H:%M:%S}" if local.date() == utc_now().astimezone().date() else f"{local:%Y-%m-%d %H:%M}"


st.subheader(t("Central archive"))
if engine.syncer is None:
    st.caption(t("This station is on its own (set CENTRAL_DATABASE_URL and STORAGE_URL to sync into a central "
                 "archive; see README, Several stations, one archive)."))
else:
    sync = engine.syncer.status()
    b = sync.backlog
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("Station"), s.STATION_NAME)
    c2.metric(t("Images waiting"), b.images)
    c3.metric(t("Waiting since"), short_time(b.oldest))
    c4.metric(t("Last sent"), short_time(sync.last_ok))
    st.caption(t("Files to {url}; rows to the central database. ", url=code(s.STORAGE_URL))
               + (t("This dashboard runs the sync.") if sync.holder else t("Another process of this station (the "
                  "API or another dashboard) runs the sync.")))
    if sync.problem:
        retry = t(" Next try in {s:.0f} s.", s=sync.retry_in_s) if sync.retry_in_s is not None else ""
        st.warning(t("{problem}.{retry} Capture goes on; images wait here and are sent in order.",
                     problem=md(sync.problem), retry=retry), icon=":material/cloud_off:")
    if b.failed:
        st.error(t("{n} change(s) cannot be sent: {error}. Put the file back, then retry them.", n=b.failed,
                   error=md(b.last_error or "")), icon=":material/error:")
        if st.button(t("Retry the failed ones"), key="sync_retry_failed"):
            admin_action(store.outbox_retry_failed)
            engine.syncer.wake()
            st.rerun()

st.subheader(t("Events (webhooks and MQTT)"))
if not s.event_destinations:
    st.caption(t("No events are sent (set WEBHOOK_URLS or MQTT_URL; see README, Events)."))
else:
    events_holder = store.lease_holder(EVENTS_LEASE)
    mine = dispatcher_of(store)
    st.caption(t("Order started, image kept, order closed, camera error and recovered; delivered at least once, in "
                 "order, per destination.") + " " + (
        t("No process delivers right now.") if events_holder is None else
        t("This dashboard delivers them.") if mine and mine.has_lease else
        t("Another process of this station (the API or another dashboard) delivers them.")))
    overview = delivery_overview(store, s.event_destinations)
    table = pd.DataFrame([{**r, "state": t(r["state"]), **{k: local_time(r[k]) for k in (
        "oldest waiting", "next attempt", "last delivered")}} for r in overview])
    st.dataframe(table.rename(columns=lambda c: t(c)), hide_index=True, width="stretch")
    failed = sum(r["failed"] for r in overview)
    if failed:
        st.error(t("{n} event(s) were refused for good (see the last error); fix the receiver, then send them "
                   "again.", n=failed), icon=":material/error:")
        if st.button(t("Retry the failed events"), key="events_retry_failed"):
            admin_action(retry_failed, store)
            st.rerun()

st.subheader(t("Configuration"))
st.caption(t("Set by environment variables (see README, Configuration); restart the dashboard to change them."))
rows = []
for name, field in Settings.model_fields.items():
    rows.append({t("variable"): name, t("value"): s.shown(name), t("meaning"): field.description or ""})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.subheader(t("Engine"))
st.write(t("Camera: {name}", name=md(engine.camera.name)))
st.write(t("Descriptor: {status}", status=md(engine.descriptor.status if engine.descriptor
                                             else engine.descriptor_problem)))
st.write(t("Database: `{where}`", where=store.where))
st.write(t("Recovery at start: {recovery}", recovery=md(engine.recovery)))
