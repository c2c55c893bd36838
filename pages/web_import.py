"""Import page (admin): the images of a web page, as a grid to pick from, into a collection."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

import streamlit as st

from utils.i18n import t
from utils.stats_plots import human_bytes
from utils.storage import OrderNumberError
from utils.tools.importer import import_staged, preview_page
from utils.tools.web_import import WebImportError
from utils.ui import admin_action, get_engine, md, page_path, require_admin

require_admin()
engine = get_engine()
s = engine.settings
ss = st.session_state

st.title(t("Web import"))
st.caption(t("Images from a web page (a supplier catalogue, say) into a collection of their own, each with its "
             "source address. The page's HTML is read for its images (img, srcset, picture, lazy-loaded, "
             "og:image, links to image files). robots.txt is {robots}; at most {n} images and "
             "{mb:,.0f} MB a page.", robots=t("respected") if s.IMPORT_RESPECT_ROBOTS
             else t("NOT respected (IMPORT_RESPECT_ROBOTS)"), n=s.IMPORT_MAX_IMAGES, mb=s.IMPORT_MAX_TOTAL_BYTES / 1e6))
with st.form("import_scan"):
    url = st.text_input(t("Page URL"), key="import_url", placeholder="https://example.com/products/widget")
    found = st.form_submit_button(t("Find images"), icon=":material/travel_explore:")
if found:
    if not url.strip():
        st.warning(t("Enter the address of a web page (http:// or https://)."))
    else:
        with st.spinner(t("Reading the page and fetching its images ...")):
            try:
                ss["import_preview"] = admin_action(preview_page, engine.store, s, url.strip())
                ss.pop("import_result", None)
            except WebImportError as err:
                ss.pop("import_preview", None)
                st.error(t("The page cannot be used: {err}", err=md(err)), icon=":material/error:")

result = ss.get("import_result")
if result is not None:
    collection = engine.store.get_order(result.collection_id) if result.collection_id else None
    if result.saved:
        st.success(t("{n} image(s) imported into **{value}**. They are in the Gallery (statistics and labels "
                     "follow in the background).", n=len(result.saved),
                     value=md(collection.order_number if collection else "")))
        if st.button(t("Open the gallery"), key="import_open_gallery"):
            ss["gallery_open_order"] = collection.id
            st.switch_page(page_path("gallery"))
    for u, why in result.skipped:
        st.warning(t("Not imported: {u} — {why}", u=md(u), why=md(why)))

preview = ss.get("import_preview")
if preview is None:
    st.stop()
if preview.message:
    st.info(md(preview.message))
ok = [c for c in preview.candidates if c.ok]
failed = [c for c in preview.candidates if not c.ok]
if not ok:
    if failed:
        st.warning(t("None of the page's images could be fetched."))
    for c in failed:
        st.caption(f"{md(c.url)}: {md(c.error)}")
    st.stop()

st.subheader(t("{n} image(s) on {netloc}", n=len(ok), netloc=md(urlsplit(preview.final_url).netloc)))
default_name = f"web-{urlsplit(preview.final_url).netloc.replace(':', '-')}-{date.today():%Y%m%d}"
name = st.text_input(t("Collection"), value=default_name, key="import_collection",
                     help=t("The images go into this collection (listed with the orders in the Gallery); importing "
                          "again into the same name adds to it, an image already there is skipped."))
c1, c2 = st.columns(2)
if c1.button(t("Select all"), key="import_all"):
    for i in range(len(ok)):
        ss[f"import_pick_{i}"] = True
if c2.button(t("Select none"), key="import_none"):
    for i in range(len(ok)):
        ss[f"import_pick_{i}"] = False
cols = st.columns(s.GALLERY_N_COLUMNS)
for i, cand in enumerate(ok):
    with cols[i % s.GALLERY_N_COLUMNS]:
        if cand.thumbnail:
            st.image(cand.thumbnail, width="stretch")
        ss.setdefault(f"import_pick_{i}", True)
        st.checkbox(f"{cand.width}×{cand.height} · {human_bytes(cand.size or 0)}", key=f"import_pick_{i}",
                    help=f"{cand.source}: {cand.url}")
if failed:
    with st.expander(t("{n} image(s) could not be fetched", n=len(failed))):
        for c in failed:
            st.caption(f"{md(c.url)}: {md(c.error)}")
chosen = [c.url for i, c in enumerate(ok) if ss.get(f"import_pick_{i}", True)]
if st.button(t("Import {n} image(s)", n=len(chosen)), type="primary", disabled=not chosen, key="import_go"):
    try:
        ss["import_result"] = admin_action(import_staged, engine.store, name, preview, chosen,
                                           s.ORDER_NUMBER_MAX_LENGTH)
    except OrderNumberError as err:
        st.error(t("Collection name: {err}", err=md(err)))
        st.stop()
    ss.pop("import_preview", None)
    for i in range(len(ok)):
        ss.pop(f"import_pick_{i}", None)
    st.rerun()
