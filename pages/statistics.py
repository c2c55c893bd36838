"""Statistics page: counts over all orders (plots and exports come with the statistics module)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from utils.ui import get_engine

engine = get_engine()
st.title("Statistics")
orders = engine.store.list_orders()
if not orders:
    st.info("No orders yet.")
    st.stop()
frame = pd.DataFrame(
    [{"order": o.order_number, "folder": o.folder.name, "mode": o.mode, "status": o.status,
      "started": o.started_at.astimezone(), "images": o.n_images} for o in orders]
)
c1, c2, c3 = st.columns(3)
c1.metric("Orders", len(frame))
c2.metric("Images", int(frame["images"].sum()))
c3.metric("Images per order", f"{frame['images'].mean():.1f}")
st.dataframe(frame, hide_index=True, width="stretch")
