"""HTTP API: image statistics (``POST /stats``) and read-only access to the captured orders and images.

Run it with ``python -m api`` (or ``api.main()``): it binds to ``API_HOST:API_PORT`` (default
``127.0.0.1:8000``) and **refuses to start** on a non-loopback address while no ``API_TOKEN`` is set,
unless ``API_ALLOW_REMOTE_WITHOUT_TOKEN=true``. OpenAPI docs: ``/docs`` (Swagger UI, loads its scripts from
a CDN), ``/redoc`` and ``/openapi.json``.

``uvicorn api:app --host 0.0.0.0`` also works but bypasses that start-up check, so the app enforces the
same rule itself on every request: without ``API_TOKEN`` (and without the allow setting) it answers only
clients on loopback and refuses everyone else with 403. A forwarded request (``X-Forwarded-For``) counts as
local only through a proxy listed in ``TRUSTED_PROXIES``: uvicorn itself believes that header from whatever
``FORWARDED_ALLOW_IPS`` lists (``*`` in many container images), so a remote client could otherwise claim to
be 127.0.0.1. ``python -m api`` passes ``TRUSTED_PROXIES`` to uvicorn and ignores ``FORWARDED_ALLOW_IPS``.

With ``API_TOKEN`` every endpoint except ``/health`` and the docs needs ``Authorization: Bearer <token>``
(compared in constant time).

Endpoints:

* ``POST /stats``: multipart with a file field ``content``, or JSON ``{"content": "<image URL>"}``. Answers
  ``{"exif_data": {...}, "color_data": {"avg_color": {"rgb", "hex", "method"}, "dominant_color": {"rgb",
  "hex"}}}`` like the original stats API (``color_data`` is null when no pixel is opaque). Bad input is a
  4xx with ``{"detail": "<what is wrong>"}``: 400 bad URL or unreachable (or JSON invalid or nested too deep),
  403 forbidden address, 413 too large (the upload, a JSON body above 64 KiB, or an image over the decoding limits
  of :mod:`utils.imaging`: pixels, bytes per pixel, aspect ratio), 415 wrong content type, 422 missing field or not
  a readable image; 503 when too many images or image URLs are being handled at once (try again).
* ``GET /orders``, ``/orders/{id}``, ``/orders/{id}/images``, ``/orders/{id}/video``, ``/images/{id}``
  (metadata with the statistics and EXIF), ``/images/{id}/file`` (the image file), ``GET /health``. Ids are
  1 to 2^63-1 (SQLite's integers); others answer 422, unknown ones 404.
* Capture control (:mod:`utils.api_control`): ``GET /orders/current``, ``POST /orders``, ``POST
  /orders/{id}/close``, ``POST /orders/current/save-image``; carried out by the engine in the dashboard's process.
  ``API_OPERATOR_TOKEN`` may use these and read orders and images; ``API_TOKEN`` may do everything.
* The image tools, web import and job status (:mod:`utils.api_tools`): ``POST /images/{id}/versions``,
  ``/images/{id}/background``, ``/images/{id}/style``, ``/images/{id}/labels``, ``GET /images/{id}/versions``,
  ``/images/{id}/labels``, ``POST /imports``, ``GET /jobs``.

The scheduled jobs (:mod:`utils.jobs`) also run in the API process while it holds the jobs lease.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import socket
import sys
import threading
from datetime import datetime
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from utils.api_control import control_router
from utils.api_tools import tools_router
from utils.asgi import BodyTooLarge, Network, client_address, declared_length, has_forwarding_headers, limit_receive, networks
from utils.config import ConfigError, Settings, load_settings
from utils.exports import safe_file
from utils.image_stats import ImageStatsError, ImageTooLargeError, compute_stats
from utils.imaging import DecodersBusy
from utils.archive.sync import ensure_syncer
from utils.events.dispatcher import ensure_event_dispatcher
from utils.jobs import ensure_scheduler
from utils.stats_store import stats_rows
from utils.storage import ImageRecord, OrderRecord, StorageError, Store, store_for
from utils.url_fetch import URLFetchError, fetch_image

logger = logging.getLogger("api")

# answered without a token: liveness, and the API's description (no data; the schema is public in this repo)
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the image itself
MAX_JSON_BYTES = 64 * 1024  # a JSON body holds one URL; parsed on the event loop, so kept small
DECODE_WAIT = 10.0  # seconds a request waits for a decode slot (utils.imaging) before answering 503
MAX_ID = 2**63 - 1  # SQLite's largest integer: larger ids cannot exist (and would overflow the query)
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="order id (1 to 2^63-1)")]
ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="image id (1 to 2^63-1)")]
_MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp",
                ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff", ".mp4": "video/mp4"}


# ----------------------------------------------------------------- who may connect


def token_of(settings: Settings, name: str = "API_TOKEN") -> str | None:
    """The configured token ``name`` (API_TOKEN or API_OPERATOR_TOKEN), None when unset or blank."""
    value = getattr(settings, name)
    if value is None:
        return None
    token = value.get_secret_value().strip()
    return token or None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or a name) means this machine only (every address it resolves to is loopback)."""
    host = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def bind_problem(settings: Settings) -> str | None:
    """Why the API must not start with these settings, or None."""
    if token_of(settings) or settings.API_ALLOW_REMOTE_WITHOUT_TOKEN or is_loopback_host(settings.API_HOST):
        return None
    return (
        f"Refusing to serve the API on {settings.API_HOST}:{settings.API_PORT} without a token: anyone who can reach "
        "that address could read every captured image. Set API_TOKEN (clients send 'Authorization: Bearer <token>'), "
        "or bind to 127.0.0.1 (API_HOST), or set API_ALLOW_REMOTE_WITHOUT_TOKEN=true on a trusted network."
    )


def _client_is_local(scope: dict[str, Any], trusted: list[Network]) -> bool:
    """Whether the real client is on this machine. A forwarded request counts only through a proxy listed in
    TRUSTED_PROXIES: uvicorn may have replaced the peer by an address the client wrote (FORWARDED_ALLOW_IPS)."""
    if scope.get("client") is None and not has_forwarding_headers(scope):
        return True  # a Unix socket: only reachable on this machine
    if has_forwarding_headers(scope) and not trusted:
        return False
    address = client_address(scope, trusted, keep_loopback=True)
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class LoopbackOnly:
    """ASGI middleware: without API_TOKEN, refuse (403) every client that is not on loopback."""

    def __init__(self, app: Any, trusted_proxies: list[str] | None = None) -> None:
        self.app = app
        self.trusted = networks(trusted_proxies or [])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not _client_is_local(scope, self.trusted):
            response = JSONResponse(
                {"detail": "This API has no API_TOKEN set and therefore answers only clients on this machine "
                           "(loopback). Set API_TOKEN, or API_ALLOW_REMOTE_WITHOUT_TOKEN=true on a trusted network."},
                status_code=403,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: 413 for request bodies above ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        await self.app(scope, limit_receive(receive, self.limit), send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request too large: the image may have at most {limit - _MULTIPART_OVERHEAD:,} "
                                   "bytes (UPLOAD_MAX_BYTES)"}, status_code=413)


# ----------------------------------------------------------------- response models


class AvgColor(BaseModel):
    rgb: list[float] = Field(description="red, green, blue in 0..1")
    hex: str = Field(examples=["#7f7f80"])
    method: Literal["arithmetic", "geometric", "harmonic"]


class DominantColor(BaseModel):
    rgb: list[float] = Field(description="red, green, blue in 0..1")
    hex: str


class ColorData(BaseModel):
    avg_color: AvgColor
    dominant_color: DominantColor


class StatsResponse(BaseModel):
    exif_data: dict[str, Any] = Field(description="Standard EXIF tags by name (JSON-safe); GPSPosition when valid")
    color_data: ColorData | None = Field(description="null when the image has no opaque pixel")


class OrderOut(BaseModel):
    id: int
    order_number: str
    folder: str
    mode: str
    status: str
    started_at: datetime
    closed_at: datetime | None
    n_images: int
    threshold: float | None
    images_per_second: float | None
    resolution: int | None
    camera: str | None
    descriptor: str | None
    video_file: str | None
    video_url: str | None
    kind: str = Field("capture", description="capture (an order) or import (a collection from web pages)")
    keep: bool = Field(False, description="never removed by retention")


class ImageOut(BaseModel):
    id: int
    order_id: int
    seq: int
    file_name: str
    state: str
    captured_at: datetime
    width: int | None
    height: int | None
    size_bytes: int | None
    distance: float | None
    forced: bool
    camera: str | None
    file_url: str
    stats: dict[str, Any] | None = Field(None, description="statistics (null until computed), with 'exif'")
    kind: str = Field("capture", description="capture, import, or version (made by an image tool)")
    source_image_id: int | None = Field(None, description="for a version: the image it was made from")
    operation: dict[str, Any] | None = Field(None, description="for a version: the operation and its parameters")
    tool: str | None = Field(None, description="for a version: the libraries or model that ran")
    source_url: str | None = Field(None, description="for an import: where the image came from")


def _order_out(o: OrderRecord) -> OrderOut:
    return OrderOut(
        id=o.id, order_number=o.order_number, folder=o.folder.name, mode=o.mode, status=o.status,
        started_at=o.started_at, closed_at=o.closed_at, n_images=o.n_images, threshold=o.threshold,
        images_per_second=o.images_per_second, resolution=o.resolution, camera=o.camera, descriptor=o.descriptor,
        video_file=o.video_file, video_url=f"/orders/{o.id}/video" if o.video_file else None, kind=o.kind,
        keep=o.keep,
    )


def _image_out(rec: ImageRecord, stats: dict[str, Any] | None) -> ImageOut:
    return ImageOut(
        id=rec.id, order_id=rec.order_id, seq=rec.seq, file_name=rec.file_name, state=rec.state,
        captured_at=rec.captured_at, width=rec.width, height=rec.height, size_bytes=rec.size_bytes,
        distance=rec.distance, forced=rec.forced, camera=rec.camera, file_url=f"/images/{rec.id}/file", stats=stats,
        kind=rec.kind, source_image_id=rec.source_image_id, operation=rec.operation, tool=rec.tool,
        source_url=rec.source_url,
    )


_STATS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["content"],
                           "properties": {"content": {"type": "string", "format": "binary",
                                                      "description": "the image file"}}}
            },
            "application/json": {
                "schema": {"type": "object", "required": ["content"],
                           "properties": {"content": {"type": "string", "format": "uri",
                                                      "description": "http(s) URL of the image"}}}
            },
        },
    }
}


# ----------------------------------------------------------------- the app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app for ``settings`` (default: read from the environment)."""
    settings = settings or load_settings()
    token = token_of(settings)
    limit = settings.UPLOAD_MAX_BYTES
    store_lock = threading.Lock()
    state: dict[str, Store] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The scheduled jobs run in the API process too (the lease picks one process); stopped at shutdown."""
        scheduler = ensure_scheduler(store(), settings) if settings.JOBS_ENABLED and settings.APP_MODE == "station" \
            else None
        syncer = ensure_syncer(store(), settings)  # images this process keeps (versions, imports) reach the archive
        events = ensure_event_dispatcher(store(), settings)  # webhooks and MQTT, in one process of the station
        try:
            yield
        finally:
            if events is not None:
                await anyio.to_thread.run_sync(events.stop)
            if scheduler is not None:
                await anyio.to_thread.run_sync(scheduler.stop)
            if syncer is not None:
                await anyio.to_thread.run_sync(syncer.stop)

    app = FastAPI(
        title="Extract unique images — API",
        version="1.1",
        description="Image statistics (POST /stats), the captured orders and images, the image tools (versions, "
                    "background removal, style, labels), web imports and the scheduled jobs.",
        lifespan=lifespan,
    )

    def store() -> Store:
        with store_lock:
            if "store" not in state:
                state["store"] = store_for(settings)
            return state["store"]

    bearer = HTTPBearer(auto_error=False, description="API_TOKEN, or API_OPERATOR_TOKEN for the operator's routes "
                                                     "(only when configured)")
    operator_token = token_of(settings, "API_OPERATOR_TOKEN")

    def caller_role(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
        """admin (API_TOKEN, or no token configured: loopback clients only) or operator (API_OPERATOR_TOKEN)."""
        if token is None:
            role = "admin"
        else:
            given = credentials.credentials.encode("utf-8") if credentials is not None else b""
            if hmac.compare_digest(given, token.encode("utf-8")):
                role = "admin"
            elif operator_token is not None and hmac.compare_digest(given, operator_token.encode("utf-8")):
                role = "operator"
            else:
                raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer <API_TOKEN>'",
                                    headers={"WWW-Authenticate": "Bearer"})
        request.state.role = role
        return role

    def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if caller_role(request, credentials) != "admin":
            raise HTTPException(403, "the operator's token (API_OPERATOR_TOKEN) may run orders and read orders and "
                                     "images; this needs the administrator's API_TOKEN")

    def require_operator(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        caller_role(request, credentials)

    auth = [Depends(require_token)]
    operator = [Depends(require_operator)]  # the operator's token, or the administrator's
    # first: /orders/current is not an order id
    app.include_router(control_router(settings, store, operator, _order_out))

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _too_large(limit + _MULTIPART_OVERHEAD)

    @app.exception_handler(StorageError)
    async def _storage_unavailable(request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse({"detail": f"the image store is unavailable: {exc}"}, status_code=503)

    health_limiter = anyio.CapacityLimiter(1)  # its own thread: never waits behind busy request threads

    @app.get("/health", tags=["service"], responses={503: {"description": "the store cannot be used; detail says why"}})
    async def health() -> Any:
        """``{"status": "ok"}``, or 503 with the reason when the database cannot take a write."""

        def problem() -> str | None:
            try:
                return store().health_problem()
            except StorageError as err:
                return str(err)

        found = await anyio.to_thread.run_sync(problem, limiter=health_limiter)
        if found:
            return JSONResponse({"status": "error", "detail": found}, status_code=503)
        return {"status": "ok"}

    @app.post("/stats", response_model=StatsResponse, tags=["statistics"], dependencies=auth,
              openapi_extra=_STATS_BODY,
              responses={400: {"description": "bad or unreachable URL"}, 403: {"description": "address refused"},
                         413: {"description": "too large (upload, or image over the decoding limits)"},
                         415: {"description": "wrong content type"},
                         422: {"description": "no 'content', or not a readable image"},
                         503: {"description": "too many images or image URLs at once: try again"}})
    async def stats(request: Request) -> dict[str, Any]:
        """EXIF and colour statistics of one image: upload it as multipart field ``content`` or send
        JSON ``{"content": "<http(s) URL>"}``. The average colour uses ``AVERAGING_METHOD``."""
        data, url = await _read_content(request)
        if url is not None:
            try:
                fetched = await run_in_threadpool(
                    fetch_image, url, timeout=settings.URL_FETCH_TIMEOUT, max_bytes=limit,
                    allow_private=settings.URL_ALLOW_PRIVATE,
                )
            except URLFetchError as err:
                raise HTTPException(err.status, f"cannot use the URL: {err}") from None
            data = fetched.data
        try:
            result = await run_in_threadpool(compute_stats, data, settings.AVERAGING_METHOD, slot_wait=DECODE_WAIT)
        except ImageTooLargeError as err:
            raise HTTPException(413, f"{err}; send a smaller image") from None
        except ImageStatsError as err:
            raise HTTPException(422, f"not a readable image: {err}") from None
        except DecodersBusy as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "5"}) from None
        return {"exif_data": result.exif, "color_data": result.color_data()}

    async def _read_content(request: Request) -> tuple[bytes | None, str | None]:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=10)
            content = form.get("content")
            if content is None:
                raise HTTPException(422, "no field 'content': send the image as multipart file field 'content'")
            if isinstance(content, str):  # a URL typed into a form field, like the original API accepted
                return None, content
            assert isinstance(content, UploadFile)
            data = await content.read(limit + 1)
            await content.close()
            if len(data) > limit:
                raise HTTPException(413, f"the image is too large (more than {limit:,} bytes, UPLOAD_MAX_BYTES)")
            return data, None
        if ctype == "application/json" or ctype.endswith("+json"):
            body = _parse_json(await request.body())
            if not isinstance(body, dict) or "content" not in body:
                raise HTTPException(422, 'JSON needs a field "content" with the image URL: {"content": "https://..."}')
            if not isinstance(body["content"], str) or not body["content"].strip():
                raise HTTPException(422, '"content" must be the image URL as a non-empty string')
            return None, body["content"]
        raise HTTPException(
            415, f"unsupported Content-Type {ctype or '(none)'}: send multipart/form-data with a file field "
                 "'content', or application/json {\"content\": \"<image URL>\"}"
        )

    @app.get("/orders", response_model=list[OrderOut], tags=["orders"], dependencies=operator)
    def list_orders(
        status: Literal["open", "closed"] | None = Query(None, description="only open or closed orders"),
        order_number: str | None = Query(None, description="only orders with this number"),
        limit: int = Query(100, ge=1, le=10_000),
        offset: int = Query(0, ge=0),
    ) -> list[OrderOut]:
        """Orders, newest first."""
        orders = store().list_orders(status)
        if order_number is not None:
            orders = [o for o in orders if o.order_number == order_number]
        return [_order_out(o) for o in orders[offset: offset + limit]]

    def _get_order(order_id: int) -> OrderRecord:
        try:
            return store().get_order(order_id)
        except KeyError:
            raise HTTPException(404, f"no order with id {order_id}") from None

    def _get_image(image_id: int) -> ImageRecord:
        try:
            return store().get_image(image_id)
        except KeyError:
            raise HTTPException(404, f"no image with id {image_id}") from None

    @app.get("/orders/{order_id}", response_model=OrderOut, tags=["orders"], dependencies=operator)
    def get_order(order_id: OrderId) -> OrderOut:
        return _order_out(_get_order(order_id))

    @app.get("/orders/{order_id}/images", response_model=list[ImageOut], tags=["orders"], dependencies=operator)
    def order_images(order_id: OrderId, with_stats: bool = Query(True, description="include statistics and EXIF")) -> list[ImageOut]:
        """The kept images of an order in capture order."""
        _get_order(order_id)
        images = store().images(order_id)
        rows = stats_rows(store(), [r.id for r in images]) if with_stats else {}
        return [_image_out(r, rows.get(r.id)) for r in images]

    @app.get("/orders/{order_id}/video", tags=["orders"], dependencies=operator,
             responses={200: {"content": {"video/mp4": {}}}})
    def order_video(order_id: OrderId) -> FileResponse:
        order = _get_order(order_id)
        path = order.video_path
        if path is None or not safe_file(store(), path):
            raise HTTPException(404, f"order {order_id} has no video file")
        return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                            filename=path.name)

    @app.get("/images/{image_id}", response_model=ImageOut, tags=["images"], dependencies=operator)
    def get_image(image_id: ImageId) -> ImageOut:
        """One image's metadata, with its statistics and EXIF once computed."""
        rec = _get_image(image_id)
        return _image_out(rec, stats_rows(store(), [rec.id]).get(rec.id))

    @app.get("/images/{image_id}/file", tags=["images"], dependencies=operator,
             responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
    def image_file(image_id: ImageId) -> FileResponse:
        """The image file as stored."""
        rec = _get_image(image_id)
        if rec.state == "pending" or not safe_file(store(), rec.path):
            raise HTTPException(404, f"the file of image {image_id} is not there")
        return FileResponse(rec.path, media_type=_MEDIA_TYPES.get(rec.path.suffix.lower(), "application/octet-stream"),
                            filename=rec.file_name)

    app.include_router(tools_router(settings, store, auth, lambda rec: _image_out(rec, None), ImageOut))
    if settings.archive_configured:  # a station with the archive, or the office's central API
        from utils.api_archive import archive_router
        from utils.archive.view import open_archive

        app.include_router(archive_router(lambda: open_archive(settings), auth))
    if settings.APP_MODE == "central":  # the office's API: the archive, not a station's own (empty) orders
        @app.middleware("http")
        async def _central_only(request: Request, call_next: Any) -> Any:
            path = request.url.path
            if path.startswith(("/orders", "/images", "/imports", "/jobs")):
                return JSONResponse({"detail": "this is the central archive's API (APP_MODE=central): use "
                                               "/archive/orders, /archive/images/{id} ..."}, status_code=404)
            return await call_next(request)

    app.add_middleware(BodyLimit, limit=limit + _MULTIPART_OVERHEAD)
    if token is None and not settings.API_ALLOW_REMOTE_WITHOUT_TOKEN:
        app.add_middleware(LoopbackOnly, trusted_proxies=settings.TRUSTED_PROXIES)  # added last: runs first
        logger.warning("API without API_TOKEN: answering clients on this machine (loopback) only")
    return app


def _parse_json(raw: bytes) -> Any:
    """The JSON body of ``POST /stats``; 413 above :data:`MAX_JSON_BYTES`, 400 when invalid or nested too deep."""
    if len(raw) > MAX_JSON_BYTES:
        raise HTTPException(413, f"JSON body too large ({len(raw):,} bytes, at most {MAX_JSON_BYTES:,}): "
                                 'send only {"content": "<image URL>"}')
    try:
        return json.loads(raw)
    except RecursionError:  # the C parser recurses per nesting level and stops cleanly at the limit
        raise HTTPException(400, 'the JSON body is nested too deeply; send {"content": "<image URL>"}') from None
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, 'the body is not valid JSON; send {"content": "<image URL>"}') from None


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``api.app`` (for ``uvicorn api:app``) is built on first access, from the environment."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)


def main() -> int:
    """``python -m api``: check the settings and the bind address, then serve with uvicorn."""
    try:
        settings = load_settings()
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    problem = bind_problem(settings)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    import uvicorn

    from utils.logs import setup_logging

    setup_logging(settings.LOGGING_LEVEL, settings.LOGFILE)
    logger.info("API: %s", "bearer token required" if token_of(settings) else "no token: loopback clients only")
    # X-Forwarded-For is believed from TRUSTED_PROXIES only, whatever FORWARDED_ALLOW_IPS says
    trusted = settings.TRUSTED_PROXIES
    uvicorn.run(create_app(settings), host=settings.API_HOST, port=settings.API_PORT,
                log_level=settings.LOGGING_LEVEL.lower(), proxy_headers=bool(trusted),
                forwarded_allow_ips=",".join(trusted) if trusted else "", server_header=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
