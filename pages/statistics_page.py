"""Statistics page: key figures, time series, distributions and colours of the kept images; CSV and ZIP exports.

Layout only: the tables come from ``utils.stats_store``, figures, filters and exports from ``utils.stats_plots``.
"""

from __future__ import annotations

import streamlit as st

from utils.i18n import t
from utils.stats_plots import (
    build_figures,
    date_bounds,
    export_zip,
    filter_images,
    filter_orders,
    human_bytes,
    human_duration,
    kpis,
    preview,
    table_csv,
)
from utils.stats_store import IMAGE_COLUMNS, ensure_indexer, load_images_frame, load_orders_frame
from utils.ui import get_engine, require_admin

PREVIEW_ROWS = 500
KINDS = {"capture": "captured", "import": "imported", "version": "versions"}

require_admin()  # also when the page's URL is called directly
engine = get_engine()
store = engine.store
indexer = ensure_indexer(store, engine.settings.AVERAGING_METHOD)  # no-op when the engine already runs it

st.title(t("Statistics"))
orders = load_orders_frame(store)
if orders.empty:
    st.info(t("No orders yet."))
    st.stop()
images = load_images_frame(store)

# ---- filters
bounds = date_bounds(images, orders)
f1, f2, f3 = st.columns([3, 3, 3])
period = f1.date_input(t("Capture dates"), value=bounds, min_value=bounds[0], max_value=bounds[1], key="stats_dates")
picked = f2.multiselect(t("Orders"), orders["order_folder"].tolist(), key="stats_orders", placeholder=t("All orders"))
kinds = f3.multiselect(t("Images"), list(KINDS), default=["capture", "import"], format_func=KINDS.get,
                       key="stats_kinds", help=t("Versions are the results of the image tools (edits, cut-outs, "
                                               "styles); their statistics are computed too."))
period = period if isinstance(period, tuple) else (period,)
start = period[0] if len(period) > 0 else None
end = period[1] if len(period) > 1 else start
shown = filter_images(images, start, end, picked, kinds=kinds)
shown_orders = filter_orders(orders, start, end, picked, shown)

# ---- key figures
k = kpis(shown, shown_orders)
m = [*st.columns(3), *st.columns(3)]  # two rows: each figure has the room to show its whole value
m[0].metric(t("Orders"), k["orders"])
m[1].metric(t("Images"), k["images"])
m[2].metric(t("Images per order"), f"{k['images_per_order']:.1f}")
m[3].metric(t("Capture duration"), human_duration(k["capture_seconds"]))
m[4].metric(t("Storage used"), human_bytes(k["storage_bytes"]), help=t("Files of the images shown"))

pending = int((shown["stats_status"] == "pending").sum())
failed = shown[shown["stats_status"] == "error"]
if pending:
    c1, c2 = st.columns([4, 1])
    c1.info(t("Statistics of {pending} image(s) are still being computed in the background.", pending=pending))
    if c2.button(t("Compute now"), key="stats_compute_now"):
        with st.spinner(t("Computing statistics ...")):
            indexer.backfill()
        st.rerun()
if len(failed):
    with st.expander(t("{n} image(s) could not be read", n=len(failed)), icon=":material/warning:"):
        st.dataframe(failed[["order_folder", "file_name", "error"]], hide_index=True, width="stretch")

# ---- plots
figs = build_figures(shown)
if not figs:
    st.info(t("No image matches the filters."))
for name, fig in figs.items():
    st.plotly_chart(fig, key=f"stats_plot_{name}", width="stretch")

# ---- table and exports
st.subheader(t("Images"))
st.caption(t("First {value} of {n} image(s); the CSV holds all of them.", value=min(PREVIEW_ROWS, len(shown)),
             n=len(shown)))
st.dataframe(preview(shown, IMAGE_COLUMNS, PREVIEW_ROWS), hide_index=True, width="stretch")
csv = table_csv(shown, IMAGE_COLUMNS)
d1, d2 = st.columns(2)
d1.download_button(t("Download table (CSV)"), csv, file_name="images.csv", mime="text/csv", key="stats_csv",
                   on_click="ignore", icon=":material/download:")
d2.download_button(t("Download plots and table (ZIP)"), lambda: export_zip(figs, csv), file_name="statistics.zip",
                   mime="application/zip", key="stats_zip", on_click="ignore", icon=":material/folder_zip:")
