"""Upload analysis: statistics, time series and plots of uploaded images and image URLs; nothing is stored.

Layout only: fetching and statistics in ``utils.stats_store.analyze_sources``, plots and exports in
``utils.stats_plots``.
"""

from __future__ import annotations

import streamlit as st

from utils.gate import upload_limit_mib
from utils.image_stats import AVERAGING_METHODS
from utils.stats_plots import build_figures, export_zip, preview, table_csv
from utils.stats_store import UPLOAD_COLUMNS, analyze_sources, parse_urls
from utils.ui import md, require_admin, settings_or_stop

settings = settings_or_stop()
require_admin()  # also when the page's URL is called directly
ss = st.session_state

st.title("Upload analysis")
st.caption("Statistics of images you upload or link. Nothing is written into the orders.")
files = st.file_uploader(
    "Images", accept_multiple_files=True, key="upload_files", max_upload_size=upload_limit_mib(settings.UPLOAD_MAX_BYTES),
    type=["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif"],
)
urls = st.text_area("Image URLs (one per line, http:// or https://)", key="upload_urls", height=100)
method = st.selectbox("Average colour", AVERAGING_METHODS, key="upload_method",
                      index=AVERAGING_METHODS.index(settings.AVERAGING_METHOD))
if st.button("Analyse", type="primary", key="upload_analyse", icon=":material/query_stats:"):
    sources = [(f.name, f.getvalue()) for f in files or []]
    links = parse_urls(urls)
    if not sources and not links:
        st.warning("Upload at least one image or give an image URL.")
    else:
        with st.spinner(f"Analysing {len(sources) + len(links)} image(s) ..."):
            ss["upload_result"] = analyze_sources(
                sources, links, averaging_method=method, max_bytes=settings.UPLOAD_MAX_BYTES,
                timeout=settings.URL_FETCH_TIMEOUT, allow_private=settings.URL_ALLOW_PRIVATE,
            )

result = ss.get("upload_result")
if result is None:
    st.stop()

ok = result[result["stats_status"] == "ok"]
failed = result[result["stats_status"] == "error"]
m = st.columns(3)
m[0].metric("Images analysed", len(ok))
m[1].metric("Failed", len(failed))
m[2].metric("With capture time", int(ok["captured_at"].notna().sum()))
for _, row in failed.iterrows():
    st.error(f"{md(row['source'])}: {md(row['error'])}")
if len(ok) and ok["captured_at"].isna().any():
    st.caption(f"{int(ok['captured_at'].isna().sum())} image(s) have no capture time (no EXIF DateTimeOriginal, "
               "no Last-Modified) and are left out of the time series.")

figs = build_figures(ok, uploads=True)
for name, fig in figs.items():
    st.plotly_chart(fig, key=f"upload_plot_{name}", width="stretch")

st.subheader("Images")
st.dataframe(preview(result, UPLOAD_COLUMNS, len(result)), hide_index=True, width="stretch")
csv = table_csv(result, UPLOAD_COLUMNS)
d1, d2 = st.columns(2)
d1.download_button("Download table (CSV)", csv, file_name="uploads.csv", mime="text/csv", key="upload_csv",
                   on_click="ignore", icon=":material/download:")
d2.download_button("Download plots and table (ZIP)", lambda: export_zip(figs, csv, csv_name="uploads.csv"),
                   file_name="upload-statistics.zip", mime="application/zip", key="upload_zip", on_click="ignore",
                   icon=":material/folder_zip:")
