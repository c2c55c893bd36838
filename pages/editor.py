"""Editor page (admin): edit, cut out, stylize and label an image; every result is a new version of it."""

from __future__ import annotations

import streamlit as st

from utils.i18n import t
from utils.storage import OrderNumberError, StorageError, utc_now
from utils.tools.background import BackgroundError, find_u2net_model
from utils.tools.editing import EditControls, box_to_real, recipe_from_controls
from utils.tools.labels import DetectorUnavailable, LabelsUnavailable
from utils.tools.ops import RecipeError, describe_recipe, preview
from utils.tools.service import (
    ToolsBusy,
    cut_out,
    detect_objects,
    edit,
    edit_order,
    first_frame,
    get_detector,
    get_labeler,
    label,
)
from utils.tools.style import PRESETS
from utils.tools.versions import ToolInputError, decode_for_tools
from utils.ui import admin_action, editor_copy, get_engine, image_details, md, page_path, require_admin, thumb

require_admin()
engine = get_engine()
s = engine.settings
store = engine.store
ss = st.session_state
TOOL_ERRORS = (RecipeError, ToolInputError, BackgroundError, StorageError, ToolsBusy, OSError)

st.title(t("Editor"))
st.caption(t("Every result is kept as a new version beside its source in the gallery; the original is never changed."))

# ---------------------------------------------------------------- the image
with st.expander(t("Choose the image"), expanded="editor_image" not in ss):
    orders = store.list_orders()
    pick_col, up_col = st.columns(2)
    with pick_col:
        if orders:
            order = st.selectbox(t("Order or collection"), orders, key="editor_order",
                                 format_func=lambda o: f"{o.order_number} ({o.n_images} image(s))")
            seqs = [r.seq for r in store.images(order.id)]
            if seqs:
                seq = st.selectbox(t("Image #"), seqs, key=f"editor_seq_{order.id}")
                if st.button(t("Edit this image"), key="editor_pick"):
                    ss["editor_image"] = next(r.id for r in store.images(order.id) if r.seq == seq)
                    st.rerun()
        else:
            st.caption(t("No orders yet."))
    with up_col:
        up = st.file_uploader(t("Or upload an image"), type=["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"],
                              key="editor_upload")
        if up is not None and st.button(t("Edit the upload"), key="editor_use_upload"):
            data = up.getvalue()
            try:
                if len(data) > s.UPLOAD_MAX_BYTES:
                    raise ToolInputError(f"The file has {len(data):,} bytes; at most {s.UPLOAD_MAX_BYTES:,} "
                                         "(UPLOAD_MAX_BYTES).")
                img = decode_for_tools(data, s.TOOLS_MAX_PIXELS, up.name)
                collection, _ = admin_action(store.open_order, f"uploads-{utc_now().astimezone():%Y%m%d}",
                                             kind="import")
                suffix = "." + up.name.rsplit(".", 1)[-1].lower() if "." in up.name else ".jpg"
                rec = store.save_image(collection, data, None, utc_now(), width=img.width, height=img.height,
                                       suffix=suffix, kind="import", source_url=f"upload:{up.name}")
                ss["editor_image"] = rec.id
                st.rerun()
            except (ToolInputError, StorageError, OrderNumberError) as err:
                st.error(md(err))

image_id = ss.get("editor_image")
if image_id is None:
    st.info(t("Choose an image from an order, open one from the Gallery, or upload one."))
    st.stop()
try:
    rec = store.get_image(image_id)
    if rec.local_removed_at is not None and not rec.path.exists():  # only in the central archive: fetch it back
        with st.spinner(t("Fetching the image from the central archive ...")):
            rec = store.restore_local_copy(rec)
    copy, real = editor_copy(str(rec.path), rec.path.stat().st_mtime, s.TOOLS_MAX_PIXELS)
except (KeyError, OSError, ToolInputError, StorageError) as err:
    ss.pop("editor_image", None)
    st.error(t("That image cannot be edited: {err}", err=md(err)))
    st.stop()
order = store.get_order(rec.order_id)
st.markdown(t("**#{seq}** of **{order_number}** · {value} x {value2} px", seq=rec.seq,
              order_number=md(order.order_number), value=real[0], value2=real[1])
            + (t(" · a version") if rec.is_version else ""))

edit_tab, bg_tab, style_tab, labels_tab = st.tabs([t("Edit"), t("Background"), t("Style"), t("Labels")])


def before_after(after, caption: str) -> None:  # noqa: ANN001 - a PIL image
    b, a = st.columns(2)
    b.image(copy, caption="before", width="stretch")
    a.image(after, caption=caption, width="stretch")


def kept(version) -> None:  # noqa: ANN001 - ImageRecord
    st.success(t("Kept as version #{seq} ({file_name}) in {order_number}.", seq=version.seq,
                 file_name=md(version.file_name), order_number=md(order.order_number)))
    ss["editor_last"] = version.id


# ---------------------------------------------------------------- edit
with edit_tab:
    crop_box = None
    if st.toggle(t("Crop"), key="editor_crop_on", help=t("Drag the box on the image; its corners resize it.")):
        from streamlit_cropper import st_cropper

        shown = copy.copy()
        shown.thumbnail((700, 700))
        box = st_cropper(shown, realtime_update=True, box_color="#ff4b4b", return_type="box",
                         should_resize_image=False, key=f"editor_cropper_{rec.id}")
        crop_box = box_to_real(box, shown.size, real)
        st.caption(t("Crop {value} x {value2} px at ({value3}, {value4})", value=crop_box[2] - crop_box[0],
                     value2=crop_box[3] - crop_box[1], value3=crop_box[0], value4=crop_box[1]))
    g1, g2, g3 = st.columns(3)
    quarter = g1.selectbox(t("Rotate"), [0, 90, 180, 270], key="editor_rotate",
                           format_func=lambda d: {0: "none", 90: "90° left", 180: "180°", 270: "90° right"}[d])
    fine = g1.slider(t("Straighten (°)"), -45.0, 45.0, 0.0, 0.5, key="editor_fine")
    flip_h = g2.checkbox(t("Mirror left-right"), key="editor_flip_h")
    flip_v = g2.checkbox(t("Upside down"), key="editor_flip_v")
    scale = g3.slider(t("Resize (%)"), 5, 200, 100, 5, key="editor_scale")
    t1, t2, t3 = st.columns(3)
    brightness = t1.slider(t("Brightness"), 0.0, 3.0, 1.0, 0.05, key="editor_brightness")
    contrast = t2.slider(t("Contrast"), 0.0, 3.0, 1.0, 0.05, key="editor_contrast")
    gamma = t3.slider(t("Gamma"), 0.2, 5.0, 1.0, 0.05, key="editor_gamma")
    f1, f2, f3 = st.columns(3)
    blur = f1.slider(t("Blur (radius)"), 0.0, 20.0, 0.0, 0.5, key="editor_blur")
    sharpen = f2.slider(t("Sharpen"), 0.0, 5.0, 0.0, 0.1, key="editor_sharpen")
    with f3:
        grey = st.checkbox(t("Greyscale"), key="editor_grey")
        sepia = st.checkbox(t("Sepia"), key="editor_sepia")
        clahe = st.checkbox(t("Equalise (CLAHE)"), key="editor_clahe")
        edges = st.checkbox(t("Edges"), key="editor_edges")
    recipe = recipe_from_controls(EditControls(
        crop=crop_box, rotate=quarter + fine, flip_horizontal=flip_h, flip_vertical=flip_v, scale_percent=scale,
        brightness=brightness, contrast=contrast, gamma=gamma, greyscale=grey, blur=blur, sharpen=sharpen,
        edges=edges, sepia=sepia, clahe=clahe))
    try:
        before_after(preview(copy, recipe, max_side=800, real_size=real), describe_recipe(recipe))
    except RecipeError as err:
        st.error(md(err))
    with st.expander(t("Recipe (JSON, for the API and batches)")):
        st.json(recipe)
    if st.button(t("Save as a new version"), type="primary", disabled=not recipe, key="editor_save"):
        with st.spinner(t("Rendering at full resolution ...")):
            try:
                kept(admin_action(edit, store, s, rec.id, recipe))
            except TOOL_ERRORS as err:
                st.error(md(err))
    with st.expander(t("Apply this recipe to every image of {order_number} ({n_images})",
                       order_number=order.order_number, n_images=order.n_images)):
        st.caption(t("Each image gets its own new version; images that fail are listed and the others go on."))
        if st.button(t("Apply to the whole order"), disabled=not recipe or order.is_open, key="editor_batch"):
            bar = st.progress(0.0, text=t("Starting ..."))
            try:
                result = admin_action(edit_order, store, s, order.id, recipe,
                                      progress=lambda done, total: bar.progress(done / total,
                                                                                text=t("{done} of {total}", done=done,
                                                                                       total=total)))
                st.success(t("{n} version(s) made.", n=len(result.made)))
                for seq, why in result.failed:
                    st.warning(f"#{seq}: {md(why)}")
            except TOOL_ERRORS as err:
                st.error(md(err))
        if order.is_open:
            st.caption(t("The order is still running: close it first."))

# ---------------------------------------------------------------- background
with bg_tab:
    first = first_frame(store, rec)
    model = find_u2net_model(s.BACKGROUND_MODEL_FILE)
    methods = {"reference": "Against the empty station (a reference frame)",
               "grabcut": "Around the object (draw a rectangle)"}
    if model is not None:
        methods["u2net"] = f"Learned model ({model.name})"
    method = st.radio(t("How"), list(methods), format_func=methods.get, key="editor_bg_method",
                      index=0 if first is not None else 1)
    if model is None:
        st.caption(t("No U²-Net model installed: put u2netp.onnx into U2NET_HOME (default ~/.u2net) or set "
                   "BACKGROUND_MODEL_FILE to use the learned model."))
    reference_id, rect = None, None
    if method == "reference":
        refs = [r for r in store.images(order.id, kinds=("capture", "import")) if r.id != rec.id]
        if not refs:
            st.warning(t("No other image in this order can serve as the empty station; draw a rectangle instead."))
        else:
            default = refs.index(first) if first in refs else 0
            ref = st.selectbox(t("Reference (the station without the object)"), refs, index=default,
                               format_func=lambda r: f"#{r.seq}" + (" (the order's first frame)" if first and
                                                                    r.id == first.id else ""),
                               key=f"editor_bg_ref_{rec.id}")
            reference_id = ref.id
            st.image(thumb(ref, 320) or b"", caption=f"reference #{ref.seq}", width=200)
    elif method == "grabcut":
        from streamlit_cropper import st_cropper

        shown = copy.copy()
        shown.thumbnail((700, 700))
        box = st_cropper(shown, realtime_update=True, box_color="#1c83e1", return_type="box",
                         should_resize_image=False, key=f"editor_bg_rect_{rec.id}")
        rect = box_to_real(box, shown.size, real)
    o1, o2 = st.columns(2)
    output = o1.radio(t("Background"), ["transparent", "white", "colour"], key="editor_bg_output", horizontal=True,
                      format_func={"transparent": "transparent (PNG)", "white": "white", "colour": "a colour"}.get)
    colour = o2.color_picker(t("Colour"), "#00b140", key="editor_bg_colour", disabled=output != "colour")
    if st.button(t("Cut out and keep as a version"), type="primary", key="editor_bg_go",
                 disabled=method == "reference" and reference_id is None):
        with st.spinner(t("Removing the background ...")):
            try:
                image, version, ran = admin_action(cut_out, store, s, rec.id, method=method,
                                                   reference_id=reference_id, rect=rect, output=output,
                                                   colour=colour)
                kept(version)
                st.caption(t("Method: {ran}", ran=md(ran)))
                before_after(thumb(version, 800), "cut out")
            except TOOL_ERRORS as err:
                st.error(md(err))

# ---------------------------------------------------------------- style
with style_tab:
    options = list(PRESETS) + (["neural"] if s.STYLE_MODEL_FILE else [])
    choice = st.selectbox(t("Effect"), options, key="editor_style",
                          format_func=lambda k: PRESETS.get(k, f"neural style ({s.STYLE_MODEL_FILE})"))
    if not s.STYLE_MODEL_FILE:
        st.caption(t("A neural style model (fast-neural-style ONNX) is used when STYLE_MODEL_FILE names one."))
    step = ({"op": "neural_style", "model": str(s.STYLE_MODEL_FILE)} if choice == "neural"
            else {"op": "style", "preset": choice})
    try:
        before_after(preview(copy, [step], max_side=480, real_size=real), describe_recipe([step]))
    except RecipeError as err:
        st.error(md(err))
    if st.button(t("Render at full size and keep"), type="primary", key="editor_style_go"):
        with st.spinner(t("Rendering ...")):
            try:
                kept(admin_action(edit, store, s, rec.id, [step]))
            except TOOL_ERRORS as err:
                st.error(md(err))

# ---------------------------------------------------------------- labels
with labels_tab:
    try:
        labeler = get_labeler(s)
    except LabelsUnavailable as err:
        labeler = None
        st.info(t("Labels are not offered: the pretrained MobileNetV3-small weights are not available, and labels "
                  "from untrained weights would be noise. {err}", err=md(err)), icon=":material/info:")
    stored = store.labels_of([rec.id]).get(rec.id, [])
    if stored:
        st.dataframe([{"label": n, "confidence": f"{sc:.1%}", "model": m} for n, sc, m in stored], hide_index=True)
    elif labeler is not None:
        st.caption(t("Not labelled yet (the labels job does it in the background, or label it now)."))
    if labeler is not None and st.button(t("Label now"), key="editor_label"):
        try:
            admin_action(label, store, s, rec.id)
            st.rerun()
        except TOOL_ERRORS as err:
            st.error(md(err))
    st.markdown(t("**Objects with boxes**"))
    try:
        detector = get_detector(s)
    except DetectorUnavailable as err:
        detector = None
        st.caption(t("Object boxes are not offered: {err}", err=md(err)))
    if detector is not None:
        st.caption(t("Detector: {model_name}", model_name=md(detector.model_name)))
        min_score = st.slider(t("Lowest score"), 0.05, 0.95, 0.5, 0.05, key="editor_det_score")
        save_boxes = st.checkbox(t("Keep the image with the boxes as a version"), key="editor_det_save")
        if st.button(t("Find objects"), key="editor_detect"):
            with st.spinner(t("Looking for objects ...")):
                try:
                    found, drawn, version = admin_action(detect_objects, store, s, rec.id, min_score,
                                                         save=save_boxes)
                except TOOL_ERRORS as err:
                    st.error(md(err))
                else:
                    if found:
                        st.dataframe([{"object": d.name, "score": f"{d.score:.1%}",
                                       "box (x0, y0, x1, y1)": ", ".join(f"{v:.0f}" for v in d.box)}
                                      for d in found], hide_index=True)
                    else:
                        st.info(t("No object scores {min_score:.0%} or more; lower the score to see weaker ones.",
                                  min_score=min_score)
                                + (t(" Nothing was kept.") if save_boxes else ""))
                    drawn.thumbnail((960, 960))
                    st.image(drawn, caption=f"{len(found)} object(s)")
                    if version is not None:
                        kept(version)

last = ss.get("editor_last")
if last is not None:
    try:
        version = store.get_image(last)
        st.divider()
        st.markdown(image_details(store, version))
        if st.button(t("Show it in the gallery"), key="editor_to_gallery"):
            ss["gallery_open_order"] = version.order_id
            st.switch_page(page_path("gallery"))
    except KeyError:
        ss.pop("editor_last", None)
