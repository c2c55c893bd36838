"""Gallery page: orders newest first, thumbnails, one image large, delete, re-filter, ZIP, video."""

from __future__ import annotations

import streamlit as st

from ImageProcessingThread import MODE_VIDEO
from utils.engine import apply_refilter, plan_refilter
from utils.exports import order_zip_chunks
from utils.i18n import t
from utils.storage import PRIMARY_KINDS
from utils.ui import (
    admin_action,
    download_link,
    get_engine,
    image_details,
    is_admin,
    order_label,
    page_path,
    paged_gallery,
    show_video,
    thumb,
)

engine = get_engine()
s = engine.settings
store = engine.store
ss = st.session_state
admin = is_admin()  # delete and re-filter are admin actions

st.title(t("Gallery"))
orders = store.list_orders()
if not orders:
    st.info(t("No orders yet. Start one on the Capture page."))
    st.stop()

f1, f2 = st.columns([2, 2])
query = f1.text_input(t("Search order number"), key="gallery_search").strip().casefold()
dates = [o.started_at.astimezone().date() for o in orders]
date_range = f2.date_input(t("Started between"), value=(min(dates), max(dates)), key="gallery_dates")
lo, hi = (date_range if isinstance(date_range, tuple) and len(date_range) == 2 else (min(dates), max(dates)))
shown = [o for o, d in zip(orders, dates) if query in o.order_number.casefold() and lo <= d <= hi]
if not shown:
    st.warning(t("No order matches the search."))
    st.stop()

wanted_order = ss.pop("gallery_open_order", None)  # sent here by the Editor or the Import page
if wanted_order is not None:
    match = next((o for o in shown if o.id == wanted_order), None)
    if match is not None:
        ss["gallery_order"] = match
order = st.selectbox(t("Order"), shown, format_func=order_label, key="gallery_order")
order = store.get_order(order.id)
running = engine.worker.running and engine.worker.snapshot().order is not None \
    and engine.worker.snapshot().order.id == order.id

download_link(t("Download order as ZIP"), f"{order.folder.name}.zip", lambda: order_zip_chunks(store, order),
              key=f"order-{order.id}")

if order.mode == MODE_VIDEO:
    show_video(order)
    st.stop()

st.caption(t("Folder `{folder}`", folder=order.folder) + (t(" — capture running") if running else ""))
g1, g2 = st.columns([3, 2], vertical_alignment="bottom")
label_query = g1.text_input(t("Search labels"), key=f"gallery_labels_{order.id}",
                            placeholder=t("e.g. carton, bottle (objects recognised in the images)")).strip()
if admin:
    keep = g2.toggle(t("Keep this order"), value=order.keep, key=f"gallery_keep_{order.id}",
                     help=t("Retention never removes an order marked keep."))
    if keep != order.keep:
        admin_action(store.set_order_keep, order.id, keep)
        st.rerun()
only = None
if label_query:
    matches = store.search_labels(order.id, label_query)
    sources = {r.source_image_id for r in store.images(order.id, kinds=("version",), ids=matches)}
    only = {r.id for r in store.images(order.id, kinds=PRIMARY_KINDS, ids=matches | sources)}
images = paged_gallery(store, order, s, "gallery", only=only)
if not images:
    st.stop()

st.subheader(t("Image"))
wanted = ss.get(f"gallery_selected_{order.id}")
first = next((r for r in images if r.seq == wanted), images[0])
rec = st.select_slider(t("Image"), options=images, value=first,
                       format_func=lambda r: f"#{r.seq}" + (t(" (version)") if r.is_version else ""),
                       key=f"gallery_image_{order.id}_{images[0].seq}_{wanted}")
big = thumb(rec, 1280)
left, right = st.columns([3, 2])
if big:
    left.image(big, width="stretch")
right.markdown(image_details(store, rec))
if rec.local_removed_at is not None and not rec.path.exists():  # only in the central archive: streamed from there
    with right:
        download_link(t("Download this image (from the archive)"), rec.file_name, lambda: store.image_chunks(rec),
                      key=f"gallery_download_{rec.id}")
else:
    right.download_button(t("Download this image"), data=rec.path.read_bytes() if rec.path.is_file() else b"",
                          file_name=rec.file_name, key=f"gallery_download_{rec.id}", disabled=not rec.path.is_file())
if admin and not running and right.button(t("Open in the editor"), key="gallery_edit", icon=":material/edit:"):
    ss["editor_image"] = rec.id
    st.switch_page(page_path("editor"))
if admin and right.button(t("Delete image"), key="gallery_delete", disabled=running):
    ss["confirm_delete"] = rec.id
if admin and ss.get("confirm_delete") == rec.id:
    n_versions = len(store.versions_of([rec.id]).get(rec.id, []))
    right.warning(t("Move #{seq} to the order's trash folder?", seq=rec.seq)
                  + (t(" Its {n} version(s) go with it.", n=n_versions) if n_versions else ""))
    if right.button(t("Yes, delete"), type="primary", key="gallery_delete_yes"):
        admin_action(store.trash_images, order.id, [rec.id])
        ss.pop("confirm_delete")
        st.toast(t("Image #{seq} moved to trash.", seq=rec.seq))
        st.rerun()
    if right.button(t("Keep it"), key="gallery_delete_no"):
        ss.pop("confirm_delete")
        st.rerun()

if admin and engine.descriptor is not None:  # re-filtering compares features: it needs the descriptor
    st.subheader(t("Re-filter"))
    th = st.select_slider(t("Threshold"), options=s.threshold_options, value=s.OPTIONS_TH_INIT, key="gallery_threshold")
    if st.button(t("Preview re-filter"), disabled=running, key="gallery_refilter"):
        ss["gallery_plan"] = plan_refilter(store, order.id, th, engine.descriptor)
    plan = ss.get("gallery_plan")
    if plan is not None and plan.order_id == order.id:
        if not plan.drop:
            st.success(t("All {n} image(s) stay at {threshold:.3f}.", n=len(plan.keep), threshold=plan.threshold))
        else:
            listed = ", ".join(f"#{r.seq}" for r in plan.drop[:50])
            more = t(" and {n:,} more", n=len(plan.drop) - 50) if len(plan.drop) > 50 else ""
            st.warning(t("At {threshold:.3f}, {n:,} image(s) would move to trash: {listed}{more}",
                         threshold=plan.threshold, n=len(plan.drop), listed=listed, more=more))
            if st.button(t("Move them to trash"), type="primary", key="gallery_refilter_apply"):
                moved = admin_action(apply_refilter, store, plan)
                ss.pop("gallery_plan")
                st.toast(t("{n} image(s) moved to trash.", n=moved))
                st.rerun()
