"""The server-side gate of the dashboard: what Streamlit's HTTP server answers before any page script runs.

``streamlit run app.py`` finds the ``st.App`` in ``app.py`` and serves it with uvicorn; :func:`app_options`
gives that app

* :class:`DashboardGate`, an ASGI middleware in front of every Streamlit route:
  - ``PUT``/``DELETE /_stcore/upload_file/<session>/<file>`` only for a session whose script has resolved a
    logged-in user with :data:`utils.navigation.UPLOAD_ROLE` (403 before a byte of the body is read), and
    never above the larger of ``UPLOAD_MAX_BYTES`` and ``EXTRACT_MAX_BYTES`` (413 on the declared or streamed
    length; each page checks its own limit too);
  - ``/_stcore/metrics`` (function names, cache sizes, upload bytes) and the agent API (``/_stcore/agent/``)
    answer 404 to everybody;
  - the client address Streamlit reports (``st.context.ip_address``) is one known for sure, or none
    (:func:`utils.asgi.client_address`, ``TRUSTED_PROXIES``): the wrong-password limits count by it;
* ``/_gate/upload``, the check a reverse proxy asks (nginx ``auth_request``) before it forwards an upload;
* ``/_export/<token>/<file>``, downloads streamed from disk for a logged-in session (:data:`DOWNLOADS`);
* a housekeeping thread that forgets sessions whose browser is gone and drops their images and downloads.

At import it also switches off Streamlit's discovery of the ``pages/`` folder ("multipage v1"): without
that, the first browser session after a start that asks ``/gallery`` runs ``pages/gallery.py`` directly,
past ``app.py``'s login gate. It sets ``server.maxUploadSize`` from those two settings.

:data:`SESSIONS` is filled by the page script (``utils.ui.current_user``) and read here: the event loop and
the script threads share it, so it is a locked dict.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from utils.asgi import BodyTooLarge, client_address, declared_length, limit_receive, networks, send_json
from utils.auth import User
from utils.navigation import UPLOAD_ROLE, has_role

logger = logging.getLogger(__name__)

# multipart boundaries and part headers on top of the file itself (Streamlit allows the same)
UPLOAD_OVERHEAD_BYTES = 1024 * 1024
_UPLOAD_PATH = re.compile(r"(?:^|/)_stcore/upload_file/([^/]+)(?:/|$)", re.IGNORECASE)
_CLOSED_PATHS = re.compile(r"(?:^|/)_stcore/(?:metrics|agent)(?:/|$)", re.IGNORECASE)
GATE_CHECK_PATH = "/_gate/upload"
HOUSEKEEPING_INTERVAL_S = 5.0  # how often disconnected sessions are looked for


class SessionRegistry:
    """Which Streamlit session (by id) has which logged-in user; thread-safe."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()

    def set(self, session_id: str, user: User | None) -> None:
        """Record the user of a session after its script checked the login (None: nobody logged in)."""
        with self._lock:
            if user is None:
                self._users.pop(session_id, None)
            elif self._users.get(session_id) != user:
                self._users[session_id] = user

    def user(self, session_id: str) -> User | None:
        with self._lock:
            return self._users.get(session_id)

    def prune(self, is_alive: Callable[[str], bool]) -> list[str]:
        """Forget the sessions that are no longer connected; returns their ids."""
        with self._lock:
            dead = [sid for sid in self._users if not is_alive(sid)]
            for sid in dead:
                del self._users[sid]
        return dead

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)


SESSIONS = SessionRegistry()


def may_upload(session_id: str, registry: SessionRegistry = SESSIONS, alive: Callable[[str], bool] | None = None) -> bool:
    """Whether the session may send files: logged in with the upload role, and (if known) still connected."""
    if not has_role(registry.user(session_id), UPLOAD_ROLE):
        return False
    return alive is None or alive(session_id)


def _normalized(path: str) -> str:
    return re.sub(r"/{2,}", "/", path)


class DashboardGate:
    """ASGI middleware: uploads only from logged-in sessions and within the limit; metrics and agent API closed."""

    def __init__(self, app: Any, max_upload_bytes: int | None = None, registry: SessionRegistry = SESSIONS,
                 alive: Callable[[str], bool] | None = None, trusted_proxies: list[str] | None = None) -> None:
        self.app = app
        self.max_body = None if max_upload_bytes is None else max_upload_bytes + UPLOAD_OVERHEAD_BYTES
        self.registry = registry
        self.alive = alive or _session_alive
        self.trusted = networks(trusted_proxies or [])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # what Streamlit reports as st.context.ip_address: only an address known for sure (else None)
        address = client_address(scope, self.trusted)
        port = (scope.get("client") or (None, 0))[1]
        scope = {**scope, "client": (address, port) if address else None}
        path = _normalized(scope.get("path", ""))
        if _CLOSED_PATHS.search(path):
            if scope["type"] == "http":
                await send_json(send, 404, "not served by this dashboard")
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        upload = _UPLOAD_PATH.search(path)
        if scope["type"] == "http" and upload and scope.get("method", "GET").upper() not in ("OPTIONS", "HEAD", "GET"):
            if not may_upload(upload.group(1), self.registry, self.alive):
                logger.warning("Upload refused for session %s (not logged in with role %s) from %s",
                               upload.group(1)[:8], UPLOAD_ROLE, (scope.get("client") or ("?",))[0])
                await send_json(send, 403, f"log in first: files are accepted only from a session logged in as {UPLOAD_ROLE}")
                return
            if self.max_body is not None:
                await self._limited(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _limited(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert self.max_body is not None
        too_large = (f"file too large: at most {self.max_body - UPLOAD_OVERHEAD_BYTES:,} bytes (UPLOAD_MAX_BYTES, "
                     "EXTRACT_MAX_BYTES)")
        length = declared_length(scope)
        if length is not None and length > self.max_body:
            await send_json(send, 413, too_large)
            return
        started = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limit_receive(receive, self.max_body), watched_send)
        except BodyTooLarge:
            if not started:
                await send_json(send, 413, too_large)


def _session_alive(session_id: str) -> bool:
    """Whether Streamlit's runtime has this session connected (True when no runtime runs, e.g. in a unit test)."""
    from streamlit import runtime

    if not runtime.exists():
        return True
    return runtime.get_instance().is_active_session(session_id)


def expire_disconnected() -> list[str]:
    """Forget logged-in sessions whose browser is gone (tab closed, reload) and drop their images and downloads.

    Streamlit keeps a disconnected session's media for as long as the process runs; after this, the image
    URLs such a browser saw answer 404. A session that reconnects re-registers and re-sends its images on its
    next run.
    """
    from streamlit import runtime

    if not runtime.exists():
        return []
    rt = runtime.get_instance()
    dead = SESSIONS.prune(rt.is_active_session)
    if dead:
        for session_id in dead:
            DOWNLOADS.forget_session(session_id)
            rt.media_file_mgr.clear_session_refs(session_id)
        for _ in range(2):  # downloads are deleted on the second pass
            rt.media_file_mgr.remove_orphaned_files()
        logger.info("Dropped the images of %d disconnected session(s)", len(dead))
    return dead


_housekeeping_started = threading.Event()


def start_housekeeping(interval_s: float = HOUSEKEEPING_INTERVAL_S) -> None:
    """Run :func:`expire_disconnected` every ``interval_s`` seconds in a daemon thread (once per process)."""
    if _housekeeping_started.is_set():
        return
    _housekeeping_started.set()

    def loop() -> None:
        while True:
            time.sleep(interval_s)
            try:
                expire_disconnected()
            except Exception:  # noqa: BLE001 - keep the loop alive; the log has the details
                logger.exception("Session housekeeping failed")

    threading.Thread(target=loop, name="session-housekeeping", daemon=True).start()


# ----------------------------------------------------------------- streamed downloads

DOWNLOAD_PATH = "/_export"
DOWNLOAD_TTL_S = 600.0  # a download link works this long, and only while its session is logged in
MAX_PARALLEL_DOWNLOADS = 2  # more wait for a free slot (each costs about one chunk of memory)


@dataclass
class _Download:
    session_id: str
    file_name: str
    chunks: Callable[[], Iterator[bytes]]
    expires: float
    key: str | None = None  # what the page offers (e.g. an order id): the same link is reused for it


class DownloadRegistry:
    """One-time-named links (``/_export/<token>/<file>``) to files streamed by the server, not held in memory.

    A page registers what to stream for its session; the link answers only while that session is connected
    and logged in, for :data:`DOWNLOAD_TTL_S`.
    """

    def __init__(self, parallel: int = MAX_PARALLEL_DOWNLOADS) -> None:
        self._items: dict[str, _Download] = {}
        self._lock = threading.Lock()
        self.parallel = parallel
        self._slots: Any = None  # an anyio.Semaphore, made in the server's event loop on first use

    @property
    def slots(self) -> Any:
        import anyio

        if self._slots is None:
            self._slots = anyio.Semaphore(self.parallel)
        return self._slots

    def issue(self, session_id: str, file_name: str, chunks: Callable[[], Iterator[bytes]],
              key: str | None = None) -> str:
        """The URL path of a new link (reused for the same session and ``key`` while it is valid)."""
        now = time.monotonic()
        with self._lock:
            self._items = {t: d for t, d in self._items.items() if d.expires > now}
            for token, item in self._items.items():
                fresh = item.expires - now > DOWNLOAD_TTL_S / 2
                if key is not None and fresh and (item.session_id, item.file_name, item.key) == (session_id, file_name, key):
                    return f"{DOWNLOAD_PATH}/{token}/{quote(file_name)}"
            token = secrets.token_urlsafe(24)
            self._items[token] = _Download(session_id, file_name, chunks, now + DOWNLOAD_TTL_S, key)
        return f"{DOWNLOAD_PATH}/{token}/{quote(file_name)}"

    def get(self, token: str) -> _Download | None:
        with self._lock:
            item = self._items.get(token)
        if item is None or item.expires < time.monotonic():
            return None
        return item

    def forget_session(self, session_id: str) -> None:
        with self._lock:
            self._items = {t: d for t, d in self._items.items() if d.session_id != session_id}


DOWNLOADS = DownloadRegistry()


async def _bounded(chunks: Iterator[bytes], slots: Any) -> AsyncIterator[bytes]:
    """``chunks`` (read in a worker thread) while holding one of the download slots (waits for one first).

    The slot is released however the stream ends: finished, failed, or cancelled because the client went away.
    """
    from starlette.concurrency import iterate_in_threadpool

    async with slots:
        try:
            async for chunk in iterate_in_threadpool(chunks):
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(ValueError):  # "generator already executing": it ends by itself
                    close()  # the open file of an unfinished ZIP


async def download(request: Any) -> Any:
    """``GET /_export/<token>/<file>``: stream a registered file to a logged-in session's browser."""
    from starlette.responses import Response, StreamingResponse

    item = DOWNLOADS.get(request.path_params["token"])
    if item is None or SESSIONS.user(item.session_id) is None or not _session_alive(item.session_id):
        return Response("This download link has expired or its session has logged out: open the page again.",
                        status_code=404, media_type="text/plain")
    disposition = f"attachment; filename*=UTF-8''{quote(item.file_name)}"
    return StreamingResponse(_bounded(item.chunks(), DOWNLOADS.slots), media_type="application/zip",
                             headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


async def gate_check(request: Any) -> Any:
    """``GET /_gate/upload``: 204 when the upload in ``X-Original-URI`` comes from a session that may upload,
    else 403 — for a reverse proxy's ``auth_request`` in front of ``/_stcore/upload_file/``."""
    from starlette.responses import Response

    upload = _UPLOAD_PATH.search(_normalized(request.headers.get("x-original-uri", "").split("?")[0]))
    if upload and may_upload(upload.group(1), SESSIONS, _session_alive):
        return Response(status_code=204)
    return Response(status_code=403)


# ----------------------------------------------------------------- Streamlit server set-up


def disable_pages_discovery() -> None:
    """Stop Streamlit from running ``pages/*.py`` on its own (multipage v1): every page goes through app.py.

    Fails the start (instead of serving unguarded pages) when Streamlit no longer has the switch.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not hasattr(PagesManager, "uses_pages_directory"):
        raise RuntimeError(
            "This Streamlit version has no PagesManager.uses_pages_directory: the dashboard cannot make sure that "
            "pages/ is not served past the login. Install the Streamlit version from requirements.txt."
        )
    PagesManager.uses_pages_directory = False


def oidc_configured() -> bool:
    """Whether .streamlit/secrets.toml has an [auth] section (Streamlit's OIDC login)."""
    import streamlit as st

    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no or unreadable secrets file: not configured
        return False


def upload_limit_mib(max_bytes: int) -> int:
    """``server.maxUploadSize`` (whole MiB, at least 1) for a limit in bytes."""
    return max(1, math.ceil(max_bytes / (1024 * 1024)))


def _engine_lifespan(settings: Any) -> Callable[[Any], Any]:
    """The server's lifespan: a station's capture engine starts with the server (so the HTTP API can run orders
    before anyone opens the dashboard) and gives the camera back when the server stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if settings is not None and settings.APP_MODE == "station":
            from utils.engine import start_engine_in_background

            start_engine_in_background(settings)
        try:
            yield
        finally:
            from utils.control.loop import stop_all_control_loops

            stop_all_control_loops()

    return lifespan


def app_options() -> dict[str, Any]:
    """Keyword arguments of ``st.App`` for the dashboard: the gate middleware and the proxy check route.

    Reads the settings once; with a broken configuration the limits stay Streamlit's and nobody can upload
    (no session logs in: the pages show the configuration error instead).
    """
    from starlette.middleware import Middleware
    from starlette.routing import Route
    from streamlit import config as st_config

    from utils.config import ConfigError, load_settings

    from utils.auth import login_summary
    from utils.logs import setup_logging
    from utils.preflight import forwarded_problems

    disable_pages_discovery()
    start_housekeeping()
    max_bytes: int | None = None
    trusted: list[str] = []
    try:
        settings = load_settings()
    except ConfigError:
        settings = None  # every page shows the configuration error; nobody logs in, nobody uploads
    if settings is not None:
        problems = forwarded_problems(settings)
        if problems:  # fail closed: the wrong-password limits would count addresses a client can choose
            raise RuntimeError(" ".join(problems))
        max_bytes, trusted = settings.max_upload_bytes, settings.TRUSTED_PROXIES
        st_config.set_option("server.maxUploadSize", upload_limit_mib(max_bytes), "UPLOAD_MAX_BYTES/EXTRACT_MAX_BYTES")
        try:
            setup_logging(settings.LOGGING_LEVEL, settings.LOGFILE)
        except OSError:
            pass  # the pages show the LOGFILE problem (utils.preflight); the log goes to stdout meanwhile
        summary = login_summary(settings, oidc_configured())
        logger.log(logging.WARNING if "NONE" in summary else logging.INFO, "Dashboard %s", summary)
    return {
        "lifespan": _engine_lifespan(settings),
        "middleware": [Middleware(DashboardGate, max_upload_bytes=max_bytes, trusted_proxies=trusted)],
        "routes": [Route(GATE_CHECK_PATH, gate_check, methods=["GET"]),
                   Route(DOWNLOAD_PATH + "/{token}/{name}", download, methods=["GET"])],
    }
