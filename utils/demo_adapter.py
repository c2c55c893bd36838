"""A stand-in for the BaslerCameraAdapter REST server: for tests, benchmarks and trying the dashboard without a camera.

Run it and point the dashboard at it::

    python -m utils.demo_adapter --port 5050 --folder toydata [--token T]
    CAMERA_ADDRESS=http://127.0.0.1:5050 CAMERA_TOKEN=T ...

``GET /basler/take-photo`` answers the next image of the folder (or of ``frames``, or of
built-in grey ramps), round and round, as image/jpeg or re-encoded for ``format=png`` etc.
Query parameters are checked against :class:`TakePhotoParams` (422 with a FastAPI-style
body), the Bearer token like the real adapter (401), and a request that arrives while
another is in flight is answered 500, as the real adapter misbehaves under concurrency.

Tests inject one-shot faults, consumed in order by the next take-photo requests::

    server.inject("server_error_close", "no_image", "slow:0.5")

Faults: ``no_image`` (400 "No image retrieved."), ``server_error_close`` (500 plain text,
then the connection is dropped), ``reset`` (connection closed without an answer),
``garbage`` (200 image/jpeg that is no image), ``unauthorized`` (401 "Invalid access
token"), ``slow:<seconds>`` (answer late), ``status:<code>`` (any status, JSON detail).
``down()``/``up()`` stop and resume listening on the same port (a camera that is gone).

``GET /basler/get-camera-info`` answers ``camera_info`` (by default what the adapter reports of its emulated
camera: model name, IP and MAC address; ``serial_number`` and ``ip_address`` are checked like take-photo's: not an
integer 422, another camera's serial number 500); ``GET /health`` answers ``{"status": "ok"}``. ``info_fault``
(``status:<code>`` or ``garbage``) makes every get-camera-info request fail that way until it is set back to None.
:meth:`DemoAdapterServer.last_query` is the query of the last take-photo request (what the client sent).
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import struct
import sys
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image
from pydantic import ValidationError

from communication import IMAGE_EXTENSIONS, sniff_image_type
from DataModels_BaslerCameraAdapter import TakePhotoParams

FAULTS = ("no_image", "server_error_close", "reset", "garbage", "unauthorized", "slow:<seconds>", "status:<code>")
GARBAGE = b"<html><body>this is not an image</body></html>\n"
_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "bmp": "bmp", "webp": "webp", "tiff": "tiff", "tif": "tiff"}
_PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP", "tiff": "TIFF"}
#: What the real adapter's get-camera-info reports of pypylon's emulated camera (its BaslerCamera.get_camera_info:
#: model name, IP and MAC address), plus the serial number the emulation has.
DEFAULT_CAMERA_INFO: dict[str, Any] = {"Name": "Emulation", "IP": "N/A", "MAC": "N/A", "SerialNumber": "0815-0000"}


def synthetic_frames(count: int = 8, size: tuple[int, int] = (640, 480)) -> list[bytes]:
    """JPEG grey ramps (like the adapter's emulated Mono8 camera) with a bright block that moves per frame."""
    width, height = size
    ramp = np.tile(np.linspace(0, 200, width).astype(np.uint8), (height, 1))
    frames = []
    for i in range(count):
        image = ramp.copy()
        left = i * width // count
        image[height // 3 : 2 * height // 3, left : left + width // count] = 255
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=90)
        frames.append(buffer.getvalue())
    return frames


def load_folder(folder: str | Path) -> list[bytes]:
    """The bytes of the folder's images in file-name order; ValueError if there are none."""
    folder = Path(folder)
    files = []
    if folder.is_dir():
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=lambda p: p.name)
    files = [p for p in files if p.is_file()]
    if not files:
        raise ValueError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return [p.read_bytes() for p in files]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    demo: DemoAdapterServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client that went away: not worth a traceback
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body: no Nagle delay
        self.server.demo._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.demo._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.demo._handle(self)

    def send(self, status: int, body: bytes, content_type: str, close: bool = False, **headers: str) -> None:
        """Answer; ``close`` drops the connection afterwards without announcing it (like the adapter after a 500)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = close

    def send_json(self, status: int, payload: Any, **headers: str) -> None:
        self.send(status, json.dumps(payload, default=str).encode(), "application/json", **headers)

    def reset(self) -> None:
        """Close the connection without an answer (RST where the OS allows it)."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True


class DemoAdapterServer:
    """An HTTP server that behaves like the BaslerCameraAdapter (see the module docstring)."""

    def __init__(
        self,
        folder: str | Path | None = None,
        frames: list[bytes] | None = None,
        tokens: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        camera_info: dict[str, Any] | None = None,
    ) -> None:
        if frames is not None:
            if not frames:
                raise ValueError("frames is empty")
            self.frames = list(frames)
        else:
            self.frames = load_folder(folder) if folder is not None else synthetic_frames()
        self.tokens = list(tokens) if tokens else None
        self.host, self.port = host, port
        self.requests = 0  # take-photo requests received
        self.served = 0  # images answered
        self.concurrent_violations = 0  # take-photo requests that arrived while another was in flight
        self.paths: list[str] = []  # every request's path and query, in order
        self.camera_info: dict[str, Any] = dict(camera_info) if camera_info is not None else dict(DEFAULT_CAMERA_INFO)
        self.info_fault: str | None = None  # "status:<code>" or "garbage": how get-camera-info fails
        self.auth_headers: list[str | None] = []  # every request's Authorization header
        self._lock = threading.Lock()
        self._faults: deque[str] = deque()
        self._latency = 0.0
        self._next = 0
        self._in_flight = 0
        self._encoded: dict[tuple[int, str, int], bytes] = {}
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle ----
    @property
    def url(self) -> str:
        """Base address, e.g. http://127.0.0.1:5050 (use it as CAMERA_ADDRESS)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Listen (on a free port if port=0) and serve in a daemon thread."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self.port), _Handler)
            self._httpd.demo = self
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-adapter", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def down(self) -> None:
        """The camera is gone: connections are dropped and refused until :meth:`up`."""
        self.stop()

    def up(self) -> None:
        """The camera is back, on the same port."""
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- test controls ----
    def inject(self, *faults: str) -> None:
        """Queue one-shot faults, consumed in order by the next take-photo requests (names in FAULTS)."""
        for fault in faults:
            name, _, arg = fault.partition(":")
            valid = (name in ("slow", "status") and _is_number(arg)) or (not arg and fault in FAULTS)
            if not valid:
                raise ValueError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend(faults)

    def set_latency(self, seconds: float) -> None:
        """Time every take-photo request takes before it answers (the camera's grab time)."""
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def last_query(self, path: str = "/basler/take-photo") -> dict[str, str] | None:
        """The query parameters of the last request to ``path`` (None: none came), e.g. to check what a client
        sent."""
        with self._lock:
            paths = list(self.paths)
        for sent in reversed(paths):
            url = urlsplit(sent)
            if url.path.rstrip("/") == path:
                return dict(parse_qsl(url.query))
        return None

    # ---- request handling ----
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _handle(self, handler: _Handler) -> None:
        with self._lock:
            self.paths.append(handler.path)
            self.auth_headers.append(handler.headers.get("Authorization"))
        url = urlsplit(handler.path)
        if url.path.rstrip("/") == "/basler/take-photo":
            self._take_photo(handler, url.query)
        elif not self._authorized(handler):
            return
        elif url.path == "/health":
            handler.send_json(200, {"status": "ok"})
        elif url.path.rstrip("/") == "/basler/get-camera-info":
            self._camera_info(handler, url.query)
        else:
            handler.send_json(404, {"detail": "Not Found"})

    def _authorized(self, handler: _Handler) -> bool:
        if not self.tokens:
            return True
        scheme, _, token = (handler.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            handler.send_json(401, {"detail": "Not authenticated"}, WWW_Authenticate="Bearer")
        elif token.strip() not in self.tokens:
            handler.send_json(401, {"detail": "Invalid access token"}, WWW_Authenticate="Bearer")
        else:
            return True
        return False

    def _camera_info(self, handler: _Handler, query: str) -> None:
        """What the adapter tells of the camera: ``camera_info``, or the error a wrong camera or ``info_fault``
        causes."""
        fault = self.info_fault or ""
        if fault == "garbage":
            handler.send(200, GARBAGE, "text/html")
            return
        if fault.startswith("status:"):
            code = int(fault[7:])
            handler.send_json(code, {"detail": _phrase(code)})
            return
        params = dict(parse_qsl(query))
        serial = params.get("serial_number")
        if serial is not None and not serial.strip().lstrip("-").isdigit():
            handler.send_json(422, {"detail": [{"type": "int_parsing", "loc": ["query", "serial_number"],
                                                "msg": "Input should be a valid integer", "input": serial}]})
            return
        known = self.camera_info.get("SerialNumber")
        if serial is not None and known is not None and str(serial).strip() != str(known):
            handler.send(500, b"Internal Server Error", "text/plain; charset=utf-8", close=True)  # as the adapter
            return
        handler.send_json(200, self.camera_info)

    def _take_photo(self, handler: _Handler, query: str) -> None:
        with self._lock:
            self.requests += 1
            fault = self._faults.popleft() if self._faults else ""
            delay = self._latency + (float(fault[5:]) if fault.startswith("slow:") else 0.0)
            busy = self._in_flight > 0
            if busy:
                self.concurrent_violations += 1
            self._in_flight += 1
        try:  # the "grab": the answer is decided while in flight, and sent afterwards
            if not busy and delay:
                time.sleep(delay)
            answer = self._answer(handler, query, fault, busy)
        finally:
            with self._lock:
                self._in_flight -= 1
        if answer is not None:
            answer()

    def _answer(self, handler: _Handler, query: str, fault: str, busy: bool) -> Any:
        """A function sending the answer (None if one was sent already)."""
        text_500 = (500, b"Internal Server Error", "text/plain; charset=utf-8")
        if busy or fault == "server_error_close":
            return lambda: handler.send(*text_500, close=True)
        if fault == "reset":
            return handler.reset
        if fault == "no_image":
            return lambda: handler.send_json(400, {"detail": "No image retrieved."})
        if fault == "unauthorized":
            return lambda: handler.send_json(401, {"detail": "Invalid access token"})
        if fault.startswith("status:"):
            code = int(fault[7:])
            return lambda: handler.send_json(code, {"detail": _phrase(code)})
        if not self._authorized(handler):
            return None
        params = dict(parse_qsl(query))  # the last value of a repeated parameter wins
        image_format = _FORMATS.get(params.pop("format", "jpeg").lower())
        known = {key: value for key, value in params.items() if key in TakePhotoParams.model_fields}
        try:
            checked = TakePhotoParams.model_validate(known)
        except ValidationError as err:
            detail = [
                {"type": e["type"], "loc": ["query", *e["loc"]], "msg": e["msg"], "input": e.get("input")}
                | ({"ctx": e["ctx"]} if "ctx" in e else {})
                for e in err.errors(include_url=False)
            ]
            return lambda: handler.send_json(422, {"detail": detail})
        if image_format is None:  # the real adapter fails on an unknown format
            return lambda: handler.send(*text_500, close=True)
        if fault == "garbage":
            return lambda: handler.send(200, GARBAGE, "image/jpeg")
        with self._lock:
            index = self._next
            self._next = (index + 1) % len(self.frames)
        try:
            body = self._encoded_frame(index, image_format, checked.quality or 100)
        except OSError:  # a frame Pillow cannot read
            return lambda: handler.send(*text_500, close=True)

        def send_image() -> None:
            with self._lock:
                self.served += 1
            handler.send(200, body, f"image/{image_format}")

        return send_image

    def _encoded_frame(self, index: int, image_format: str, quality: int) -> bytes:
        data = self.frames[index]
        if sniff_image_type(data) == image_format:
            return data
        key = (index, image_format, quality)
        with self._lock:
            cached = self._encoded.get(key)
        if cached is None:
            image = Image.open(io.BytesIO(data))
            if image_format == "jpeg" and image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, _PIL_NAMES[image_format], quality=quality)
            cached = buffer.getvalue()
            with self._lock:
                self._encoded[key] = cached
        return cached


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def main(argv: list[str] | None = None) -> None:
    """Command line: serve a folder (or built-in grey ramps) as a demo camera adapter until Ctrl+C."""
    parser = argparse.ArgumentParser(description="Demo BaslerCameraAdapter serving images of a folder.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--folder", help="folder of images; default: synthetic grey ramps")
    parser.add_argument("--token", action="append", help="accepted Bearer token (repeatable); default: no auth")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per frame (real adapter: 0.1..0.3)")
    args = parser.parse_args(argv)
    try:
        server = DemoAdapterServer(folder=args.folder, tokens=args.token, host=args.host, port=args.port)
    except (ValueError, OSError) as err:
        parser.error(str(err))
    server.set_latency(args.latency)
    server.start()
    source = args.folder or "built-in grey ramps"
    print(f"Demo camera adapter on {server.url}: {len(server.frames)} frames from {source}.", flush=True)
    print(f"Start the dashboard with CAMERA_ADDRESS={server.url}" + (" and CAMERA_TOKEN=<token>" if args.token else ""))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
