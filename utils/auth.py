"""Dashboard login: users with argon2 password hashes, roles, and a limit on wrong passwords.

* ``AUTH_USERS`` (JSON): ``{"anna": {"hash": "$argon2id$...", "role": "admin"}, "ole": {"hash": "..."}}``
  — make a hash with ``python -m utils.auth hash`` (asks for the password twice).
* ``DUMMY_USER`` / ``DUMMY_PW``: one plain user/password pair (compatibility with the statistics
  app the product absorbed); accepted with a warning in the log. Its role is ``DUMMY_ROLE``.
* Streamlit's own OIDC login (``st.login``) is used instead when ``.streamlit/secrets.toml`` has an
  ``[auth]`` section; ``AUTH_ADMIN_EMAILS`` get the admin role, everyone else operator.
* Without any of these the dashboard is open and everybody acts as admin (a PC on a closed shop-floor network).

Roles: ``operator`` (capture, gallery) and ``admin`` (also delete, re-filter, statistics and exports, upload
analysis, settings). Wrong passwords slow down the guesser, not the owner: after ``AUTH_MAX_FAILURES`` failures
of one client for one user name, that client may not log in as that user for ``AUTH_LOCKOUT_S`` seconds (doubling
with each further round, at most 1 hour); after ``CLIENT_FAILURE_FACTOR`` times as many failures of one client
over any names, that client may not log in at all for as long. Nobody else is locked out: the owner logging in
from another browser is not affected. The client is the browser's address where it is known for sure (see
TRUSTED_PROXIES), else the browser tab's session.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

Role = Literal["operator", "admin"]
ROLES: tuple[Role, ...] = ("operator", "admin")
CLIENT_FAILURE_FACTOR = 4  # failures of one client over all names, in multiples of AUTH_MAX_FAILURES
MAX_TRACKED = 10_000  # failure records kept before expired ones are dropped
MAX_NAME_LENGTH = 128  # longer user names and passwords are refused unhashed
MAX_PASSWORD_LENGTH = 1024
_hasher = PasswordHasher()
# verified against for unknown user names, so that they take as long as known ones
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """An argon2id hash for ``AUTH_USERS``."""
    if len(password) < 8:
        raise ValueError("use at least 8 characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"use at most {MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


OPEN_ACCESS_USER = User("(no login configured)", "admin")


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    lockouts: int = 0
    last: float = 0.0  # time of the last failure


@dataclass
class Authenticator:
    """Checks user names and passwords against the configuration; thread-safe; one per process."""

    users: dict[str, tuple[str, Role]]  # name -> (argon2 hash, role)
    dummy_user: str | None = None
    dummy_password: str | None = None
    dummy_role: Role = "operator"
    max_failures: int = 5
    lockout_s: float = 60.0
    # one argon2 verification holds 64 MiB for ~50 ms: at most this many run at once, so that a crowd of login
    # attempts (which anybody who reaches the login form can send) cannot take the memory of the capture
    verify_slots: int = 2
    hasher: PasswordHasher = field(default_factory=lambda: _hasher)
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _verify_gate: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._verify_gate = threading.BoundedSemaphore(max(1, self.verify_slots))

    def _verify(self, stored: str, password: str) -> bool:
        with self._verify_gate:
            try:
                return self.hasher.verify(stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    @property
    def enabled(self) -> bool:
        return bool(self.users) or bool(self.dummy_user and self.dummy_password)

    def locked_for(self, *keys: str) -> float:
        """Seconds until a login for these keys is accepted again."""
        now = time.monotonic()
        with self._lock:
            return max([0.0] + [f.locked_until - now for k in keys if (f := self._failures.get(k))])

    @staticmethod
    def keys(name: str, client: str) -> tuple[str, str]:
        """The failure records a login attempt counts against: (this client for this name, this client)."""
        return f"pair:{client}|{name.casefold()}", f"client:{client}"

    def _failed(self, keys: tuple[str, str]) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:  # a crowd of made-up names or sessions: keep what matters
                self._prune(now)
            for key, limit in zip(keys, (self.max_failures, self.max_failures * CLIENT_FAILURE_FACTOR)):
                f = self._failures.setdefault(key, _Failures())
                f.count += 1
                f.last = now
                if f.count >= limit:
                    f.locked_until = now + min(3600.0, self.lockout_s * 2**f.lockouts)
                    f.lockouts += 1
                    f.count = 0

    def _prune(self, now: float) -> None:
        """Drop records that no longer lock anybody and failed long ago; then, if still too many, the oldest."""
        keep = {k: f for k, f in self._failures.items() if f.locked_until > now or (f.count and now - f.last < 3600)}
        if len(keep) >= MAX_TRACKED // 2:
            newest = sorted(keep.items(), key=lambda kv: max(kv[1].last, kv[1].locked_until))[-(MAX_TRACKED // 2):]
            keep = dict(newest)
        self._failures = keep

    def login(self, name: str, password: str, client: str) -> User:
        """The user for these credentials; raises :class:`LoginError` (wrong or locked).

        ``client`` identifies who is trying (an address known for sure, else the browser session).
        """
        name = (name or "").strip()
        if len(name) > MAX_NAME_LENGTH or len(password or "") > MAX_PASSWORD_LENGTH:
            # no user has such a name or password: refused before any hashing, and not kept as a failure key
            logger.warning("Login with an over-long user name or password refused from %s", client)
            raise LoginError("Wrong user name or password.")
        keys = self.keys(name, client)
        wait = self.locked_for(*keys)
        if wait > 0:
            raise LoginError(f"Too many failed attempts. Try again in {wait:.0f} s.")
        user = self._check(name, password or "")
        if user is None:
            self._failed(keys)
            logger.warning("Failed login for user %r from %s", name[:64], client)
            raise LoginError("Wrong user name or password.")
        with self._lock:
            self._failures.pop(keys[0], None)  # the client's own count over other names stays
        logger.info("User %s logged in (%s) from %s", user.name, user.role, client)
        return user

    def _check(self, name: str, password: str) -> User | None:
        entry = self.users.get(name)
        if entry is not None:
            stored, role = entry
            return User(name, role) if self._verify(stored, password) else None
        if self.dummy_user and self.dummy_password is not None:
            ok_user = hmac.compare_digest(name.encode(), self.dummy_user.encode())
            ok_pw = hmac.compare_digest(password.encode(), self.dummy_password.encode())
            if ok_user and ok_pw:
                return User(name, self.dummy_role)
        self._verify(_DUMMY_HASH, password + "x")  # same work for unknown names as for known ones
        return None


class LoginError(ValueError):
    """Wrong credentials or a locked account; the message is for the user."""


def authenticator_from_settings(settings) -> Authenticator:  # noqa: ANN001 - utils.config.Settings
    """The authenticator configured by AUTH_USERS / DUMMY_USER / DUMMY_PW."""
    users = {name: (u.hash, u.role) for name, u in settings.AUTH_USERS.items()}
    if settings.DUMMY_USER and settings.DUMMY_PW:
        logger.warning(
            "DUMMY_USER/DUMMY_PW login is enabled: a plain-text password in the environment. "
            "Prefer AUTH_USERS with argon2 hashes (python -m utils.auth hash)."
        )
    return Authenticator(
        users=users,
        dummy_user=settings.DUMMY_USER,
        dummy_password=settings.DUMMY_PW.get_secret_value() if settings.DUMMY_PW else None,
        dummy_role=settings.DUMMY_ROLE,
        max_failures=settings.AUTH_MAX_FAILURES,
        lockout_s=settings.AUTH_LOCKOUT_S,
    )


def login_summary(settings, oidc: bool = False) -> str:  # noqa: ANN001 - utils.config.Settings
    """Which login is in force, in one line for the log and the configuration check."""
    if oidc:
        return f"login: Streamlit OIDC (st.login); admins: {len(settings.AUTH_ADMIN_EMAILS)} e-mail address(es)"
    parts = []
    if settings.AUTH_USERS:
        admins = sum(u.role == "admin" for u in settings.AUTH_USERS.values())
        parts.append(f"AUTH_USERS with {len(settings.AUTH_USERS)} user(s), {admins} admin(s)")
    if settings.DUMMY_USER and settings.DUMMY_PW:
        parts.append(f"DUMMY_USER {settings.DUMMY_USER!r} ({settings.DUMMY_ROLE}, plain password)")
    if not parts:
        return "login: NONE - no AUTH_USERS, DUMMY_USER or OIDC: everybody who reaches the dashboard is admin"
    return "login: " + " and ".join(parts)


def main() -> int:
    """``python -m utils.auth hash``: print an argon2 hash of a password typed twice."""
    import getpass
    import sys

    if sys.argv[1:] != ["hash"]:
        print("usage: python -m utils.auth hash", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
    else:  # piped: one line
        first = second = sys.stdin.readline().rstrip("\n")
    if first != second:
        print("The passwords differ.", file=sys.stderr)
        return 1
    try:
        print(hash_password(first))
    except ValueError as err:
        print(f"Password refused: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
