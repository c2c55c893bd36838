"""Operator dashboard: ``streamlit run app.py``.

Page config, navigation over the pages in ``pages/`` and the sidebar; the capture engine is
built once per process (``utils.ui.get_engine``) and shared by every browser tab.
"""

import streamlit as st

from utils.ui import get_engine, settings_or_stop, sidebar

settings = settings_or_stop()
st.set_page_config(
    page_title=settings.TITLE,
    page_icon=":camera:",
    layout="wide" if settings.LAYOUT_LANDSCAPE else "centered",
)
engine = get_engine()
page = st.navigation(
    [
        st.Page("pages/capture.py", title="Capture", icon=":material/photo_camera:", default=True),
        st.Page("pages/gallery.py", title="Gallery", icon=":material/photo_library:"),
        st.Page("pages/statistics.py", title="Statistics", icon=":material/bar_chart:"),
    ]
)
sidebar(engine)
page.run()
