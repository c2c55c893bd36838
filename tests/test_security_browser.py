"""No page without login, whatever URL is asked: attacks on a real `streamlit run app.py` in Debian's Chromium.

The pages come from the code (``utils.navigation.PAGES``), so a new page is covered without editing this file.
A stranger's browser must see the login form and nothing else — no page list, no order number (not even in
the WebSocket frames), no ``/media/`` request — for every page's URL and its variants, in the first session
after a start and in later ones. An operator gets nothing of an admin page; a logged-out browser gets nothing
from the URLs it saw while logged in; Streamlit's upload endpoint takes no bytes from a stranger.
"""

from __future__ import annotations

import json

import pytest

from tests.browser import (
    ARTIFACTS,
    Dashboard,
    Wire,
    browser_log_in,
    memory_kb,
    open_login_page,
    require_browser,
    reset_peak,
    seed_order,
    upload,
    wait_idle,
)
from tests.conftest import wait_for
from utils.auth import hash_password
from utils.navigation import PAGES

require_browser()

SECRET = "SECRET-ORDER-42"  # an order that exists: a leak would show its number
ADMIN, ADMIN_PW = "anna", "admin-pass-1"
OPERATOR, OPERATOR_PW = "ole", "operator-pass-2"
ADMIN_PAGES = [p for p in PAGES if p.role == "admin"]
assert ADMIN_PAGES, "the registry lists admin pages"


@pytest.fixture(scope="module")
def users_json() -> str:
    return json.dumps({ADMIN: {"hash": hash_password(ADMIN_PW), "role": "admin"},
                       OPERATOR: {"hash": hash_password(OPERATOR_PW)}})


def start_dashboard(base, users_json: str, **env) -> Dashboard:
    seed_order(base / "export", SECRET)
    return Dashboard(base / "export", base / "streamlit.log", AUTH_USERS=users_json, **env)


def url_variants(path: str) -> list[str]:
    """Ways to ask for one page: exact, trailing slash, upper case, misspelt, doubled slash, with a query."""
    return [f"/{path}", f"/{path}/", f"/{path.upper()}", f"/{path[:-1]}", f"//{path}", f"/{path}?embed=true",
            f"/{path}/x"]


def assert_only_login(page, wire: Wire, what: str) -> None:
    """The page shows the login form and nothing of the dashboard, and was sent nothing of it."""
    wait_idle(page)
    assert page.get_by_role("button", name="Log in").count() == 1, f"{what}: no login form"
    text = page.locator("body").inner_text()
    assert SECRET not in text and not wire.heard(SECRET), f"{what}: the order number reached a stranger"
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0, f"{what}: a page list is shown"
    assert page.locator('[data-testid="stSidebar"]').count() == 0, f"{what}: a sidebar is shown"
    assert page.get_by_role("button", name="Start").count() == 0, f"{what}: the Capture page ran"
    assert page.locator('[data-testid="stImage"]').count() == 0, f"{what}: an image is shown"
    assert not wire.media_requests(), f"{what}: media requested: {wire.media_requests()}"
    for spec in PAGES:  # no page's own heading
        assert page.get_by_role("heading", name=spec.title, exact=True).count() == 0, f"{what}: {spec.title}"


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_a_stranger_gets_only_the_login_form_for_every_page_url(spec, browser, tmp_path, users_json):
    """A fresh server whose first session asks this page's URL (the case Streamlit's own pages/ discovery
    opened), then the URL's variants and the page script's file name in later sessions."""
    dash = start_dashboard(tmp_path, users_json)
    try:
        urls = url_variants(spec.url_path) + [f"/{spec.script.split('/')[-1].removesuffix('.py')}", "/"]
        for n, path in enumerate(urls):
            context = browser.new_context()
            page = context.new_page()
            wire = Wire(page)
            response = page.goto(dash.url + path)
            what = f"{path} ({'first' if n == 0 else 'later'} session)"
            page.wait_for_load_state("networkidle")
            if response.status == 200 and (wire.frames or page.locator('[data-testid="stApp"]').count()):
                assert_only_login(page, wire, what)
            else:  # refused (//path: 400) or no app at all (/path/x: the page's scripts do not load)
                assert not wire.frames and SECRET not in page.content() and not wire.media_requests(), what
            if n == 0:
                page.screenshot(path=str(ARTIFACTS / f"stranger-{spec.url_path}.png"))
            context.close()
    finally:
        dash.stop()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, users_json):
    dash = start_dashboard(tmp_path_factory.mktemp("security"), users_json, UPLOAD_MAX_BYTES="2000000",
                           EXTRACT_MAX_BYTES="2000000")
    yield dash
    dash.stop()


def test_an_operator_gets_nothing_of_an_admin_page(dashboard, browser):
    for spec in ADMIN_PAGES:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{dashboard.url}/{spec.url_path}")
        browser_log_in(page, OPERATOR, OPERATOR_PW)
        page.get_by_role("button", name="Start").wait_for(timeout=60_000)  # the default page instead
        wait_idle(page)
        assert page.get_by_role("heading", name=spec.title, exact=True).count() == 0, spec.title
        nav = page.locator('[data-testid="stSidebarNav"]')
        assert nav.get_by_text("Gallery", exact=True).count() == 1
        for admin_page in ADMIN_PAGES:
            assert nav.get_by_text(admin_page.title, exact=True).count() == 0
        assert page.locator('[data-testid="stDataFrame"]').count() == 0
        assert page.get_by_role("button", name="Update images").count() == 0
        if spec is ADMIN_PAGES[0]:
            page.screenshot(path=str(ARTIFACTS / f"operator-asks-{spec.url_path}.png"))
        context.close()


def test_after_logout_the_urls_seen_while_logged_in_give_nothing(dashboard, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    wire = Wire(page)
    page.goto(dashboard.url)
    browser_log_in(page, ADMIN, ADMIN_PW)
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    seen_pages = []
    nav = page.locator('[data-testid="stSidebarNav"]')
    gallery = next(p for p in PAGES if p.url_path == "gallery")
    for spec in [*PAGES, gallery]:  # every page by the menu as a user would, ending on the gallery's images
        nav.get_by_text(spec.title, exact=True).click()
        page.get_by_role("heading", name=spec.title if spec.url_path != "capture" else "Extract unique images",
                         exact=True).first.wait_for(timeout=60_000)
        wait_idle(page)
        seen_pages.append(page.url)
    page.locator('[data-testid="stImage"]').first.wait_for(timeout=30_000)
    wait_idle(page)
    media = sorted(set(wire.media_requests()))
    assert media, "the gallery showed images over /media/"
    shown = [u for u in media if context.request.get(u).status == 200]  # the gallery's, valid while logged in
    assert shown
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    wait_idle(page)
    gone = {u: context.request.get(u).status for u in shown}
    assert set(gone.values()) == {404}, gone  # invalid as soon as the logout's run is over
    for url in seen_pages:
        fresh = Wire(page)
        page.goto(url)
        assert_only_login(page, fresh, f"{url} after logout")
    context.close()


def test_a_closed_tab_loses_its_images_within_seconds(dashboard, browser):
    context = browser.new_context()
    page = context.new_page()
    wire = Wire(page)
    page.goto(f"{dashboard.url}/gallery")
    browser_log_in(page, OPERATOR, OPERATOR_PW)
    page.locator('[data-testid="stImage"]').first.wait_for(timeout=60_000)
    media = sorted(set(wire.media_requests()))
    assert media
    page.close()  # no logout: the tab is simply closed
    wait_for(lambda: all(context.request.get(u).status == 404 for u in media), timeout=30,
             what="images of a closed tab answering 404")
    context.close()


def test_the_upload_endpoint_takes_nothing_from_a_stranger(dashboard, browser):
    """The attack of the issue: 5 x 100 MB to Streamlit's upload endpoint from a session with only the login
    form. Refused (403) before the body is read; the dashboard's memory does not grow with it."""
    context = browser.new_context()
    page, wire = open_login_page(context, dashboard.url)
    session_id = wire.session_id()
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    pid = dashboard.proc.pid
    before = memory_kb(pid)
    reset_peak(pid)
    results = [upload(dashboard, session_id, cookies, 100_000_000) for _ in range(5)]
    after = memory_kb(pid)
    peak_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
    grown_mb = (after["VmRSS"] - before["VmRSS"]) / 1024
    print(f"5 x 100 MB uploads before login: {results}; RSS {before['VmRSS'] / 1024:.0f} -> "
          f"{after['VmRSS'] / 1024:.0f} MB, peak +{peak_mb:.1f} MB")
    assert all(status == 403 for status, _ in results), results
    assert peak_mb < 20 and grown_mb < 20, (peak_mb, grown_mb)
    assert upload(dashboard, session_id, cookies, 1000)[0] == 403  # small ones too

    # the same session logged in as operator: still no uploads (no operator page takes files)
    browser_log_in(page, OPERATOR, OPERATOR_PW)
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    assert upload(dashboard, session_id, cookies, 1000)[0] == 403
    # ... and as admin: accepted, within UPLOAD_MAX_BYTES (2 MB here) only
    page.get_by_role("button", name="Log out").click()
    browser_log_in(page, ADMIN, ADMIN_PW)
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    wait_idle(page)
    assert upload(dashboard, session_id, cookies, 1000)[0] in (200, 204)
    assert upload(dashboard, session_id, cookies, 4_000_000)[0] == 413
    assert upload(dashboard, session_id, cookies, 1000, declared=40_000_000)[0] == 413
    context.close()


def test_streamlit_internals_are_closed(dashboard):
    import requests

    for path in ("/_stcore/metrics", "/_STCORE/metrics", "//_stcore/metrics", "/_stcore/agent/openapi.json"):
        assert requests.get(dashboard.url + path, timeout=10).status_code == 404, path
    assert requests.get(dashboard.url + "/_stcore/health", timeout=10).text == "ok"
