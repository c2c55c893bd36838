"""Login, roles and the wrong-password limit."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

import ImageProcessingThread
from tests.conftest import ROOT, wait_for
from utils.auth import Authenticator, LoginError, User, hash_password

APP = str(ROOT / "app.py")
ADMIN_PW = "admin-secret-1"
OPERATOR_PW = "operator-secret-2"


@pytest.fixture(scope="module")
def hashes():
    return {"admin": hash_password(ADMIN_PW), "operator": hash_password(OPERATOR_PW)}


def make_auth(hashes, **kw) -> Authenticator:
    users = {"anna": (hashes["admin"], "admin"), "ole": (hashes["operator"], "operator")}
    return Authenticator(users=users, **kw)


def test_login_checks_hash_and_role(hashes):
    auth = make_auth(hashes)
    assert auth.enabled
    assert auth.login("anna", ADMIN_PW) == User("anna", "admin")
    assert auth.login(" ole ", OPERATOR_PW) == User("ole", "operator")
    for name, pw in [("anna", OPERATOR_PW), ("nobody", ADMIN_PW), ("", ""), ("ole", "")]:
        with pytest.raises(LoginError, match="Wrong user name or password"):
            auth.login(name, pw)
    with pytest.raises(ValueError):
        hash_password("short")


def test_dummy_user_pair(hashes):
    auth = Authenticator(users={}, dummy_user="stats", dummy_password="pw", dummy_role="admin")
    assert auth.enabled and auth.login("stats", "pw").role == "admin"
    with pytest.raises(LoginError):
        auth.login("stats", "PW")
    assert not Authenticator(users={}).enabled


def test_wrong_passwords_lock_the_user_then_release(hashes):
    auth = make_auth(hashes, max_failures=3, lockout_s=0.6)
    for _ in range(3):
        with pytest.raises(LoginError, match="Wrong"):
            auth.login("ole", "guess", client="10.0.0.9")
    with pytest.raises(LoginError, match="Too many failed attempts"):
        auth.login("ole", OPERATOR_PW, client="10.0.0.9")  # even the right password waits
    with pytest.raises(LoginError, match="Too many failed attempts"):
        auth.login("anna", ADMIN_PW, client="10.0.0.9")  # same client, other user name
    assert auth.login("anna", ADMIN_PW, client="10.0.0.7").role == "admin"  # other client is fine
    time.sleep(0.7)
    assert auth.login("ole", OPERATOR_PW, client="10.0.0.9").name == "ole"
    # without a success in between, the next lock-out is twice as long
    for _ in range(2):
        for _ in range(3):
            with pytest.raises(LoginError, match="Wrong"):
                auth.login("ghost", "guess")
        first = auth.locked_for("user:ghost")
        if first < 0.7:
            assert first > 0.4
            time.sleep(first + 0.05)
    assert 0.9 < auth.locked_for("user:ghost") <= 1.2


def test_hash_command_makes_a_verifiable_hash():
    proc = subprocess.run([sys.executable, "-m", "utils.auth", "hash"], input="correct horse\n", text=True,
                          capture_output=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert PasswordHasher().verify(proc.stdout.strip(), "correct horse")


# ---------------------------------------------------------------- the app with login


@pytest.fixture()
def login_env(app_env, monkeypatch, hashes):
    users = {"anna": {"hash": hashes["admin"], "role": "admin"}, "ole": {"hash": hashes["operator"]}}
    monkeypatch.setenv("AUTH_USERS", json.dumps(users))
    monkeypatch.setenv("AUTH_MAX_FAILURES", "3")
    return app_env


def log_in(name: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


def test_nothing_but_the_login_form_without_login(login_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.text_input(key="login_user") is not None
    assert not [b for b in at.button if b.key == "button_start"]
    assert len(at.get("image")) == 0
    at = log_in("ole", "wrong")
    assert any("Wrong user name or password" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "button_start"]


def test_operator_captures_but_gets_no_admin_actions(login_env):
    at = log_in("ole", OPERATOR_PW)
    assert not at.exception
    assert at.button(key="button_start") is not None
    assert not [b for b in at.button if b.key == "button_update_images"]
    at.text_input(key="order_number").input("OP-1")
    at.button(key="button_start").click().run()
    w, = ImageProcessingThread._workers.values()
    wait_for(lambda: w.snapshot().kept >= 2)
    at.button(key="button_close").click().run()
    at.switch_page("pages/gallery.py").run()
    assert not at.exception and len(at.get("image")) >= 2
    assert not [b for b in at.button if b.key in ("gallery_delete", "gallery_refilter")]
    # an admin page asked for directly
    at.switch_page("pages/settings.py").run()
    assert any("for administrators" in e.value for e in at.error)
    assert not at.dataframe


def test_admin_gets_admin_pages(login_env):
    at = log_in("anna", ADMIN_PW)
    assert not at.exception
    assert [b for b in at.button if b.key == "button_update_images"]
    at.switch_page("pages/settings.py").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    token_row = table[table["variable"] == "AUTH_USERS"]["value"].iloc[0]
    assert token_row == "***"  # secrets are masked


def test_wrong_passwords_are_rate_limited_in_the_app(login_env):
    for _ in range(3):
        log_in("anna", "nope")
    at = log_in("anna", ADMIN_PW)
    assert any("Too many failed attempts" in e.value for e in at.error)
