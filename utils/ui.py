"""Streamlit helpers shared by the pages: the cached engine, the sidebar, galleries, formatting.

Pages stay thin: they lay out widgets and call the engine; logic lives in the engine modules.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
from PIL import Image

from utils.auth import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    OPEN_ACCESS_USER,
    Authenticator,
    LoginError,
    Role,
    User,
    authenticator_from_settings,
)
from utils.config import ConfigError, Settings, load_settings
from utils.engine import Engine, shared_engine
from utils.gate import DOWNLOADS, SESSIONS, oidc_configured
from utils.i18n import config_error_text, error_text, t, user_text
from utils.navigation import PAGES, has_role, pages_for
from utils.storage import ImageRecord, OrderRecord, StorageError, Store, utc_now
from utils.extract import Extraction, order_number_from_name
from utils.video import VideoError, browser_video

logger = logging.getLogger(__name__)
T = TypeVar("T")


@st.cache_resource(show_spinner="Starting the capture engine ...")
def get_engine() -> Engine:
    """The process's engine (settings, store, descriptor, camera, worker): shared by all tabs."""
    return shared_engine(load_settings())


_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>~$:])")  # markup anywhere in a line
_MARKDOWN_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+[.)])", re.MULTILINE)  # headings, quotes, lists


def code(text: object) -> str:
    """``text`` as inline code in Markdown (shown as typed; a backquote in it cannot end the span early)."""
    return "`` " + str(text).replace("`", "'") + " ``"


def md(text: object) -> str:
    """``text`` for Streamlit's Markdown, shown as typed: order numbers like ``_x_`` or ``#1``, paths, messages."""
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", str(text))
    def line_start(m: re.Match[str]) -> str:
        mark = m.group(2)
        return m.group(1) + (mark[:-1] + "\\" + mark[-1] if mark[0].isdigit() else "\\" + mark)

    return _MARKDOWN_LINE_START.sub(line_start, escaped)


def engine_or_stop() -> Engine:
    """The engine, or one page that says why it cannot start (database, export folder, log file)."""
    try:
        return get_engine()
    except StorageError as err:
        logger.error("The dashboard cannot start: %s", err)
        st.error(t("**The dashboard cannot start.** {err}", err=md(err)), icon=":material/error:")
        st.caption(t("Fix it, then reload this page. `python -m utils.config` runs the same checks."))
        st.stop()
        raise  # unreachable; for type checkers


@st.cache_resource(show_spinner="Opening the central archive ...", ttl=300)
def get_archive() -> Any:
    """The central archive of the settings (:class:`utils.archive.view.ArchiveAccess`), opened once per process
    (a failure is not kept: the next page load tries again)."""
    from utils.archive.view import open_archive

    return open_archive(load_settings())


@st.cache_data(max_entries=2000, show_spinner=False)
def archive_thumbnail(key: str, md5: str, max_side: int = 320) -> bytes | None:
    """A thumbnail of an archived image, read from the object store (cached by key and content)."""
    from utils.archive.view import thumbnail_bytes

    return thumbnail_bytes(get_archive().objects, key, max_side)


def archive_or_stop() -> Any:
    """The central archive, or a page that says why it cannot be shown (not set, unreachable, refused)."""
    from utils.archive.central import CentralError
    from utils.archive.objects import ObjectStoreError

    settings = load_settings()
    if not settings.archive_configured:
        st.info(t("No central archive is set for this station. Set CENTRAL_DATABASE_URL and STORAGE_URL (README: "
                  "Several stations, one archive); this station's own orders are in the Gallery."),
                icon=":material/cloud_off:")
        st.stop()
    try:
        return get_archive()
    except (CentralError, ObjectStoreError) as err:
        logger.error("The central archive cannot be shown: %s", err)
        st.error(t("**The central archive cannot be shown.** {err}", err=md(err)), icon=":material/cloud_off:")
        st.caption(t("Fix it, then reload this page."))
        st.stop()
        raise  # unreachable; for type checkers


def settings_or_stop() -> Settings:
    """The settings, or an error page naming the bad variables."""
    try:
        return load_settings()
    except ConfigError as err:
        st.error(md(config_error_text(err)).replace("\n", "  \n"))  # one line per variable
        st.stop()
        raise  # unreachable; for type checkers


@st.cache_data(max_entries=2000, show_spinner=False)
def thumbnail(path: str, max_side: int, mtime: float) -> bytes:
    """JPEG thumbnail of an image file (cached by path, size and modification time)."""
    with Image.open(path) as img:
        img.thumbnail((max_side, max_side))
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:  # a cut-out: shown on a checkerboard
            rgba = img.convert("RGBA")
            board = checkerboard(rgba.size)
            board.alpha_composite(rgba)
            img = board
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=85)
        return buf.getvalue()


def checkerboard(size: tuple[int, int], cell: int = 8) -> Image.Image:
    """The grey checkerboard that shows where an image is transparent."""
    import numpy as np

    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    board = np.where(((x // cell) + (y // cell)) % 2 == 0, 235, 200).astype(np.uint8)
    return Image.fromarray(np.dstack([board, board, board, np.full_like(board, 255)]), "RGBA")


@st.cache_data(max_entries=8, show_spinner=False)
def editor_copy(path: str, mtime: float, max_pixels: int, max_side: int = 1024) -> tuple[Image.Image, tuple[int, int]]:
    """(a copy of the image at most ``max_side`` pixels a side, the image's real size) for the editor's previews;
    decoded once per file version. Raises ToolInputError when the image cannot be edited."""
    from utils.tools.versions import decode_for_tools

    img = decode_for_tools(Path(path).read_bytes(), max_pixels, Path(path).name)
    real = img.size
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img, real


@st.cache_data(max_entries=2000, show_spinner=False)
def archived_thumbnail(image_id: int, max_side: int) -> bytes | None:
    """JPEG thumbnail of an image whose local copy was removed, read from the central archive (cached)."""
    from utils.archive.view import thumbnail_from_bytes

    store = get_engine().store
    return thumbnail_from_bytes(store.read_image(store.get_image(image_id)), max_side)


def thumb(rec: ImageRecord, max_side: int = 320) -> bytes | None:
    try:
        if rec.local_removed_at is not None and not rec.path.exists():
            return archived_thumbnail(rec.id, max_side)
        return thumbnail(str(rec.path), max_side, rec.path.stat().st_mtime)
    except (OSError, ValueError):
        return None


def local_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def image_caption(rec: ImageRecord, labels: dict[int, list[tuple[str, float, str]]] | None = None,
                  seq_of: dict[int, int] | None = None) -> str:
    """One line under a thumbnail: number, time, distance, how it was made, its best label."""
    caption = f"#{rec.seq} {rec.captured_at.astimezone():%H:%M:%S}"
    if rec.is_version:
        src = (seq_of or {}).get(rec.source_image_id or -1)
        caption = f"#{rec.seq} · " + t("version of #{src}", src=src if src is not None else "?") + \
            f" · {(rec.operation or {}).get('name', '')}"
    elif rec.kind == "import":
        caption += " · " + t("imported")
    if rec.distance is not None:
        caption += f" · d={rec.distance:.3f}"
    if rec.forced:
        caption += " · " + t("manual")
    best = (labels or {}).get(rec.id)
    if best:
        caption += f" · {best[0][0]} {best[0][1]:.0%}"
    return caption


def show_gallery(images: list[ImageRecord], n_columns: int, height: int | None, key: str,
                 labels: dict[int, list[tuple[str, float, str]]] | None = None) -> None:
    """A grid of thumbnails (each image followed by its versions) with captions."""
    if not images:
        st.info(t("No images kept for this order."))
        return
    seq_of = {rec.id: rec.seq for rec in images}
    with st.container(height=height if height else "content", key=f"gallery-{key}"):
        cols = st.columns(n_columns)
        for i, rec in enumerate(images):
            data = thumb(rec)
            with cols[i % n_columns]:
                if data is None:
                    st.warning(t("{file}: file missing or unreadable", file=md(rec.file_name)))
                else:
                    st.image(data, caption=image_caption(rec, labels, seq_of), width="stretch")


@st.cache_data(ttl=60, show_spinner="Measuring the export folder ...")
def cached_disk_use(export_dir: str) -> Any:
    """:func:`utils.retention.disk_use` of the engine's store, measured at most once a minute."""
    from utils.retention import disk_use

    engine = get_engine()
    return disk_use(engine.store, engine.settings)


def disk_warning(settings: Settings) -> str | None:
    """A short warning when the disk of EXPORT_DIR has less free space than DISK_WARN_FREE_PERCENT (cheap)."""
    import shutil

    try:
        usage = shutil.disk_usage(settings.EXPORT_DIR)
    except OSError:
        return None
    free = 100.0 * usage.free / usage.total if usage.total else 100.0
    if free < settings.DISK_WARN_FREE_PERCENT:
        return t("The disk is nearly full: {free:.0f} % free ({gb:.1f} GB). Tell the engineer "
                 "(Settings page: disk and retention).", free=free, gb=usage.free / 1e9)
    return None


def image_details(store: Store, rec: ImageRecord) -> str:
    """Markdown lines about one image: when, size, file, camera; how a version was made; where an import came
    from; its labels."""
    made = t("Made") if rec.is_version else t("Captured") if rec.kind == "capture" else t("Imported")
    lines = [f"**{made}** {local_time(rec.captured_at)}"]
    if rec.kind == "capture":
        lines.append(f"**{t('Distance')}** {'–' if rec.distance is None else f'{rec.distance:.4f}'}"
                     f"{t(' (saved by hand)') if rec.forced else ''}")
    lines.append(f"**{t('Size')}** {rec.width} x {rec.height} px, {(rec.size_bytes or 0) / 1024:.0f} KiB")
    lines.append(f"**{t('File')}** `{rec.file_name}`")
    if rec.local_removed_at is not None:
        lines.append(t("**Copy** in the central archive only (removed from this PC {when})",
                       when=local_time(rec.local_removed_at)))
    elif rec.synced_at is not None:
        lines.append(t("**Archive** sent {when}", when=local_time(rec.synced_at)))
    if rec.is_version:
        try:
            src = store.get_image(rec.source_image_id) if rec.source_image_id else None
        except KeyError:
            src = None
        op = rec.operation or {}
        lines.append(f"**{t('Version of')}** {'#' + str(src.seq) if src else t('an image removed since')}")
        lines.append(f"**{t('Operation')}** {md(op.get('description') or op.get('name', ''))}")
        lines.append(f"**{t('Tool')}** {md(rec.tool or '–')}")
    elif rec.kind == "import":
        lines.append(f"**{t('Source')}** {md(rec.source_url or '–')}")
    else:
        lines.append(f"**{t('Camera')}** {md(rec.camera or '–')}")
    labels = store.labels_of([rec.id]).get(rec.id)
    if labels:
        lines.append(f"**{t('Labels')}** " + ", ".join(f"{md(n)} {sc:.0%}" for n, sc, _ in labels))
    return "  \n".join(lines)


def page_path(url_path: str) -> str:
    """The script of the page at ``url_path`` (for ``st.switch_page``)."""
    return next(p.script for p in PAGES if p.url_path == url_path)


def with_versions(store: Store, images: list[ImageRecord]) -> list[ImageRecord]:
    """The images, each followed by the versions made from it."""
    versions = store.versions_of([r.id for r in images if not r.is_version])
    out: list[ImageRecord] = []
    for rec in images:
        out.append(rec)
        out.extend(versions.get(rec.id, []))
    return out


def paged_gallery(store: Store, order: OrderRecord, settings: Settings, key: str,
                  only: set[int] | None = None) -> list[ImageRecord]:
    """One page of the order's thumbnails, each image followed by its versions, with the count, the page and a
    jump to an image number; ``only``: just these images (a label search).

    Only the page's rows and thumbnails are loaded, so an order of 50,000 images opens as fast as one of 50.
    Returns the images shown (versions included).
    """
    from utils.storage import PRIMARY_KINDS

    total = store.count_images(order.id) if only is None else len(only)
    if total == 0:
        st.info(t("No images kept for this order.") if only is None else t("No image matches the label search."))
        return []
    size = settings.GALLERY_PAGE_SIZE
    pages = (total + size - 1) // size
    page_key, jump_key = f"{key}_page_{order.id}", f"{key}_jump_{order.id}"

    def jump() -> None:
        pos = store.image_position(order.id, int(st.session_state[jump_key] or 0))
        if pos is None:
            st.session_state[f"{key}_jump_missing"] = st.session_state[jump_key]
        else:
            st.session_state[page_key] = pos // size + 1
            st.session_state[f"{key}_selected_{order.id}"] = int(st.session_state[jump_key])

    st.session_state.setdefault(page_key, 1)
    st.session_state[page_key] = min(max(1, int(st.session_state[page_key])), pages)
    if pages > 1:
        c1, c2, c3 = st.columns([2, 2, 3], vertical_alignment="bottom")
        c1.number_input(t("Page (of {pages:,})", pages=pages), min_value=1, max_value=pages, step=1, key=page_key)
        if only is None:
            c2.number_input(t("Go to image #"), min_value=0, step=1, value=None, key=jump_key, on_change=jump,
                            placeholder=t("number"))
    else:
        c3 = st.container()
    page = int(st.session_state[page_key])
    primary = store.images(order.id, offset=(page - 1) * size, limit=size, kinds=PRIMARY_KINDS, ids=only)
    c3.caption(t("Images {first:,}–{last:,} of {total:,}", first=(page - 1) * size + 1,
                 last=(page - 1) * size + len(primary), total=total)
               + (t(" matching the label search") if only is not None else ""))
    missing = st.session_state.pop(f"{key}_jump_missing", None)
    if missing is not None:
        st.warning(t("Image #{missing} is not (or no longer) in this order.", missing=missing))
    images = with_versions(store, primary)
    labels = store.labels_of([r.id for r in images])
    show_gallery(images, settings.GALLERY_N_COLUMNS, settings.GALLERY_OVERALL_HEIGHT, key, labels)
    return images


def extract_uploads(files: list[Any], engine: Engine, order_number: str | None, threshold: float,
                    progress: Callable[[int, int | None, int], None]) -> Extraction:
    """Run :func:`utils.extract.extract` on uploaded files: one video, or images (written to a temporary folder,
    streamed, never held twice in memory). Raises ExtractError with what to upload instead."""
    import shutil
    import tempfile

    from utils.extract import ExtractError, extract

    if not files:
        raise ExtractError("Upload one video, or images.")
    videos = [f for f in files if Path(f.name).suffix.lower() in VIDEO_SUFFIXES]
    if videos and len(files) > 1:
        raise ExtractError("Upload one video alone, or images only (not both).")
    total = sum(getattr(f, "size", 0) for f in files)
    if total > engine.settings.EXTRACT_MAX_BYTES:
        raise ExtractError(f"The upload has {total:,} bytes; at most {engine.settings.EXTRACT_MAX_BYTES:,} "
                           "(EXTRACT_MAX_BYTES).")
    with tempfile.TemporaryDirectory(prefix="extract-") as tmp:
        folder = Path(tmp) / ("video" if videos else "images")
        folder.mkdir()
        for i, f in enumerate(files):  # in upload order; the name kept readable but never a path
            stem = re.sub(r"[^\w.\-]+", "_", Path(f.name).stem)[:60]
            name = f"{i:05d}-{stem}{Path(f.name).suffix.lower()}"
            with open(folder / name, "wb") as out:
                f.seek(0)
                shutil.copyfileobj(f, out, 1 << 20)
        source = next(folder.iterdir()) if videos else folder
        number = order_number or order_number_from_name(Path(files[0].name).stem,
                                                        engine.settings.ORDER_NUMBER_MAX_LENGTH)
        return extract(source, engine.store, engine.descriptor, engine.settings, order_number=number,
                       threshold=threshold, progress=progress)


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def threshold_help(mode: str) -> str:
    """What the threshold means, for the slider's help."""
    if mode == "original":
        return t("Root mean squared difference between the frames' global features (the original app's decision). "
                 "A frame is kept when its smallest distance to every kept image is above this threshold.")
    return t("How different a settled scene must be from every kept image. Frames are compared region by region; "
             "camera noise and light flicker stay well below 0.15, an item of 1-2 % of the frame put down is "
             "above 0.5. Lower keeps smaller changes, higher only bigger ones.")


def scene_state(snap: Any, threshold: float) -> str:
    """One line for the live view: is the scene settling, kept, or too close to a kept image?"""
    if snap.last_distance is None and snap.kept == 0 and snap.frames_seen == 0:
        return t("Waiting for the first frame ...")
    if snap.settling:
        return ":material/hourglass_top: " + t("Waiting for the scene to settle (something is moving).")
    if snap.last_distance is None or snap.last_distance > threshold:
        return ":material/check_circle: " + t("Scene settled: kept.")
    return ":material/pause_circle: " + t("Scene settled: the same as a kept image (distance below the threshold).")


PREVIEW_MAX_SIDE = 1280


def preview_frame(camera: Any) -> tuple[Image.Image | None, str | None]:
    """One frame from the camera for the preview before Start (nothing is saved): (image, None) or (None, why)."""
    from utils.camera_frames import grab_image

    img, problem = grab_image(camera, PREVIEW_MAX_SIDE)
    if img is not None:
        img.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    return img, problem


SLOW_CAMERA_SHARE = 0.9  # warn when the camera delivers less than this share of the requested frame rate


def sidebar_error(snap: Any) -> str | None:
    """The camera error the sidebar shows: the running order's latest (after Close order an old one is no news)."""
    return snap.last_error if snap.running else None


#: The Capture page's controls that a gloved finger must hit on a 1280x800 touch panel (at least 48 px high).
TOUCH_KEYS = ("button_start", "button_close", "button_save_image", "button_update_images", "button_read_code",
              "order_number", "next_order")


def touch_controls(keys: tuple[str, ...] = TOUCH_KEYS) -> None:
    """Make the widgets with these keys large enough for a touch panel (Streamlit marks each keyed widget's
    container with the class ``st-key-<key>``)."""
    buttons = ", ".join(f".st-key-{k} button" for k in keys)
    inputs = ", ".join(f".st-key-{k} input" for k in keys)
    st.html(f"<style>{buttons} {{ min-height: 3.25rem; font-size: 1.15rem; padding: 0.5rem 1.25rem; }} "
            f"{inputs} {{ min-height: 3rem; font-size: 1.2rem; }}</style>")


def live_rate(snap: Any, requested: float, now: datetime | None = None) -> tuple[float, str | None]:
    """(frames per second to show, a warning or None) for the live view: 0 while no frame has come for a while
    (a camera outage shows as 0, not as the last rate), and a warning when the camera cannot keep up."""
    now = now or utc_now()
    silent_after = max(2.0, 3.0 / requested) if requested > 0 else 2.0
    if snap.latest_at is None or (now - snap.latest_at).total_seconds() > silent_after:
        return 0.0, None
    rate = float(snap.achieved_fps)
    if snap.frames_seen >= 10 and requested > 0 and rate < SLOW_CAMERA_SHARE * requested:
        return rate, t("The camera delivers {rate:.1f} of {requested:g} frames/s. Lower the rate, or check the "
                       "adapter: Continuous acquisition (not SingleFrame) and TRANSMISSION_TYPE=None give its full "
                       "speed (README: Cameras).", rate=rate, requested=requested)
    return rate, None


def order_label(order: OrderRecord) -> str:
    what = t("{n} image(s)", n=order.n_images) if order.mode != "video" else t("video")
    state = t("running/open") if order.is_open else local_time(order.closed_at)
    if order.kind == "import":
        state = t("imported collection")
    return f"{order.folder.name} · {local_time(order.started_at)} · {what} · {state}"


# ---------------------------------------------------------------- login and roles


@st.cache_resource
def get_authenticator() -> Authenticator:
    """One authenticator per process: its failure counts (rate limit) are shared by all sessions."""
    return authenticator_from_settings(load_settings())


def _session_id() -> str | None:
    """The id of the browser session this script run serves (None outside a Streamlit run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def _resolve_user(settings: Settings) -> User | None:
    if oidc_configured():
        if not st.user.is_logged_in:
            return None
        email = str(st.user.get("email") or st.user.get("name") or "user")
        admins = {a.casefold() for a in settings.AUTH_ADMIN_EMAILS}
        return User(email, "admin" if email.casefold() in admins else "operator")
    if not get_authenticator().enabled:
        return OPEN_ACCESS_USER
    return st.session_state.get("auth_user")


def current_user(settings: Settings) -> User | None:
    """The logged-in user, the open-access user when no login is configured, else None.

    Also tells the server-side gate (``utils.gate.SESSIONS``) who this session is, so that Streamlit's upload
    endpoint accepts files only from sessions whose user may upload.
    """
    user = _resolve_user(settings)
    session_id = _session_id()
    if session_id is not None:
        SESSIONS.set(session_id, user)
    return user


def login_page() -> None:
    """The only page without login: a user/password form, or the OIDC button."""
    st.title(user_text(load_settings(), "TITLE"))
    if oidc_configured():
        st.button(t("Log in"), type="primary", on_click=st.login, key="oidc_login")
        return
    with st.form("login"):
        name = st.text_input(t("User name"), key="login_user", max_chars=MAX_NAME_LENGTH)
        password = st.text_input(t("Password"), type="password", key="login_password",
                                 max_chars=MAX_PASSWORD_LENGTH)
        submitted = st.form_submit_button(t("Log in"), type="primary")
    if submitted:
        try:
            # the address where it is known for sure (utils.gate.client_address), else this browser tab
            client = st.context.ip_address or "session " + hashlib.sha256((_session_id() or "").encode()).hexdigest()[:12]
            user = get_authenticator().login(name, password, client=client)
        except LoginError as err:
            st.error(md(error_text(err)))
        else:
            st.session_state["auth_user"] = user
            st.rerun()


def run_dashboard() -> None:
    """The script of every browser session (``app.py``): the one gate every page passes through.

    A stranger gets the login form under the root and under every page's path (and nothing else is
    registered, so no page script can run); a logged-in user gets the pages of their role
    (``utils.navigation.PAGES``) and the sidebar. After a login the rerun opens the page the URL asked for.
    """
    settings = settings_or_stop()
    st.set_page_config(
        page_title=user_text(settings, "TITLE"),
        page_icon=":camera:",
        layout="wide" if settings.LAYOUT_LANDSCAPE else "centered",
    )
    user = current_user(settings)
    if user is None:
        login = [st.Page(login_page, title=t("Log in"), icon=":material/login:", url_path="login", default=True)]
        login += [st.Page(login_page, title=t("Log in"), url_path=p.url_path) for p in PAGES]
        st.navigation(login, position="hidden").run()
        return
    if settings.APP_MODE == "central":  # the office's view: no camera, no capture engine
        specs = pages_for(user, "central")
        page = st.navigation([st.Page(p.script, title=t(p.title), icon=p.icon, url_path=p.url_path, default=i == 0)
                              for i, p in enumerate(specs)])
        central_sidebar(settings, user)
        page.run()
        return
    engine = engine_or_stop()
    page = st.navigation([st.Page(p.script, title=t(p.title), icon=p.icon, url_path=p.url_path, default=p.default)
                          for p in pages_for(user)])
    sidebar(engine, user)
    page.run()


def logout() -> None:
    """End the login: forget the user, and drop this session's media so that its image URLs stop working now."""
    if oidc_configured():
        st.logout()
    st.session_state.pop("auth_user", None)
    session_id = _session_id()
    if session_id is None:
        return
    SESSIONS.set(session_id, None)
    DOWNLOADS.forget_session(session_id)
    from streamlit import runtime

    if runtime.exists():
        rt = runtime.get_instance()
        rt.mark_session_nonresumable(session_id)  # a reconnect with this id gets a fresh, logged-out session
        rt.media_file_mgr.clear_session_refs(session_id)
        for _ in range(2):  # downloads are deleted on the second pass
            rt.media_file_mgr.remove_orphaned_files()
    logger.info("Session %s logged out", session_id[:8])


def require_role(role: Role) -> User:
    """Stop the page unless the session's user holds ``role`` (the navigation already hides such pages; this
    holds even if a page is reached another way)."""
    user = current_user(load_settings())
    if not has_role(user, role):
        st.error(t("This page is for administrators.") if role == "admin" else t("Log in first."))
        st.stop()
    return user  # type: ignore[return-value]


def require_admin() -> User:
    """Stop the page unless an admin is logged in (also when the page's URL is called directly)."""
    return require_role("admin")


def is_admin() -> bool:
    return has_role(current_user(load_settings()), "admin")


def admin_action(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an admin action (delete, re-filter) only if the session's user is an admin right now; else stop the
    run with an error."""
    if not is_admin():
        logger.warning("Admin action %s refused for a session without the admin role", getattr(action, "__name__", action))
        st.error(t("This action is for administrators."))
        st.stop()
    return action(*args, **kwargs)


SYNC_LATE_S = 60.0  # the sidebar warns when an image has waited this long for the archive


def sync_sidebar(syncer: Any) -> None:
    """The central archive's backlog: a caption while all goes, a warning when images wait or cannot be sent."""
    status = syncer.status()
    b = status.backlog
    late = b.oldest is not None and (utc_now() - b.oldest).total_seconds() > SYNC_LATE_S
    text = t("Archive: {summary}", summary=md(status.summary()))
    if b.failed or (status.problem and (late or not b.images)):
        st.warning(text, icon=":material/cloud_off:")
    elif late:
        st.info(text, icon=":material/cloud_upload:")
    else:
        st.caption(text)


def user_sidebar(user: User) -> None:
    """Who is logged in, and the logout button."""
    if user is not OPEN_ACCESS_USER:
        st.caption(t("Logged in as **{name}** ({role})", name=md(user.name), role=t(user.role)))
        st.button(t("Log out"), on_click=logout, key="logout")


def central_sidebar(settings: Settings, user: User) -> None:
    """The sidebar of the central view: the user, and which archive is shown."""
    with st.sidebar:
        user_sidebar(user)
        st.subheader(t("Central archive"))
        st.caption(t("Files: {url}", url=code(settings.STORAGE_URL)))
        st.caption(t("Every station's orders; no camera here (APP_MODE=central)."))


def sidebar(engine: Engine, user: User) -> None:
    """Camera, descriptor and engine status, the user and logout, on every page."""
    s = engine.settings
    with st.sidebar:
        user_sidebar(user)
        warning = disk_warning(s)
        if warning:
            st.warning(warning, icon=":material/hard_drive:")
        if engine.syncer is not None:
            sync_sidebar(engine.syncer)
        st.subheader(t("Camera"))
        st.caption(t("Source: **{kind}**", kind=s.camera_kind))
        st.caption(md(engine.camera.name))
        st.subheader(t("Descriptor"))
        if engine.descriptor is None:
            st.error(md(engine.descriptor_problem or t("No descriptor")))
        elif engine.descriptor.status.pretrained:
            st.caption(f"{engine.descriptor.status.name} — {engine.descriptor.status.reason}")
        else:  # one short line for the operator; the engineer's details (the log has them too) folded away
            st.warning(t("{name}: no pretrained weights, capture works with the fallback.",
                         name=engine.descriptor.status.name), icon="⚠️")
            with st.expander(t("Details for the engineer")):
                st.caption(md(engine.descriptor.status.reason))
                st.caption(t("Put the MobileNetV3 weights file in place (README: Running it on the shop floor, "
                             "Offline weights)."))
        st.subheader(t("Engine"))
        snap = engine.worker.snapshot()
        if snap.running and snap.order is not None:
            st.success(t("Running order **{number}** ({mode})", number=md(snap.order.order_number),
                         mode=t(snap.options.mode) if snap.options else ""))
        else:
            st.caption(t("Idle"))
        error = sidebar_error(snap)
        if error:
            st.error(md(error_text(error)))
        if engine.recovery.completed or engine.recovery.removed_rows or engine.recovery.removed_temp_files:
            st.caption(t("Recovered at start: {recovery}", recovery=engine.recovery))
        st.caption(t("Export folder: `{path}`", path=Path(s.EXPORT_DIR).resolve()))


def download_link(label: str, file_name: str, chunks: Callable[[], Iterator[bytes]], key: str) -> None:
    """A button that downloads a file the server streams (``utils.gate.DOWNLOADS``), never held in memory."""
    session_id = _session_id()
    if session_id is None:  # outside a browser session (no server to stream from)
        return
    url = DOWNLOADS.issue(session_id, file_name, chunks, key=key)
    st.link_button(label, url, icon=":material/download:")


def show_video(order: OrderRecord) -> None:
    """The order's video in a player (a browser-playable copy if needed), with frame count and rate."""
    if order.video_path is None or not order.video_path.exists():
        st.info(t("This order has no finished video yet.") if order.is_open else t("No video was recorded."))
        return
    try:
        with st.spinner(t("Preparing the video for the browser ...")):
            playable = browser_video(order.video_path)
            st.video(str(playable), format="video/webm" if playable.suffix == ".webm" else "video/mp4")
    except VideoError as err:
        st.error(md(err))
    st.caption(t("{name}: {frames} frames at {fps} frames/s", name=order.video_path.name,
                 frames=order.video_frames, fps=order.video_fps))
