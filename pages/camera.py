"""Camera settings page (admin): the camera adapter's parameters (tried with a test shot, then saved so that a restart
keeps them), and what the adapter says of itself (/health, /basler/get-camera-info). Logic: utils/camera_params.py."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from communication import BaslerAdapterCamera
from utils.camera_params import (
    DEFAULT,
    FIELDS,
    SECTIONS,
    CameraParamsError,
    adapter_status,
    effective_params,
    form_values,
    params_dict,
    params_from_form,
    readable,
    reset_params,
    save_params,
    take_test_shot,
)
from utils.i18n import error_text, t
from utils.storage import StorageError
from utils.ui import admin_action, get_engine, local_time, md, require_admin

user = require_admin()
engine = get_engine()
s, store, ss = engine.settings, engine.store, st.session_state
st.title(t("Camera settings"))
camera = engine.camera
if not isinstance(camera, BaslerAdapterCamera):
    st.info(t("This page sets the parameters of the BaslerCameraAdapter (CAMERA_ADDRESS). This station's camera is "
              "**{kind}**: {name}.", kind=s.camera_kind, name=md(camera.name)), icon=":material/info:")
    st.stop()

# ---------------------------------------------------------------- the adapter
st.subheader(t("Adapter"))
st.caption(md(camera.name))
ask_again = st.button(t("Ask again"), key="camera_adapter_refresh", icon=":material/refresh:")
if ask_again or "camera_adapter_status" not in ss:
    with st.spinner(t("Asking the camera adapter ...")):
        ss["camera_adapter_status"] = adapter_status(camera)
for answer, title in zip(ss["camera_adapter_status"], ("Health (/health)", "Camera (/basler/get-camera-info)")):
    st.markdown(f"**{t(title)}**")
    if answer.error:
        st.error(md(answer.error), icon=":material/error:")
    else:
        st.dataframe(pd.DataFrame(readable(answer.answer), columns=[t("name"), t("value")]), hide_index=True,
                     width="stretch", key=f"camera_answer_{answer.path}")

# ---------------------------------------------------------------- the parameters
st.subheader(t("Parameters"))
in_effect = effective_params(s, store)
if "camera_flash" in ss:  # what the last Save or Reset did (the page was drawn again since)
    st.success(ss.pop("camera_flash"), icon=":material/check_circle:")
if in_effect.problem:
    st.error(md(in_effect.problem), icon=":material/error:")
if in_effect.saved is not None and in_effect.problem is None:
    tried = in_effect.saved.test_shot or t("saved without a test shot")
    st.caption(t("In use: saved by **{who}** on {when} ({tried}). They replace CAMERA_PARAMS until you reset them.",
                 who=md(in_effect.saved.saved_by), when=local_time(in_effect.saved.saved_at), tried=md(tried)))
else:
    st.caption(t("In use: CAMERA_PARAMS from the environment. Saved parameters replace them (also after a restart)."))
snap = engine.worker.snapshot()
if snap.running and snap.order is not None:
    st.info(t("Order **{order}** is running: saved parameters apply from the next order (the running one keeps its "
              "frame size and colour). A test shot takes its turn between the order's frames.",
              order=md(snap.order.order_number)), icon=":material/info:")
if ss.pop("camera_form_reload", False) or "cam_exposure_time_microseconds" not in ss:
    for name, value in form_values(in_effect.params).items():
        ss[f"cam_{name}"] = value

for title, names in SECTIONS:
    with st.expander(t(title), expanded=title != "Which camera and how it sends"):
        cols = st.columns(2)
        for i, name in enumerate(names):
            f = FIELDS[name]
            help_text = f"{f.description} Accepts {f.accepts}; empty: the adapter's default. (`{name}`)"
            with cols[i % 2]:
                if f.kind in ("choice", "bool"):
                    st.selectbox(t(f.label), f.options, key=f"cam_{name}", help=help_text)
                else:
                    st.text_input(t(f.label), key=f"cam_{name}", help=help_text, placeholder=DEFAULT)

params = None
try:
    params = params_from_form({name: ss.get(f"cam_{name}") for name in FIELDS})
except CameraParamsError as err:
    st.error(t("**The adapter would refuse these values.**") + "  \n" + md(err).replace("\n", "  \n"),
             icon=":material/error:")

shot = ss.get("camera_test_shot")
tested = params is not None and shot is not None and shot.ok and shot.params == params_dict(params)
c1, c2, c3 = st.columns(3)
do_test = c1.button(t("Test shot"), key="camera_test", disabled=params is None, icon=":material/photo_camera:",
                    help=t("Takes one picture with these values and shows it; nothing is saved."))
untested = st.checkbox(t("Save without a test shot (the camera is absent now)"), key="camera_save_untested",
                       help=t("For preparing the parameters while the camera is off; the log says so."))
do_save = c2.button(t("Save"), key="camera_save", type="primary", disabled=params is None or not (tested or untested),
                    icon=":material/save:")
do_reset = c3.button(t("Reset to configuration"), key="camera_reset", disabled=in_effect.saved is None,
                     icon=":material/restart_alt:", help=t("Drops the saved parameters: CAMERA_PARAMS apply again."))
if params is not None and not tested and not untested:
    st.caption(t("Take a test shot with these values before saving them."))

if do_test and params is not None:
    with st.spinner(t("Taking a test shot ...")):
        ss["camera_test_shot"] = shot = admin_action(take_test_shot, camera, params)
    tested = shot.ok
    if shot.ok:
        st.rerun()  # the Save button follows the result
if do_save and params is not None and (tested or untested):
    try:
        saved, now = admin_action(save_params, store, s, engine.worker, params, user.name, shot if tested else None)
    except StorageError as err:
        st.error(t("The parameters were not saved: {error}", error=md(error_text(err))), icon=":material/error:")
    else:
        ss["camera_flash"] = t("Saved.") + " " + (t("The camera uses them now.") if now else
                                                  t("They apply from the next order."))
        st.rerun()
if do_reset:
    try:
        now = admin_action(reset_params, store, s, engine.worker, user.name)
    except StorageError as err:
        st.error(t("The parameters were not reset: {error}", error=md(error_text(err))), icon=":material/error:")
    else:
        ss["camera_form_reload"] = True
        ss.pop("camera_test_shot", None)
        ss["camera_flash"] = t("Reset to CAMERA_PARAMS.") + " " + (t("The camera uses them now.") if now else
                                                                   t("They apply from the next order."))
        st.rerun()

if shot is not None:
    st.subheader(t("Test shot"))
    if shot.ok:
        m1, m2, m3 = st.columns(3)
        m1.metric(t("Size"), f"{shot.image.width} x {shot.image.height} px")
        m2.metric(t("Took"), f"{shot.seconds:.2f} s")
        m3.metric(t("Encoded"), f"{shot.size_bytes / 1024:.0f} KiB")
        st.caption(t("Pixel format: {format}", format=md(shot.pixel_format)))
        st.image(shot.image, caption=t("Test shot — nothing is saved"), width="stretch")
        if params is not None and not tested:
            st.caption(t("The values were changed since this test shot."))
    else:
        st.error(t("**The test shot failed.** {error}", error=md(error_text(shot.error))), icon=":material/error:")
