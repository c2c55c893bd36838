"""Capture page: order number, Start / Close order, options, live view, gallery of the closed order."""

from __future__ import annotations

import streamlit as st

from ImageProcessingThread import MODE_DISTINCT, MODE_VIDEO, RECENT_KEPT, WorkerBusy
from utils.barcodes import read_order_number
from utils.engine import apply_refilter, plan_refilter
from utils.i18n import error_text, t, user_text
from utils.storage import OrderNumberError, StorageError, validate_order_number
from utils.ui import (
    admin_action,
    get_engine,
    is_admin,
    live_rate,
    md,
    paged_gallery,
    preview_frame,
    scene_state,
    show_video,
    threshold_help,
    thumb,
    touch_controls,
)
from utils.video import VideoError

engine = get_engine()
s = engine.settings
worker = engine.worker
snap = worker.snapshot()
running = snap.running
ss = st.session_state
admin = is_admin()  # operators capture; re-filtering (moving images to trash) is for admins

# ---- widget defaults; while an order runs (maybe started in another tab) they show its options
if running and snap.options is not None:
    ss["save_as"] = snap.options.mode
    ss["image_resolution"] = snap.options.resolution
    ss.setdefault("threshold", snap.options.threshold)
    ss.setdefault("images_per_second", int(snap.options.images_per_second))
ss.setdefault("save_as", (MODE_DISTINCT, MODE_VIDEO)[s.OPTIONS_SAVE_AS_CHOICE_INIT_IDX])
ss.setdefault("image_resolution", s.initial_resolution)
ss.setdefault("threshold", s.OPTIONS_TH_INIT)
ss.setdefault("images_per_second", s.IMAGES_PER_SECOND)


def on_start() -> None:
    number = ss.get("order_number", "")
    try:
        validate_order_number(number, s.ORDER_NUMBER_MAX_LENGTH)
        opts = engine.options(ss["save_as"], ss["threshold"], ss["images_per_second"], ss["image_resolution"])
        order = engine.start_order(number, opts)
        ss.pop("refilter_plan", None)
        ss["message"] = ("success", t("Order **{number}** started in `{folder}`.", number=md(order.order_number),
                                      folder=order.folder.name))
    except (OrderNumberError, WorkerBusy, StorageError, VideoError, ValueError) as err:
        ss["message"] = ("warning", md(error_text(err)))


def on_enter() -> None:
    """START_ON_ENTER: the scanner's Enter starts the order (an empty or bad number gets the usual warning)."""
    if s.START_ON_ENTER and not worker.running:
        on_start()


def on_next_scan() -> None:
    """SCAN_CLOSES_RUNNING: a number scanned while an order runs closes it and starts the scanned one."""
    number = ss.get("next_order", "").strip()
    ss["next_order"] = ""
    if not number:
        return
    try:
        validate_order_number(number, s.ORDER_NUMBER_MAX_LENGTH)
    except OrderNumberError as err:  # a misread code: the running order goes on
        ss["message"] = ("warning", t("Scanned “{number}”: {err} The running order goes on.", number=md(number),
                                      err=md(error_text(err))))
        return
    on_close()
    closed = ss.get("message", ("", ""))[1]
    ss["order_number"] = number
    on_start()
    kind, started = ss.get("message", ("info", ""))
    ss["message"] = (kind, f"{closed}  \n{started}")


def on_read_code() -> None:
    """Read the order number from a code on the sheet under the camera and propose it (Start stays the operator's)."""
    read = read_order_number(engine.camera, s.ORDER_NUMBER_MAX_LENGTH)
    if read.number is not None:
        ss["order_number"] = read.number
    ss["message"] = ("info" if read.number else "warning", md(error_text(read.message)))


def on_close() -> None:
    try:
        summary = engine.close_order()
    except StorageError as err:
        ss["message"] = ("error", md(error_text(err)))
        return
    if summary is None:
        return
    if summary.order.mode == MODE_VIDEO:
        what = (t("Video saved ({frames} frames).", frames=summary.order.video_frames or 0) if summary.video_path
                else t("No video frame was recorded."))
    else:
        what = t("{n} image(s) saved.", n=summary.kept)
    ss["toast"] = what
    ss["message"] = ("info", t("Order **{number}** closed. {what}", number=md(summary.order.order_number), what=what))


def on_threshold() -> None:
    if worker.running:
        worker.set_threshold(ss["threshold"])


def on_rate() -> None:
    if worker.running:
        worker.set_rate(ss["images_per_second"])


st.title(user_text(s, "TITLE"))
touch_controls()  # big enough for a finger on a 1280x800 touch panel
if "toast" in ss:
    st.toast(ss.pop("toast"), icon=":material/check_circle:")

# ---- controls
c_start, c_order, c_close = st.columns([1, 3, 1.3], vertical_alignment="bottom")
with c_start:
    st.button(t("Start"), type="primary", disabled=running, on_click=on_start, key="button_start", width="stretch")
with c_order:
    if running and snap.order is not None:
        ss["order_number"] = snap.order.order_number
    st.text_input(user_text(s, "INPUT_TEXT_TITLE"), placeholder=user_text(s, "INPUT_TEXT_PLACEHOLDER"),
                  disabled=running, key="order_number",
                  max_chars=s.ORDER_NUMBER_MAX_LENGTH, on_change=on_enter if s.START_ON_ENTER else None)
with c_close:
    st.button(t("Close order"), type="primary", disabled=not running, on_click=on_close, key="button_close",
              width="stretch")

if not running:
    st.button(t("Read the order number from the camera"), key="button_read_code", on_click=on_read_code,
              icon=":material/qr_code_scanner:")
    st.caption(t("Hold the order sheet's barcode or QR code under the camera; the number is proposed above."))
if running and s.SCAN_CLOSES_RUNNING:
    st.text_input(t("Next order"), key="next_order", max_chars=s.ORDER_NUMBER_MAX_LENGTH, on_change=on_next_scan,
                  placeholder=t("Scan the next order's code: this one closes and that one starts"))

message = ss.pop("message", None)
if message:
    getattr(st, message[0])(message[1])
if running and snap.started_by:
    st.caption(t("Started through the HTTP API ({who}); Close order here or through the API.", who=md(snap.started_by)))
refusal = engine.control.refusal() if engine.control is not None else None
if refusal and not running:
    st.warning(md(error_text(refusal)), icon=":material/lock:")
if engine.descriptor is None and ss["save_as"] == MODE_DISTINCT:
    st.error(t("Distinct-image capture is unavailable: {problem}", problem=md(engine.descriptor_problem)))

with st.expander(t("Options")):
    o1, o2, o3 = st.columns(3)
    with o1:
        st.radio(t("Save as"), (MODE_DISTINCT, MODE_VIDEO), key="save_as", disabled=running, format_func=t)
    with o2:
        st.selectbox(t("Image resolution"), s.OPTIONS_IMAGE_RESOLUTION, key="image_resolution", disabled=running,
                     help=t("Maximum side of the saved images or video frames in pixels."))
        st.number_input(t("Images per second"), min_value=s.IMAGES_PER_SECOND_MIN, max_value=s.IMAGES_PER_SECOND_MAX,
                        step=1, format="%d", key="images_per_second", on_change=on_rate)
    with o3:
        st.select_slider(t("Threshold to determine distinct images"), options=s.threshold_options, key="threshold",
                         on_change=on_threshold, disabled=ss["save_as"] != MODE_DISTINCT,
                         help=threshold_help(s.DECISION_MODE))

finished = snap.finished if not running else None
closed_order = finished.order if finished is not None else None
b1, b2, _, b4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
if ss["save_as"] == MODE_DISTINCT:
    with b1:
        st.button(t("Save image"), disabled=not running, on_click=worker.save_next, key="button_save_image",
                  width="stretch")
    with b2:
        can_update = (not running and closed_order is not None and closed_order.mode == MODE_DISTINCT
                      and engine.descriptor is not None
                      and closed_order.n_images > 0)
        if admin and st.button(t("Update images"), disabled=not can_update, key="button_update_images",
                               width="stretch",
                               help=t("Re-filter the closed order's images with the current threshold.")):
            ss["refilter_plan"] = plan_refilter(engine.store, closed_order.id, ss["threshold"], engine.descriptor)
    if not running:  # while running, the live view shows the count
        kept = engine.store.get_order(closed_order.id).n_images if closed_order else 0
        b4.metric(t("\\# Images"), kept, help=t("Distinct images kept for the order"))
    st.caption(t("Keep the next frame whatever its distance."))  # Save image's help, visible on a touch panel

live = st.container()
# the live image fills its column unless IMAGE_DISPLAY_WIDTH is set (the original app's fixed width)
live_width: int | str = s.IMAGE_DISPLAY_WIDTH if "IMAGE_DISPLAY_WIDTH" in s.model_fields_set else "stretch"
if running:
    period = max(s.LOOP_UPDATE_TIME, 1.0 / max(1, int(ss["images_per_second"])))

    @st.fragment(run_every=period)
    def live_view() -> None:
        now = worker.snapshot()
        if not now.running:  # closed in another tab
            st.rerun()
        opts = now.options
        if now.last_error:
            lasted = now.error_duration_s or 0.0
            st.error(t("{error} (for {lasted:.0f} s, {count} error(s) in total; retrying)",
                       error=md(error_text(now.last_error)), lasted=lasted, count=now.error_count))
        pic, figures = st.columns([3, 2], gap="medium")  # the live image as large as the page allows
        with pic:
            if now.latest_frame is not None:
                st.image(now.latest_frame, width=live_width, output_format="JPEG")
            else:
                st.info(t("Waiting for the first frame ..."))
        with figures:
            if opts is not None and opts.mode == MODE_DISTINCT:
                dist = "–" if now.last_distance is None else f"{now.last_distance:.3f}"
                st.metric(t("Distance / threshold"), f"{dist} / {opts.threshold:.3f}",
                          help=t("Distance of the latest frame to the nearest kept image; a settled frame farther "
                                 "than the threshold is kept."))
                st.metric(t("\\# Images"), now.kept, help=t("Distinct images kept for the order"))
            else:
                st.metric(t("Video frames"), now.video_frames)
            requested = opts.images_per_second if opts else 0.0
            rate, slow = live_rate(now, requested)
            st.metric(t("Frames/s"), t("{rate:.1f} of {requested:g}", rate=rate, requested=requested),
                      help=t("achieved of requested (0 while the camera sends nothing)"))
            st.metric(t("Frames seen"), now.frames_seen,
                      help=t("{n} dropped while processing fell behind", n=now.dropped))
        if slow:
            st.warning(slow, icon=":material/speed:")
        if opts is not None and opts.mode == MODE_DISTINCT:
            st.caption(scene_state(now, opts.threshold))
            if now.recent:
                st.caption(t("Last kept images (newest first)"))
                strip = st.columns(RECENT_KEPT)
                for col, rec in zip(strip, now.recent):
                    data = thumb(rec, 240)
                    if data:
                        col.image(data, caption=f"#{rec.seq}", width="stretch")

    with live:
        live_view()
else:
    previewing = st.toggle(t("Camera preview"), key="camera_preview",
                           help=t("See what the camera sees, to aim it and check the light. Nothing is saved."))

    @st.fragment(run_every=1.0 if previewing else 2.0)
    def watch_for_start() -> None:
        if worker.snapshot().running:  # started in another tab
            st.rerun()
        if previewing:
            img, problem = preview_frame(engine.camera)
            if problem:
                st.warning(t("Camera preview: {problem}", problem=md(error_text(problem))),
                           icon=":material/videocam_off:")
            else:
                pic, note = st.columns([3, 2], gap="medium")  # as large as the live image will be
                pic.image(img, width=live_width, caption=t("Camera preview — nothing is saved"), output_format="JPEG")
                note.caption(t("Aim the camera and check the light; type the order number and press Start to capture."))

    watch_for_start()

# ---- re-filter preview and confirmation
plan = ss.get("refilter_plan")
if plan is not None and not running and admin:
    st.subheader(t("Update images at threshold {threshold:.3f}", threshold=plan.threshold))
    if not plan.drop:
        st.success(t("All images stay at this threshold."))
        ss.pop("refilter_plan")
    else:
        st.warning(t("{n} of {total} image(s) would be moved to the order's trash folder:", n=len(plan.drop),
                     total=len(plan.drop) + len(plan.keep)))
        cols = st.columns(min(6, s.GALLERY_N_COLUMNS))
        for i, rec in enumerate(plan.drop):
            data = thumb(rec, 200)
            if data:
                cols[i % len(cols)].image(data, caption=f"#{rec.seq}", width="stretch")
        y, n = st.columns(2)
        if y.button(t("Move to trash"), type="primary", key="confirm_refilter"):
            moved = admin_action(apply_refilter, engine.store, plan)
            ss.pop("refilter_plan")
            ss["toast"] = t("{n} image(s) moved to trash.", n=moved)
            st.rerun()
        if n.button(t("Cancel"), key="cancel_refilter"):
            ss.pop("refilter_plan")
            st.rerun()

# ---- after Close order: the order's gallery or video
if not running and closed_order is not None:
    order = engine.store.get_order(closed_order.id)
    st.subheader(t("Order {number}", number=md(order.order_number)))
    if order.mode == MODE_VIDEO:
        show_video(order)
    else:
        paged_gallery(engine.store, order, s, "capture")
