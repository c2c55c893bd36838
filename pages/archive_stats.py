"""Archive statistics page (admin): counts over time per station, images per order and station, the table as CSV."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from utils.archive.view import images_frame, per_day
from utils.i18n import t
from utils.ui import archive_or_stop, require_admin

require_admin()
st.title(t("Archive statistics"))
archive = archive_or_stop()
central = archive.central

stations = central.station_names()
station = st.selectbox(t("Station"), ["All stations", *stations], key="archive_stats_station")
frame = images_frame(central, None if station == "All stations" else station)
if frame.empty:
    st.info(t("No archived images yet."))
    st.stop()
c1, c2, c3, c4 = st.columns(4)
c1.metric(t("Stations"), frame["station"].nunique())
c2.metric(t("Orders"), frame["order_number"].nunique())
c3.metric(t("Images"), f"{len(frame):,}")
stored = frame["size_bytes"].sum()
c4.metric(t("Stored"), f"{stored / 1e9:,.2f} GB" if stored >= 1e9 else f"{stored / 1e6:,.1f} MB")
daily = per_day(frame)
daily["day"] = daily["day"].astype(str)  # one bar per day, not a time axis down to milliseconds
days = px.bar(daily, x="day", y="images", color="station", title="Images per day and station")
days.update_xaxes(type="category")
st.plotly_chart(days, width="stretch")
by_order = frame.groupby(["order_number", "station"]).size().reset_index(name="images")
st.plotly_chart(px.bar(by_order, x="order_number", y="images", color="station", title="Images per order and station"),
                width="stretch")
measured = frame.dropna(subset=["brightness"])
st.caption(t("Brightness, sharpness and colours are computed here from the archived files: {n:,} of {n2:,} images "
             "so far", n=len(measured), n2=len(frame)) + ("." if len(measured) == len(frame) else t(" (the rest "
                                                                                                    "follow).")))
if not measured.empty:
    c1, c2 = st.columns(2)
    c1.plotly_chart(px.box(measured, x="station", y="brightness", title="Brightness by station (0..1)"),
                    width="stretch")
    c2.plotly_chart(px.box(measured, x="station", y="sharpness", log_y=True,
                           title="Sharpness by station (variance of the Laplacian)"), width="stretch")
    colours = measured.groupby(["station", "dominant_hex"]).size().reset_index(name="images")
    colours = colours.sort_values("images", ascending=False).groupby("station").head(8)
    st.plotly_chart(px.bar(colours, x="station", y="images", color="dominant_hex",
                           color_discrete_map={h: h for h in colours["dominant_hex"].unique()},
                           title="Dominant colours by station (the 8 most frequent)"), width="stretch")
st.dataframe(frame.head(1000), hide_index=True, width="stretch")
st.download_button(t("Download the table (CSV)"), frame.to_csv(index=False).encode("utf-8"), "archive_images.csv",
                   "text/csv", icon=":material/download:")
