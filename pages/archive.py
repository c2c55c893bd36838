"""Archive page: every station's orders from the central archive, grouped by order number; images served from the
object store through this server (same login), the original and the whole order (all stations) as downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from utils.archive.view import archived_orders, order_images, order_zip_chunks
from utils.i18n import t
from utils.ui import archive_or_stop, archive_thumbnail, download_link, local_time, md, require_role

require_role("operator")
st.title(t("Archive"))
archive = archive_or_stop()
central, objects = archive.central, archive.objects
ss = st.session_state
PER_PAGE = 48

st.caption(t("Every station's orders in the central archive (files in {where}).", where=md(archive.where)))
stations = central.station_names()
c1, c2, c3 = st.columns([2, 2, 3])
station = c1.selectbox(t("Station"), ["All stations", *stations], key="archive_station")
search = c2.text_input(t("Order number contains"), key="archive_search")
days = c3.date_input(t("Started between"), value=(), key="archive_days")
since, until = (days[0], days[-1]) if len(days) else (None, None)
chosen_station = None if station == "All stations" else station
orders = archived_orders(central, chosen_station, search, since, until)
if not orders:
    st.info(t("No archived orders match.") if stations else t("Nothing in the archive yet: the stations send their "
            "orders as they capture them."))
    st.stop()

order = st.selectbox(t("Order"), orders, key="archive_order",
                     format_func=lambda o: f"{o.order_number} — {o.n_images} image(s) at {', '.join(o.stations)}")
runs = pd.DataFrame([{"station": r["station"], "folder": r["folder"], "started": local_time(r["started_at"]),
                      "closed": local_time(r["closed_at"]) if r["closed_at"] else "running", "images": r["n_images"],
                      "mode": r["mode"]} for r in order.runs])
st.dataframe(runs, hide_index=True, width="stretch")
download_link(t("Download order {order_number} (ZIP, all stations)", order_number=order.order_number),
              f"{order.order_number}.zip",
              lambda: order_zip_chunks(central, objects, order), key=f"archive_zip_{order.order_number}")

images = order_images(central, order, chosen_station)
if not images:
    st.info(t("No images kept for this order (yet)."))
    st.stop()
pages = (len(images) + PER_PAGE - 1) // PER_PAGE
page = st.number_input(t("Page (of {pages})", pages=pages), 1, pages, 1,
                       key=f"archive_page_{order.order_number}") if pages > 1 else 1
shown = images[(page - 1) * PER_PAGE: page * PER_PAGE]
st.caption(t("Images {value}–{value2} of {n}", value=(page - 1) * PER_PAGE + 1,
             value2=(page - 1) * PER_PAGE + len(shown), n=len(images)))
cols = st.columns(4)
for i, row in enumerate(shown):
    with cols[i % 4]:
        thumb = archive_thumbnail(row["object_key"], row["md5"])
        caption = f"{row['station']} · #{row['seq']} · {row['captured_at'].astimezone():%H:%M:%S}"
        if thumb is None:
            st.warning(t("{caption}: cannot be read from the archive", caption=md(caption)))
        else:
            st.image(thumb, caption=caption, width="stretch")
        if st.button(t("Open"), key=f"archive_open_{row['id']}"):
            ss["archive_selected"] = row["id"]

selected = next((r for r in images if r["id"] == ss.get("archive_selected")), None)
if selected is not None:
    st.divider()
    big = archive_thumbnail(selected["object_key"], selected["md5"], 1280)
    if big is not None:
        st.image(big, width="stretch")
    st.markdown(t("**{file_name}** from station **{station}**, captured {captured_at}; {width} x {height} px, "
                  "{mb:,.2f} MB, MD5 `{md5}`", file_name=md(selected["file_name"]), station=md(selected["station"]),
                  captured_at=local_time(selected["captured_at"]), width=selected["width"], height=selected["height"],
                  mb=selected["size_bytes"] / 1e6, md5=selected["md5"]))
    download_link(t("Download the original"), selected["file_name"],
                  lambda: objects.read_chunks(selected["object_key"]), key=f"archive_file_{selected['id']}")
