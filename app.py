"""Operator dashboard: ``streamlit run app.py``.

Page config, login (when configured), navigation over the pages in ``pages/`` by role, and the
sidebar; the capture engine is built once per process (``utils.ui.get_engine``) and shared by
every browser tab.
"""

import streamlit as st

from utils.ui import current_user, get_engine, login_page, settings_or_stop, sidebar

settings = settings_or_stop()
st.set_page_config(
    page_title=settings.TITLE,
    page_icon=":camera:",
    layout="wide" if settings.LAYOUT_LANDSCAPE else "centered",
)
user = current_user(settings)
if user is None:  # nothing but the login form is reachable, whatever URL was asked for
    st.navigation([st.Page(login_page, title="Log in", icon=":material/login:")], position="hidden").run()
    st.stop()

engine = get_engine()
pages = [
    st.Page("pages/capture.py", title="Capture", icon=":material/photo_camera:", default=True),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/photo_library:"),
]
if user.is_admin:
    pages += [
        st.Page("pages/statistics_page.py", title="Statistics", icon=":material/bar_chart:", url_path="statistics"),
        st.Page("pages/upload.py", title="Upload analysis", icon=":material/upload:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
page = st.navigation(pages)
sidebar(engine, user)
page.run()
