"""The Capture page in German in a real browser (`streamlit run app.py`, Debian's Chromium at 1280x800): German
labels shown, and no button label cut off (German words are longer). Screenshot: artifacts/capture-de.png."""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS, Dashboard, require_browser, wait_idle
from utils.i18n_de import GERMAN

require_browser()  # skips the module without playwright or chromium

CUT_OFF = """() => [...document.querySelectorAll('[data-testid="stMain"] button')].filter(b => b.offsetParent)
  .map(b => ({text: b.innerText.trim(), cut: [b, ...b.querySelectorAll('*')].some(
      e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible')
      || b.scrollWidth > b.clientWidth + 1 || b.innerText.includes('…')}))"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("i18n")
    dash = Dashboard(base / "export", base / "streamlit.log", LANGUAGE="de")
    yield dash.url
    dash.stop()


def test_capture_page_in_german_has_no_cut_off_button_label(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server)
    page.get_by_role("button", name=GERMAN["Close order"]).wait_for(timeout=90_000)
    page.get_by_text(GERMAN["Options"]).click()
    page.get_by_text(GERMAN["Threshold to determine distinct images"]).wait_for(timeout=30_000)
    page.get_by_label(GERMAN["Images per second"]).wait_for(timeout=30_000)  # the expander fully open
    page.wait_for_function("""() => {  // the expander has finished opening: same height for 10 frames
        const h = document.querySelector('[data-testid="stExpander"] details').getBoundingClientRect().height;
        window.__same = window.__h === h ? (window.__same || 0) + 1 : 0;
        window.__h = h;
        return window.__same >= 10; }""", polling="raf", timeout=30_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "capture-de.png"))
    buttons = page.evaluate(CUT_OFF)
    texts = {b["text"].split("\n")[-1] for b in buttons}  # without the icon's ligature name
    for label in ("Start", "Close order", "Read the order number from the camera", "Save image"):
        assert GERMAN[label] in texts, (label, texts)
    assert not [b for b in buttons if b["cut"]], buttons
    assert page.get_by_label(GERMAN["Order number"]).is_visible()
    assert page.get_by_text("Close order", exact=True).count() == 0  # no English label left
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert GERMAN["Capture"] in nav and GERMAN["Gallery"] in nav
