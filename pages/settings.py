"""Settings page (admin): the configuration in effect (secrets masked) and the engine's state."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from utils.config import SECRET_SETTINGS, Settings
from utils.ui import get_engine, require_admin

require_admin()
engine = get_engine()
st.title("Settings")
st.caption("Set by environment variables (see README, Configuration); restart the dashboard to change them.")
rows = []
for name, field in Settings.model_fields.items():
    value = getattr(engine.settings, name)
    shown = "***" if name in SECRET_SETTINGS and value else ("" if value is None else str(value))
    rows.append({"variable": name, "value": shown, "meaning": field.description or ""})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.subheader("Engine")
st.write(f"Camera: {engine.camera.name}")
st.write(f"Descriptor: {engine.descriptor.status if engine.descriptor else engine.descriptor_problem}")
st.write(f"Database: `{engine.store.db_path}`")
st.write(f"Recovery at start: {engine.recovery}")
