"""Extract page: the distinct images of an uploaded video or set of images, with the live decision, into an order.

Layout only: the work is :func:`utils.extract.extract` (also ``python extract.py``).
"""

from __future__ import annotations

import streamlit as st

from utils.extract import ExtractError, StorageError
from utils.gate import upload_limit_mib
from utils.i18n import t
from utils.storage import OrderNumberError
from utils.ui import extract_uploads, get_engine, md, paged_gallery, require_admin, threshold_help

require_admin()
engine = get_engine()
s = engine.settings
ss = st.session_state

st.title(t("Extract"))
st.caption(t("The distinct images of a recorded video or a set of images, decided as the live capture decides "
           "(a video is a camera stream: a frame counts once the scene has settled; each image is a scene of its "
           "own). The result is an order like a captured one."))
if engine.descriptor is None:
    st.error(t("Distinct-image extraction is unavailable: {descriptor_problem}",
               descriptor_problem=md(engine.descriptor_problem)))
    st.stop()
files = st.file_uploader(
    t("One video, or images"), accept_multiple_files=True, key="extract_files",
    max_upload_size=upload_limit_mib(s.EXTRACT_MAX_BYTES),
    type=["mp4", "avi", "mov", "mkv", "webm", "m4v", "jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"],
)
c1, c2 = st.columns(2)
number = c1.text_input(s.INPUT_TEXT_TITLE, key="extract_order", max_chars=s.ORDER_NUMBER_MAX_LENGTH,
                       placeholder=t("default: the file's name"))
threshold = c2.select_slider(t("Threshold to determine distinct images"), options=s.threshold_options,
                             value=s.OPTIONS_TH_INIT, key="extract_threshold", help=threshold_help(s.DECISION_MODE))
if st.button(t("Extract"), type="primary", key="extract_run", icon=":material/movie:"):
    bar = st.progress(0.0, text=t("Starting ..."))

    def progress(done: int, total: int | None, kept: int) -> None:
        share = min(done / total, 1.0) if total else 0.0
        bar.progress(share, text=t("{done} of {value} frame(s), {kept} kept", done=done, value=total or '?', kept=kept))

    try:
        result = extract_uploads(files or [], engine, number.strip() or None, threshold, progress)
    except (ExtractError, OrderNumberError, StorageError, ValueError) as err:
        st.error(md(err))
    else:
        ss["extract_result"] = result
        bar.progress(1.0, text=t("Done: {n} image(s) kept of {frames} frame(s)", n=len(result.kept),
                                 frames=result.frames))

result = ss.get("extract_result")
if result is None:
    st.stop()
for problem in result.errors:
    st.warning(t("Skipped {problem}", problem=md(problem)))
if result.stopped_at is not None:
    st.warning(t("The video stopped at frame {stopped_at} of {expected_frames}; the frames read were used.",
                 stopped_at=result.stopped_at, expected_frames=result.expected_frames))
st.subheader(t("Order {order_number}: {n} image(s) kept of {frames} frame(s)",
               order_number=md(result.order.order_number), n=len(result.kept), frames=result.frames))
paged_gallery(engine.store, engine.store.get_order(result.order.id), s, "extract")
