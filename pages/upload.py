"""Upload analysis: statistics, time series and plots of uploaded images and image URLs; nothing is stored.

Layout only: fetching and statistics in ``utils.stats_store.analyze_sources``, plots and exports in
``utils.stats_plots``.
"""

from __future__ import annotations

import streamlit as st

from utils.gate import upload_limit_mib
from utils.i18n import t
from utils.image_stats import AVERAGING_METHODS
from utils.stats_plots import build_figures, export_zip, preview, table_csv
from utils.stats_store import UPLOAD_COLUMNS, analyze_sources, parse_urls
from utils.ui import md, require_admin, settings_or_stop

settings = settings_or_stop()
require_admin()  # also when the page's URL is called directly
ss = st.session_state

st.title(t("Upload analysis"))
st.caption(t("Statistics of images you upload or link. Nothing is written into the orders."))
files = st.file_uploader(
    t("Images"), accept_multiple_files=True, key="upload_files",
    max_upload_size=upload_limit_mib(settings.UPLOAD_MAX_BYTES),
    type=["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif"],
)
urls = st.text_area(t("Image URLs (one per line, http:// or https://)"), key="upload_urls", height=100)
method = st.selectbox(t("Average colour"), AVERAGING_METHODS, key="upload_method",
                      index=AVERAGING_METHODS.index(settings.AVERAGING_METHOD))
if st.button(t("Analyse"), type="primary", key="upload_analyse", icon=":material/query_stats:"):
    sources = [(f.name, f.getvalue()) for f in files or []]
    links = parse_urls(urls)
    if not sources and not links:
        st.warning(t("Upload at least one image or give an image URL."))
    else:
        with st.spinner(t("Analysing {value} image(s) ...", value=len(sources) + len(links))):
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
m[0].metric(t("Images analysed"), len(ok))
m[1].metric(t("Failed"), len(failed))
m[2].metric(t("With capture time"), int(ok["captured_at"].notna().sum()))
for _, row in failed.iterrows():
    st.error(f"{md(row['source'])}: {md(row['error'])}")
if len(ok) and ok["captured_at"].isna().any():
    st.caption(t("{value} image(s) have no capture time (no EXIF DateTimeOriginal, no Last-Modified) and are left "
                 "out of the time series.", value=int(ok['captured_at'].isna().sum())))

figs = build_figures(ok, uploads=True)
for name, fig in figs.items():
    st.plotly_chart(fig, key=f"upload_plot_{name}", width="stretch")

st.subheader(t("Images"))
st.dataframe(preview(result, UPLOAD_COLUMNS, len(result)), hide_index=True, width="stretch")
csv = table_csv(result, UPLOAD_COLUMNS)
d1, d2 = st.columns(2)
d1.download_button(t("Download table (CSV)"), csv, file_name="uploads.csv", mime="text/csv", key="upload_csv",
                   on_click="ignore", icon=":material/download:")
d2.download_button(t("Download plots and table (ZIP)"), lambda: export_zip(figs, csv, csv_name="uploads.csv"),
                   file_name="upload-statistics.zip", mime="application/zip", key="upload_zip", on_click="ignore",
                   icon=":material/folder_zip:")
