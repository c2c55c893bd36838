"""Gallery page: orders newest first, thumbnails, one image large, delete, re-filter, ZIP, video."""

from __future__ import annotations

import streamlit as st

from ImageProcessingThread import MODE_VIDEO
from utils.engine import apply_refilter, plan_refilter
from utils.exports import order_zip_chunks
from utils.ui import (
    admin_action,
    download_link,
    get_engine,
    is_admin,
    local_time,
    md,
    order_label,
    paged_gallery,
    show_video,
    thumb,
)

engine = get_engine()
s = engine.settings
store = engine.store
ss = st.session_state
admin = is_admin()  # delete and re-filter are admin actions

st.title("Gallery")
orders = store.list_orders()
if not orders:
    st.info("No orders yet. Start one on the Capture page.")
    st.stop()

f1, f2 = st.columns([2, 2])
query = f1.text_input("Search order number", key="gallery_search").strip().casefold()
dates = [o.started_at.astimezone().date() for o in orders]
date_range = f2.date_input("Started between", value=(min(dates), max(dates)), key="gallery_dates")
lo, hi = (date_range if isinstance(date_range, tuple) and len(date_range) == 2 else (min(dates), max(dates)))
shown = [o for o, d in zip(orders, dates) if query in o.order_number.casefold() and lo <= d <= hi]
if not shown:
    st.warning("No order matches the search.")
    st.stop()

order = st.selectbox("Order", shown, format_func=order_label, key="gallery_order")
order = store.get_order(order.id)
running = engine.worker.running and engine.worker.snapshot().order is not None \
    and engine.worker.snapshot().order.id == order.id

download_link("Download order as ZIP", f"{order.folder.name}.zip", lambda: order_zip_chunks(store, order),
              key=f"order-{order.id}")

if order.mode == MODE_VIDEO:
    show_video(order)
    st.stop()

st.caption(f"Folder `{order.folder}`" + (" — capture running" if running else ""))
images = paged_gallery(store, order, s, "gallery")
if not images:
    st.stop()

st.subheader("Image")
wanted = ss.get(f"gallery_selected_{order.id}")
first = next((r for r in images if r.seq == wanted), images[0])
rec = st.select_slider("Image", options=images, value=first, format_func=lambda r: f"#{r.seq}",
                       key=f"gallery_image_{order.id}_{images[0].seq}_{wanted}")
big = thumb(rec, 1280)
left, right = st.columns([3, 2])
if big:
    left.image(big, width="stretch")
right.markdown(
    f"**Captured** {local_time(rec.captured_at)}  \n"
    f"**Distance** {'–' if rec.distance is None else f'{rec.distance:.4f}'}{' (saved by hand)' if rec.forced else ''}  \n"
    f"**Size** {rec.width} x {rec.height} px, {(rec.size_bytes or 0) / 1024:.0f} KiB  \n"
    f"**File** `{rec.file_name}`  \n**Camera** {md(rec.camera or '–')}"
)
if admin and right.button("Delete image", key="gallery_delete", disabled=running):
    ss["confirm_delete"] = rec.id
if admin and ss.get("confirm_delete") == rec.id:
    right.warning(f"Move #{rec.seq} to the order's trash folder?")
    if right.button("Yes, delete", type="primary", key="gallery_delete_yes"):
        admin_action(store.trash_images, order.id, [rec.id])
        ss.pop("confirm_delete")
        st.toast(f"Image #{rec.seq} moved to trash.")
        st.rerun()
    if right.button("Keep it", key="gallery_delete_no"):
        ss.pop("confirm_delete")
        st.rerun()

if admin and engine.descriptor is not None:  # re-filtering compares features: it needs the descriptor
    st.subheader("Re-filter")
    th = st.select_slider("Threshold", options=s.threshold_options, value=s.OPTIONS_TH_INIT, key="gallery_threshold")
    if st.button("Preview re-filter", disabled=running, key="gallery_refilter"):
        ss["gallery_plan"] = plan_refilter(store, order.id, th, engine.descriptor)
    plan = ss.get("gallery_plan")
    if plan is not None and plan.order_id == order.id:
        if not plan.drop:
            st.success(f"All {len(plan.keep)} image(s) stay at {plan.threshold:.3f}.")
        else:
            listed = ", ".join(f"#{r.seq}" for r in plan.drop[:50])
            more = f" and {len(plan.drop) - 50:,} more" if len(plan.drop) > 50 else ""
            st.warning(f"At {plan.threshold:.3f}, {len(plan.drop):,} image(s) would move to trash: {listed}{more}")
            if st.button("Move them to trash", type="primary", key="gallery_refilter_apply"):
                moved = admin_action(apply_refilter, store, plan)
                ss.pop("gallery_plan")
                st.toast(f"{moved} image(s) moved to trash.")
                st.rerun()
