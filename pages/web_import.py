"""Import page (admin): the images of a web page, as a grid to pick from, into a collection."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

import streamlit as st

from utils.stats_plots import human_bytes
from utils.storage import OrderNumberError
from utils.tools.importer import import_staged, preview_page
from utils.tools.web_import import WebImportError
from utils.ui import admin_action, get_engine, md, page_path, require_admin

require_admin()
engine = get_engine()
s = engine.settings
ss = st.session_state

st.title("Web import")
st.caption("Images from a web page (a supplier catalogue, say) into a collection of their own, each with its source "
           "address. The page's HTML is read for its images (img, srcset, picture, lazy-loaded, og:image, links to image "
           f"files). robots.txt is {'respected' if s.IMPORT_RESPECT_ROBOTS else 'NOT respected (IMPORT_RESPECT_ROBOTS)'}"
           f"; at most {s.IMPORT_MAX_IMAGES} images and {s.IMPORT_MAX_TOTAL_BYTES / 1e6:,.0f} MB a page.")
with st.form("import_scan"):
    url = st.text_input("Page URL", key="import_url", placeholder="https://example.com/products/widget")
    found = st.form_submit_button("Find images", icon=":material/travel_explore:")
if found:
    if not url.strip():
        st.warning("Enter the address of a web page (http:// or https://).")
    else:
        with st.spinner("Reading the page and fetching its images ..."):
            try:
                ss["import_preview"] = admin_action(preview_page, engine.store, s, url.strip())
                ss.pop("import_result", None)
            except WebImportError as err:
                ss.pop("import_preview", None)
                st.error(f"The page cannot be used: {md(err)}", icon=":material/error:")

result = ss.get("import_result")
if result is not None:
    collection = engine.store.get_order(result.collection_id) if result.collection_id else None
    if result.saved:
        st.success(f"{len(result.saved)} image(s) imported into **{md(collection.order_number if collection else '')}**. "
                   "They are in the Gallery (statistics and labels follow in the background).")
        if st.button("Open the gallery", key="import_open_gallery"):
            ss["gallery_open_order"] = collection.id
            st.switch_page(page_path("gallery"))
    for u, why in result.skipped:
        st.warning(f"Not imported: {md(u)} — {md(why)}")

preview = ss.get("import_preview")
if preview is None:
    st.stop()
if preview.message:
    st.info(md(preview.message))
ok = [c for c in preview.candidates if c.ok]
failed = [c for c in preview.candidates if not c.ok]
if not ok:
    if failed:
        st.warning("None of the page's images could be fetched.")
    for c in failed:
        st.caption(f"{md(c.url)}: {md(c.error)}")
    st.stop()

st.subheader(f"{len(ok)} image(s) on {md(urlsplit(preview.final_url).netloc)}")
default_name = f"web-{urlsplit(preview.final_url).netloc.replace(':', '-')}-{date.today():%Y%m%d}"
name = st.text_input("Collection", value=default_name, key="import_collection",
                     help="The images go into this collection (listed with the orders in the Gallery); importing "
                          "again into the same name adds to it, an image already there is skipped.")
c1, c2 = st.columns(2)
if c1.button("Select all", key="import_all"):
    for i in range(len(ok)):
        ss[f"import_pick_{i}"] = True
if c2.button("Select none", key="import_none"):
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
    with st.expander(f"{len(failed)} image(s) could not be fetched"):
        for c in failed:
            st.caption(f"{md(c.url)}: {md(c.error)}")
chosen = [c.url for i, c in enumerate(ok) if ss.get(f"import_pick_{i}", True)]
if st.button(f"Import {len(chosen)} image(s)", type="primary", disabled=not chosen, key="import_go"):
    try:
        ss["import_result"] = admin_action(import_staged, engine.store, name, preview, chosen,
                                           s.ORDER_NUMBER_MAX_LENGTH)
    except OrderNumberError as err:
        st.error(f"Collection name: {md(err)}")
        st.stop()
    ss.pop("import_preview", None)
    for i in range(len(ok)):
        ss.pop(f"import_pick_{i}", None)
    st.rerun()
