"""Several stations, one archive, in a real browser: a station captures an order in Chromium and its sidebar and
Settings page show the sync; the office's dashboard in APP_MODE=central shows that station's order with its images
read from the object store, and no Capture page. Screenshots go to ``artifacts/``."""

from __future__ import annotations

from tests.browser import ARTIFACTS, Dashboard, require_browser, start_order, wait_idle
from tests.conftest import wait_for
from utils.archive.central import CentralArchive, CentralError

require_browser()


def test_a_station_syncs_what_it_captures_and_the_office_sees_it(tmp_path, browser_factory):
    url, storage = f"sqlite:///{tmp_path / 'central.sqlite3'}", str(tmp_path / "objects")
    archive = {"CENTRAL_DATABASE_URL": url, "STORAGE_URL": storage}
    station = Dashboard(tmp_path / "station", tmp_path / "station.log", STATION_NAME="packing-7", **archive)
    central = None
    try:
        page = browser_factory(viewport={"width": 1400, "height": 1000}).new_page()
        start_order(page, station.url, "ORD-77")
        page.get_by_role("button", name="Save image").click()
        archived = CentralArchive(url)

        def synced() -> int:
            try:
                return len(archived.images(station="packing-7"))
            except CentralError:  # the station has not made the tables yet
                return 0

        wait_for(lambda: synced() >= 2, timeout=60, what="the station's images in the central archive")
        page.get_by_role("button", name="Close order").click()
        page.get_by_text("image(s) saved").first.wait_for(timeout=60_000)
        wait_for(lambda: archived.list_orders() and archived.list_orders()[0]["status"] == "closed", timeout=30,
                 what="the closed order in the central archive")
        page.goto(station.url + "/gallery")  # the sidebar of the next page says so
        page.get_by_text("all images are in the central archive").first.wait_for(timeout=60_000)
        page.goto(station.url + "/settings")
        page.get_by_role("heading", name="Central archive").wait_for(timeout=60_000)
        page.get_by_text("packing-7").first.wait_for(timeout=30_000)
        wait_idle(page)
        page.set_viewport_size({"width": 1400, "height": 1400})  # down to the Central archive section
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "settings-archive.png"))
        (order,) = archived.list_orders()
        assert (order["station"], order["order_number"], order["status"]) == ("packing-7", "ORD-77", "closed")

        central = Dashboard(tmp_path / "office", tmp_path / "office.log", APP_MODE="central", **archive)
        office = browser_factory(viewport={"width": 1400, "height": 1000}).new_page()
        office.goto(central.url)
        office.get_by_role("heading", name="Archive", exact=True).wait_for(timeout=90_000)
        wait_idle(office)
        nav = office.locator('[data-testid="stSidebarNav"]')
        assert nav.get_by_text("Capture", exact=True).count() == 0  # no camera in the office
        assert office.get_by_label("Order", exact=True).input_value() == \
            f"ORD-77 — {order['n_images']} image(s) at packing-7"
        office.locator('[data-testid="stImage"]').first.wait_for(timeout=30_000)
        captions = office.locator('[data-testid="stImage"]').all_inner_texts()
        assert len(captions) == order["n_images"] and all("packing-7" in c for c in captions)
        wait_idle(office)
        office.screenshot(path=str(ARTIFACTS / "archive-central.png"), full_page=True)
        wait_for(lambda: all(r["brightness"] is not None for r in archived.images_with_stats()), timeout=60,
                 what="the office's statistics of the archived images")
        office.goto(central.url + "/archive-statistics")
        office.get_by_text(f"{order['n_images']} of {order['n_images']} images so far.").wait_for(timeout=60_000)
        office.locator('[data-testid="stPlotlyChart"]').nth(4).wait_for(timeout=60_000)
        wait_idle(office)
        office.set_viewport_size({"width": 1400, "height": 2000})
        office.screenshot(path=str(ARTIFACTS / "archive-statistics.png"))
    finally:
        station.stop()
        if central is not None:
            central.stop()
