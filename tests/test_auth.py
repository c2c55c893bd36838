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
from utils.auth import CLIENT_FAILURE_FACTOR, MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, Authenticator, LoginError, User, hash_password
from utils.navigation import PAGES, has_role, page_for_script, pages_for

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
    assert auth.login("anna", ADMIN_PW, "c1") == User("anna", "admin")
    assert auth.login(" ole ", OPERATOR_PW, "c1") == User("ole", "operator")
    for name, pw in [("anna", OPERATOR_PW), ("nobody", ADMIN_PW), ("", ""), ("ole", "")]:
        with pytest.raises(LoginError, match="Wrong user name or password"):
            auth.login(name, pw, "c1")
    with pytest.raises(ValueError):
        hash_password("short")


def test_dummy_user_pair(hashes):
    auth = Authenticator(users={}, dummy_user="stats", dummy_password="pw", dummy_role="admin")
    assert auth.enabled and auth.login("stats", "pw", "c1").role == "admin"
    with pytest.raises(LoginError):
        auth.login("stats", "PW", "c1")
    assert not Authenticator(users={}).enabled


def test_wrong_passwords_slow_the_guesser_not_the_owner(hashes):
    """Issue 9.10: five wrong passwords for the admin from one client lock that client out for the admin,
    not the admin: the owner logs in from anywhere else at once."""
    auth = make_auth(hashes, max_failures=3, lockout_s=0.6)
    for _ in range(3):
        with pytest.raises(LoginError, match="Wrong"):
            auth.login("anna", "guess", client="10.0.0.9")
    with pytest.raises(LoginError, match="Too many failed attempts"):
        auth.login("anna", ADMIN_PW, client="10.0.0.9")  # the guesser waits, even with the right password
    assert auth.login("anna", ADMIN_PW, client="10.0.0.7").role == "admin"  # the owner does not
    assert auth.login("anna", ADMIN_PW, client="session 1a2b").role == "admin"  # nor another tab
    assert auth.login("ole", OPERATOR_PW, client="10.0.0.9").name == "ole"  # the guesser's other names: not yet
    time.sleep(0.7)
    assert auth.login("anna", ADMIN_PW, client="10.0.0.9").name == "anna"
    # without a success in between, the next lock-out of that pair is twice as long
    pair, _ = Authenticator.keys("ghost", "10.0.0.5")
    for _ in range(2):
        for _ in range(3):
            with pytest.raises(LoginError, match="Wrong"):
                auth.login("ghost", "guess", client="10.0.0.5")
        first = auth.locked_for(pair)
        if first < 0.7:
            assert first > 0.4
            time.sleep(first + 0.05)
    assert 0.9 < auth.locked_for(pair) <= 1.2


def test_a_client_guessing_many_names_is_locked_out_of_all(hashes):
    auth = make_auth(hashes, max_failures=2, lockout_s=5)
    for i in range(2 * CLIENT_FAILURE_FACTOR):  # every name only once: no pair reaches its limit
        with pytest.raises(LoginError, match="Wrong"):
            auth.login(f"name{i}", "guess", client="10.0.0.3")
    with pytest.raises(LoginError, match="Too many failed attempts"):
        auth.login("anna", ADMIN_PW, client="10.0.0.3")
    assert auth.login("anna", ADMIN_PW, client="10.0.0.4").role == "admin"


def test_a_crowd_of_made_up_names_keeps_bounded_records(hashes):
    """Failure records of names and clients that no longer matter are dropped once there are many."""
    from utils.auth import MAX_TRACKED

    auth = make_auth(hashes, max_failures=1, lockout_s=1e-6)  # every record locks for a microsecond, then expires
    for i in range(3 * MAX_TRACKED):
        auth._failed(Authenticator.keys(f"name{i}", f"client{i}"))
        assert len(auth._failures) <= MAX_TRACKED + 2


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
    # AppTest runs a switched-to page script directly (its own pages/ discovery, which the server has off:
    # tests/test_security_browser.py checks that an operator's session never gets an admin page there), so
    # this reaches the page's own check
    at.switch_page("pages/settings.py").run()
    assert any("for administrators" in e.value for e in at.error)
    assert not at.dataframe


@pytest.mark.parametrize("script", [p.script for p in PAGES if p.role == "admin"])
def test_admin_page_scripts_refuse_operators_and_strangers_even_when_run_directly(login_env, script):
    """Defence in depth: run past the navigation (as Streamlit's own pages/ discovery would), an admin page
    still shows nothing but the refusal."""
    for user in (User("ole", "operator"), None):
        at = AppTest.from_file(str(ROOT / script), default_timeout=60)
        if user is not None:
            at.session_state["auth_user"] = user
        at.run()
        assert not at.exception
        assert any("for administrators" in e.value for e in at.error), (script, user)
        assert not at.dataframe and not at.get("plotly_chart") and not at.get("file_uploader"), (script, user)


def test_admin_gets_admin_pages(login_env):
    at = log_in("anna", ADMIN_PW)
    assert not at.exception
    assert [b for b in at.button if b.key == "button_update_images"]
    at.switch_page("pages/settings.py").run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "variable" in d.value.columns)  # the configuration table
    token_row = table[table["variable"] == "AUTH_USERS"]["value"].iloc[0]
    assert token_row == "***"  # secrets are masked


# ---------------------------------------------------------------- the page registry and the verification limit


def test_every_page_script_is_in_the_registry_with_a_role():
    """A page file that is not in utils.navigation.PAGES would have no role and no test: refuse it."""
    scripts = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py")
    assert scripts == sorted(p.script for p in PAGES)
    assert all(page_for_script(str(ROOT / s)) is not None for s in scripts)
    assert sum(p.default for p in PAGES) == 1 and len({p.url_path for p in PAGES}) == len(PAGES)


def test_roles_rank():
    admin, operator = User("a", "admin"), User("o", "operator")
    assert pages_for(None) == []
    assert [p.role for p in pages_for(operator)] == ["operator"] * len(pages_for(operator))
    assert pages_for(admin) == list(PAGES)
    assert has_role(admin, "operator") and not has_role(operator, "admin") and not has_role(None, "operator")


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that records how many verifications run at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self.calls = 0
        self._lock = __import__("threading").Lock()

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


def _rss_peak_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def _crowd(auth: Authenticator, n: int) -> tuple[int, list[str]]:
    """``n`` wrong logins at once from ``n`` clients; returns (peak memory growth in kB, the messages)."""
    import threading

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = _rss_peak_kb()
    barrier = threading.Barrier(n)
    messages: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            auth.login(f"stranger{i}", "guess-1234", client=f"10.0.0.{i}")
        except LoginError as err:
            messages.append(str(err))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _rss_peak_kb() - start, messages


def test_a_crowd_of_login_attempts_verifies_two_at_a_time(hashes):
    """Anyone who reaches the login form can make the server hash: each argon2 verification holds 64 MiB.
    Eight at once would hold 512 MiB; the authenticator lets two run at a time."""
    hasher = CountingHasher()
    auth = Authenticator({"anna": (hashes["admin"], "admin")}, hasher=hasher)
    grown_kb, messages = _crowd(auth, 8)
    assert messages == ["Wrong user name or password."] * 8
    assert hasher.calls == 8 and hasher.most == 2
    unbounded = Authenticator({"anna": (hashes["admin"], "admin")}, verify_slots=8)
    grown_unbounded_kb, _ = _crowd(unbounded, 8)
    print(f"peak memory of 8 simultaneous logins: {grown_kb / 1024:.0f} MiB two at a time, "
          f"{grown_unbounded_kb / 1024:.0f} MiB all at once")
    assert grown_kb < 3 * 64 * 1024 < grown_unbounded_kb


def test_over_long_names_and_passwords_are_refused_without_hashing(hashes):
    hasher = CountingHasher()
    auth = Authenticator({"anna": (hashes["admin"], "admin")}, hasher=hasher)
    for name, pw in (("x" * (MAX_NAME_LENGTH + 1), "pw"), ("anna", "p" * (MAX_PASSWORD_LENGTH + 1))):
        with pytest.raises(LoginError, match="Wrong user name or password"):
            auth.login(name, pw, client="10.0.0.1")
    assert hasher.calls == 0
    assert not any(k.startswith("user:xxx") for k in auth._failures)  # no key of megabytes kept
    assert auth.login("anna", ADMIN_PW, "c1") == User("anna", "admin")
