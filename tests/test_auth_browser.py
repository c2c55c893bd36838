"""Login in a real browser: nothing but the login form without it, roles in the navigation, logout."""

from __future__ import annotations

import json

import pytest

from tests.browser import ARTIFACTS, Dashboard, require_browser
from tests.conftest import wait_for
from utils.auth import hash_password

require_browser()  # skips the module without playwright or chromium


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth")
    users = {"anna": {"hash": hash_password("admin-pass-1"), "role": "admin"},
             "ole": {"hash": hash_password("operator-pass-2")}}
    dash = Dashboard(base / "export", base / "streamlit.log", AUTH_USERS=json.dumps(users), AUTH_MAX_FAILURES="3")
    yield dash
    dash.stop()


def log_in(page, name, password):
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_pages_need_login_and_roles_shape_the_navigation(dashboard, browser):
    page = browser.new_page()
    for path in ("", "/gallery", "/statistics", "/settings"):
        page.goto(dashboard.url + path)
        page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
        assert page.get_by_role("button", name="Start").count() == 0
        assert page.locator('[data-testid="stImage"]').count() == 0
    page.goto(dashboard.url)
    page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    log_in(page, "ole", "wrong-password")
    page.get_by_text("Wrong user name or password.").wait_for(timeout=30_000)
    log_in(page, "ole", "operator-pass-2")
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.get_by_text("Gallery", exact=True).count() == 1 and nav.get_by_text("Statistics", exact=True).count() == 0
    page.get_by_text("Logged in as ole (operator)").wait_for()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Start").count() == 0
    log_in(page, "anna", "admin-pass-1")
    page.get_by_role("button", name="Start").wait_for(timeout=60_000)
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.get_by_text("Statistics", exact=True).count() == 1 and nav.get_by_text("Settings", exact=True).count() == 1
    page.close()


def test_a_guessing_tab_is_locked_out_but_the_owner_is_not(dashboard, browser):
    """Issue 9.10: the dashboard on loopback knows no client address; three wrong passwords for the admin lock
    the guessing browser tab out for that name, and the admin logs in from another tab at once."""
    guesser = browser.new_context().new_page()
    guesser.goto(dashboard.url)
    guesser.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    def failures() -> int:
        return dashboard.log_path.read_text().count("Failed login for user 'anna'")

    before = failures()
    for i in range(3):  # one submit at a time: each is counted in the dashboard's log before the next
        log_in(guesser, "anna", "guess-1234")
        wait_for(lambda: failures() == before + i + 1, what=f"failed login {i + 1} counted")
    log_in(guesser, "anna", "admin-pass-1")
    guesser.get_by_text("Too many failed attempts").wait_for(timeout=30_000)
    owner = browser.new_context().new_page()
    owner.goto(dashboard.url)
    owner.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    log_in(owner, "anna", "admin-pass-1")
    try:
        owner.get_by_role("button", name="Start").wait_for(timeout=60_000)
    finally:
        owner.screenshot(path=str(ARTIFACTS / "owner-after-guesser.png"))
    owner.context.close()
    guesser.context.close()
