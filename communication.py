"""Camera sources: one small interface, four implementations.

Every source has ``grab() -> Frame`` (encoded bytes as the camera sent them, or a decoded
image, plus the capture time) and ``close()``; a failure raises :class:`CameraError`
whose message says what went wrong and what to do.

Implementations (below the interface):

- :class:`BaslerAdapterCamera`: a Basler camera behind the BaslerCameraAdapter REST server.
- :class:`SnapshotCamera`: any HTTP URL answering one JPEG/PNG per GET.
- :class:`FolderCamera`: the images of a folder, round and round (demo, tests).
- :class:`OpenCVCamera`: webcam, RTSP/HTTP stream or video file through OpenCV.

:func:`make_camera` picks one from the settings; :func:`sniff_image_type` tells an image
type from its first bytes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from DataModels_BaslerCameraAdapter import TakePhotoParams

if TYPE_CHECKING:  # pragma: no cover
    from utils.config import Settings

ErrorKind = Literal[
    "auth",  # 401: token missing or wrong
    "bad_parameter",  # 422: a query parameter out of the adapter's bounds
    "no_image",  # 400 "No image retrieved.": grab timeout
    "server",  # 5xx (or an unexpected 4xx)
    "connection",  # refused, reset, DNS
    "timeout",  # no answer in time
    "not_image",  # answer is not an image
    "config",  # the source is configured wrongly (missing folder, ...)
    "device",  # OpenCV device/stream failed
]


class CameraError(Exception):
    """A camera request failed. ``str(err)`` says what went wrong and what to do."""

    def __init__(self, message: str, kind: ErrorKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.status = status


def utc_now() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Frame:
    """One frame: ``data`` (encoded bytes) and/or ``image`` (decoded, RGB HxWx3 or mono HxW uint8)."""

    timestamp: datetime = field(default_factory=utc_now)
    data: bytes | None = None
    image: np.ndarray | None = None
    content_type: str | None = None
    source: str = ""
    still: bool = False  # a still from a folder: a scene held still (settled at once), not a moment of a stream


@runtime_checkable
class CameraSource(Protocol):
    """What the worker needs of a camera."""

    name: str  # human-readable, for the UI and logs (no secrets)

    def grab(self) -> Frame:
        """Take one frame now, or raise CameraError."""

    def close(self) -> None:
        """Release connections and devices; grab() may reopen them."""


# ---------------------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------------------

#: File extensions (lower case) that :class:`FolderCamera` serves.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Content type of each image type :func:`sniff_image_type` knows.
IMAGE_MIME_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "tiff": "image/tiff",
}

_EXTENSION_TYPES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp", ".webp": "webp",
                    ".tif": "tiff", ".tiff": "tiff"}  # fmt: skip


def sniff_image_type(data: bytes) -> str | None:
    """The image type of encoded bytes from their magic number: "jpeg", "png", "bmp", "webp", "tiff" or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM" and len(data) >= 26:  # BITMAPFILEHEADER + the start of the info header
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _display_url(url: str) -> str:
    """``url`` without user:password and without query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _with_scheme(address: str) -> str:
    address = address.strip()
    return address if "://" in address else f"http://{address}"


def _connection_reason(err: BaseException) -> str:
    """A short human reason for a requests connection failure."""
    text = str(err)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "reset" in lowered or "aborted" in lowered or "remotedisconnected" in lowered or "closed" in lowered:
        return "connection reset or closed by the server"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "unknown host name"
    if "no route to host" in lowered or "unreachable" in lowered:
        return "host unreachable"
    return text if len(text) <= 200 else text[:200] + "..."


def _validation_detail(detail: Any) -> str:
    """FastAPI/pydantic 422 ``detail`` as "param: message (sent value); ..."."""
    if not isinstance(detail, list):
        return str(detail)
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            parts.append(str(item))
            continue
        loc = [str(p) for p in item.get("loc", [])]
        if loc and loc[0] in ("query", "body", "path", "header", "cookie"):
            loc = loc[1:]
        text = f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid value')}"
        given = item.get("input")
        if given is not None and not isinstance(given, (dict, list)):
            text += f" (sent {given})"
        parts.append(text)
    return "; ".join(parts) or "no details given"


class _Closable:
    """Context-manager support for sources: ``with make_camera(s) as cam: ...``."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HttpCamera(_Closable):
    """Base of the HTTP sources: one pooled connection, one request at a time, errors mapped to CameraError.

    A server error (5xx, unexpected 4xx) or a dropped/refused connection closes the
    connection and is retried once on a fresh one; everything else is raised at once.
    Subclasses set the labels used in messages and may add query parameters.
    """

    _label = "HTTP camera"  # first word(s) of ``name``
    _who = "camera"  # who answers, in messages
    _address_var = "CAMERA_SNAPSHOT_URL"  # the setting holding the address
    _params_hint = "fix the query parameters in CAMERA_SNAPSHOT_URL"
    _server_hint = "check the camera and its log"

    def __init__(self, url: str, token: str | None = None, timeout: float = 5.0) -> None:
        self._url = _with_scheme(url)
        self._token = token or None
        self._timeout = float(timeout)
        self._lock = threading.Lock()
        self._session = self._new_session()

    @property
    def name(self) -> str:
        """Label and address for the UI and logs (never the token or a query string)."""
        return f"{self._label} {_display_url(self._url)}"

    @property
    def url(self) -> str:
        """The URL requested on every grab (without the query parameters added per request)."""
        return self._url

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # reach the camera directly: no proxy or .netrc from the environment
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, pool_block=True)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if self._token:
            session.headers["Authorization"] = f"Bearer {self._token}"
        return session

    def _query(self) -> dict[str, Any] | None:
        """Query parameters added to every request (none for a plain snapshot URL)."""
        return None

    def _grab_context(self) -> str:
        """Extra facts for the no-image message (e.g. the adapter's timeout and exposure)."""
        return ""

    def grab(self) -> Frame:
        """Request one image; retry once on a fresh connection after a server or connection failure."""
        with self._lock:
            return self._retrying(self._query())

    def _retrying(self, params: dict[str, Any] | None) -> Frame:
        """One image with these query parameters, retried once on a fresh connection (the caller holds the lock)."""
        try:
            return self._request(params)
        except CameraError as first:
            if first.kind not in ("server", "connection"):
                raise
            self._drop_connections()
        try:
            return self._request(params)
        except CameraError as err:
            if err.kind in ("server", "connection", "timeout"):
                self._drop_connections()
            raise CameraError(
                f"{err} (failed again after reconnecting and retrying once)", err.kind, err.status
            ) from err

    def close(self) -> None:
        """Close the pooled connection; a later grab() opens a new one."""
        self._session.close()

    def _drop_connections(self) -> None:
        self._session.close()  # the adapter stays usable: the next request opens a new connection

    def _request(self, params: dict[str, Any] | None) -> Frame:
        response = self._send(self._url, params)
        arrived = utc_now()
        if response.status_code == 200:
            return self._frame(response, arrived)
        raise self._error(response)

    def _send(self, url: str, params: dict[str, Any] | None) -> requests.Response:
        """GET ``url`` on the pooled connection; CameraError "timeout" or "connection" when no answer comes."""
        try:
            return self._session.get(url, params=params, timeout=self._timeout)
        except requests.Timeout:
            self._drop_connections()  # a late answer must not be read as the next frame's
            raise CameraError(
                f"{self.name}: no answer within CAMERA_TIMEOUT={self._timeout:g} s; "
                f"check that the {self._who} is reachable and not overloaded, or raise CAMERA_TIMEOUT",
                "timeout",
            ) from None
        except requests.RequestException as err:  # refused, reset, DNS, broken answer
            raise CameraError(
                f"{self.name}: cannot reach the {self._who} ({_connection_reason(err)}); "
                f"check that it runs and that {self._address_var} is right",
                "connection",
            ) from None

    def _frame(self, response: requests.Response, arrived: datetime) -> Frame:
        data = response.content
        image_type = sniff_image_type(data)
        header = response.headers.get("Content-Type")
        if image_type is None:
            raise CameraError(
                f"{self.name}: the answer is not an image (content type {header or 'missing'}, "
                f"{len(data)} bytes, starting {data[:16]!r}); check that {self._address_var} points "
                f"at the {self._who}'s image endpoint",
                "not_image",
                response.status_code,
            )
        content_type = header if header and header.lower().startswith("image/") else IMAGE_MIME_TYPES[image_type]
        return Frame(timestamp=arrived, data=data, content_type=content_type, source=self.name)

    def _error(self, response: requests.Response) -> CameraError:
        status = response.status_code
        try:
            detail: Any = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        said = detail if isinstance(detail, str) else (response.text.strip()[:200] or response.reason)
        if status in (401, 403):
            if self._token is None:
                message = f"{self._who} requires a token: set CAMERA_TOKEN"
            else:
                message = f"{self._who} refused the token: check CAMERA_TOKEN"
            return CameraError(f"{self.name}: {message} (HTTP {status}: {said})", "auth", status)
        if status == 422:
            return CameraError(
                f"{self.name}: the {self._who} refused the parameters: {_validation_detail(detail)}; "
                f"{self._params_hint}",
                "bad_parameter",
                status,
            )
        if status == 400 and isinstance(detail, str) and "no image retrieved" in detail.lower():
            context = self._grab_context()
            return CameraError(
                f"{self.name}: the camera delivered no image in time ({self._who} said {detail!r}"
                f"{'; ' + context if context else ''}); "
                "check that the exposure time is well below timeout_ms, that the camera is not waiting "
                "for a hardware trigger, and its cabling and network",
                "no_image",
                status,
            )
        if status == 404:
            hint = f"check {self._address_var}: it should be the {self._who}'s base address"
        elif status < 500:
            hint = f"check {self._address_var} and the {self._who}'s settings"
        else:
            hint = self._server_hint
        said = "" if said == response.reason else f" ({said})"
        return CameraError(f"{self.name}: HTTP {status} {response.reason}{said}; {hint}", "server", status)


class BaslerAdapterCamera(HttpCamera):
    """A Basler camera behind the BaslerCameraAdapter: ``GET {address}/basler/take-photo?{params}``.

    ``params.query(timeout)`` is sent on every request, so the adapter's grab timeout
    stays below the client's and a slow camera answers 400 "No image retrieved." instead
    of a client timeout.
    """

    ENDPOINT = "/basler/take-photo"
    _label = "Basler adapter"
    _who = "camera adapter"
    _address_var = "CAMERA_ADDRESS"
    _params_hint = "fix CAMERA_PARAMS (or the parameters saved on the Camera settings page)"
    _server_hint = (
        "the adapter answers 500 for an unknown serial_number, an unsupported format or pixel_format: "
        "check CAMERA_PARAMS and the adapter's log"
    )

    def __init__(
        self,
        address: str,
        params: TakePhotoParams | None = None,
        token: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        base = _with_scheme(address).rstrip("/")
        if base.endswith(self.ENDPOINT):
            base = base[: -len(self.ENDPOINT)]
        self._base = base
        self.params = params if params is not None else TakePhotoParams()
        super().__init__(base + self.ENDPOINT, token, timeout)
        self._params = self.params.query(self._timeout)

    @property
    def name(self) -> str:
        return f"{self._label} {_display_url(self._base)}"

    def _query(self) -> dict[str, Any]:
        return self._params

    @property
    def base(self) -> str:
        """The adapter's base address (no endpoint; user and password removed only in :attr:`name`)."""
        return self._base

    def set_params(self, params: TakePhotoParams) -> None:
        """Use these parameters from the next grab on (waits for a grab under way; never changes one midway)."""
        query = params.query(self._timeout)
        with self._lock:
            self.params, self._params = params, query

    def grab_with(self, params: TakePhotoParams) -> Frame:
        """One image with other parameters (a test shot), in turn with the other requests on this connection (the
        adapter takes one request at a time); the camera's own parameters stay as they are."""
        query = params.query(self._timeout)
        with self._lock:
            return self._retrying(query)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """``GET {address}{path}`` (e.g. ``/health``, ``/basler/get-camera-info``) in turn with the grabs: the
        answer's JSON, or CameraError saying what went wrong (no retry)."""
        with self._lock:
            response = self._send(self._base + path, params)
            if response.status_code >= 500:
                self._drop_connections()  # the adapter drops the connection after a 500
            if response.status_code != 200:
                raise self._error(response)
        try:
            return response.json()
        except ValueError:
            raise CameraError(
                f"{self.name}: {path} answered no JSON (content type "
                f"{response.headers.get('Content-Type') or 'missing'}, starting {response.content[:40]!r}); "
                f"check that {self._address_var} points at the camera adapter",
                "server", response.status_code,
            ) from None

    def _grab_context(self) -> str:
        timeout_ms = self._params.get("timeout_ms", 5000)
        exposure = self._params.get("exposure_time_microseconds", 1000)
        return f"timeout_ms={timeout_ms}, exposure_time_microseconds={exposure}"


class SnapshotCamera(HttpCamera):
    """A generic IP camera whose URL answers one JPEG/PNG per GET."""

    _label = "Snapshot camera"


class FolderCamera(_Closable):
    """A demo camera serving the images of a folder in file-name order, round and round.

    The file list is read on construction and again after :meth:`close`.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._files: list[Path] | None = self._scan()
        self._index = 0

    @property
    def name(self) -> str:
        return f"Folder {self.folder}"

    @property
    def files(self) -> list[Path]:
        """The images served, in order (reads the folder if it was closed)."""
        with self._lock:
            if self._files is None:
                self._files, self._index = self._scan(), 0
            return list(self._files)

    def _scan(self) -> list[Path]:
        accepted = " ".join(IMAGE_EXTENSIONS)
        if not self.folder.is_dir():
            raise CameraError(
                f"{self.name}: the folder {self.folder} does not exist; set TEST_DATA_FOLDER to a folder "
                f"of images ({accepted}, any case)",
                "config",
            )
        files = sorted(
            (p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
            key=lambda p: p.name,
        )
        if not files:
            raise CameraError(
                f"{self.name}: the folder {self.folder} holds no images; put image files there "
                f"({accepted}, any case) or set TEST_DATA_FOLDER to another folder",
                "config",
            )
        return files

    def grab(self) -> Frame:
        """The next image's bytes (after the last one comes the first again)."""
        with self._lock:
            if self._files is None:
                self._files, self._index = self._scan(), 0
            path = self._files[self._index]
            self._index = (self._index + 1) % len(self._files)
            try:
                data = path.read_bytes()
            except OSError as err:
                self._files = None  # the folder changed: read it again on the next grab
                raise CameraError(
                    f"{self.name}: cannot read {path.name} ({err.strerror or err}); the folder is read "
                    "again on the next grab",
                    "config",
                ) from None
        image_type = sniff_image_type(data) or _EXTENSION_TYPES[path.suffix.lower()]
        return Frame(data=data, content_type=IMAGE_MIME_TYPES[image_type], source=self.name, still=True)

    def close(self) -> None:
        """Forget the file list; the next grab reads the folder again and starts at the first image."""
        with self._lock:
            self._files = None
            self._index = 0


class OpenCVCamera(_Closable):
    """A webcam (index such as "0"), an RTSP/HTTP stream or a video file through ``cv2.VideoCapture``.

    The device is opened on the first grab. After a failed read it is released and opened
    again on the next grab; a video file starts again from its beginning when it ends.
    """

    def __init__(self, device: str | int, timeout: float = 5.0) -> None:
        text = str(device).strip()
        self.device: int | str = int(text) if text.isdigit() else text
        self._timeout = float(timeout)
        self._is_file = isinstance(self.device, str) and "://" not in self.device and "!" not in self.device
        self._lock = threading.Lock()
        self._capture: Any = None

    @property
    def name(self) -> str:
        if isinstance(self.device, int):
            return f"OpenCV webcam {self.device}"
        return f"OpenCV {_display_url(self.device) if '://' in self.device else self.device}"

    def _open(self) -> Any:
        import cv2  # imported here: only this source needs OpenCV

        hint = "check CAMERA_DEVICE (a webcam index like 0, an rtsp:// or http:// URL, or a video file)"
        if self._is_file and not Path(self.device).exists():  # type: ignore[arg-type]
            raise CameraError(f"{self.name}: the video file {self.device} does not exist; {hint}", "device")
        timeout_ms = int(self._timeout * 1000)
        capture = cv2.VideoCapture(
            self.device, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        )
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"{self.name}: cannot open the device or stream; {hint}", "device")
        return capture

    def _read(self) -> Any:
        ok, image = self._capture.read()
        return image if ok and image is not None else None

    def grab(self) -> Frame:
        """Read the next frame as an RGB (or mono) array."""
        with self._lock:
            if self._capture is None:
                self._capture = self._open()
            image = self._read()
            if image is None and self._is_file:  # end of the video: start again
                self._release()
                self._capture = self._open()
                image = self._read()
            if image is None:
                self._release()
                raise CameraError(
                    f"{self.name}: reading a frame failed (device unplugged, stream ended or busy); "
                    "it is opened again on the next grab",
                    "device",
                )
        return Frame(image=_to_rgb(image), source=self.name)

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def close(self) -> None:
        """Release the device; the next grab opens it again."""
        with self._lock:
            self._release()


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/BGRA/mono array as RGB (HxWx3) or mono (HxW) uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, 2::-1])
    return np.ascontiguousarray(image[:, :, ::-1])


class MemoryCamera(_Closable):
    """Serves encoded frames from memory, round and round (benchmarks and soak runs)."""

    def __init__(self, frames: list[bytes], name: str = "memory") -> None:
        if not frames:
            raise CameraError("MemoryCamera needs at least one frame", "config")
        self._frames = list(frames)
        self._index = 0
        self._lock = threading.Lock()
        self.name = name

    def grab(self) -> Frame:
        with self._lock:
            data = self._frames[self._index % len(self._frames)]
            self._index += 1
        return Frame(data=data, content_type="image/jpeg", source=self.name)

    def close(self) -> None:
        """Nothing to release."""


def make_camera(settings: "Settings", params: TakePhotoParams | None = None) -> CameraSource:
    """The camera source chosen by ``settings.camera_kind``; CameraError kind "config" if its address is not set.

    ``params``: the adapter's parameters instead of ``CAMERA_PARAMS`` (those saved on the Camera settings page,
    :func:`utils.camera_params.effective_params`)."""
    kind = settings.camera_kind

    def need(variable: str, example: str) -> str:
        value = getattr(settings, variable)
        if not value:
            raise CameraError(
                f"the camera source '{kind}' needs {variable}: set it, e.g. {variable}={example}", "config"
            )
        return str(value)

    if kind == "basler":
        address = need("CAMERA_ADDRESS", "http://camera:5050")
        chosen = params if params is not None else settings.CAMERA_PARAMS
        return BaslerAdapterCamera(address, chosen, settings.CAMERA_TOKEN, settings.CAMERA_TIMEOUT)
    if kind == "snapshot":
        url = need("CAMERA_SNAPSHOT_URL", "http://camera/snapshot.jpg")
        return SnapshotCamera(url, settings.CAMERA_TOKEN, settings.CAMERA_TIMEOUT)
    if kind == "opencv":
        return OpenCVCamera(need("CAMERA_DEVICE", "0"), settings.CAMERA_TIMEOUT)
    return FolderCamera(settings.demo_folder)
