"""Login in a real browser: nothing but the login form without it, roles in the navigation, logout."""

from __future__ import annotations

import json

import pytest

from tests.browser import Dashboard, require_browser
from utils.auth import hash_password

require_browser()  # skips the module without playwright or chromium


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth")
    users = {"anna": {"hash": hash_password("admin-pass-1"), "role": "admin"},
             "ole": {"hash": hash_password("operator-pass-2")}}
    dash = Dashboard(base / "export", base / "streamlit.log", AUTH_USERS=json.dumps(users))
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
