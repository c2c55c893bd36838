"""Operator dashboard: ``streamlit run app.py``.

This file is read twice, in two roles:

* ``streamlit run app.py`` imports it as the module ``app`` and serves the ``st.App`` below with uvicorn:
  Streamlit's server behind the dashboard's gate (``utils/gate.py``: uploads only from logged-in
  sessions, metrics closed, Streamlit's own discovery of ``pages/`` switched off);
* Streamlit runs it as ``__main__`` for every browser session and rerun: the login gate and the navigation
  of the user's role (``utils.ui.run_dashboard``, pages listed in ``utils/navigation.py``) — the only way
  any page script runs.
"""

import streamlit as st

if __name__ == "__main__":
    from utils.ui import run_dashboard

    run_dashboard()
else:
    from utils.gate import app_options

    app = st.App("app.py", **app_options())
