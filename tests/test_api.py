"""The HTTP API through a real uvicorn server on loopback: /stats (file, URL, bad input), the read-only
endpoints on a real store, bearer-token auth, the loopback guard and ``python -m api``."""

from __future__ import annotations

import hmac
import io
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import requests
import uvicorn
from PIL import ExifTags, Image

import api
from tests.conftest import ROOT, wait_for
from tests.test_image_stats import CRAFTED_DATES, jpeg_dated
from tests.test_url_fetch import ImageServer, TrickleServer, red_blue_png
from utils.config import load_settings
from utils.imaging import encode_jpeg, make_exif
from utils.stats_store import backfill
from utils.url_fetch import MAX_PARALLEL_FETCHES
from utils.storage import Store

TOKEN = "s3cret-token-123"
LIMIT = 300_000  # UPLOAD_MAX_BYTES of the test servers


@contextmanager
def serve(app, host: str = "127.0.0.1"):
    """Run ``app`` with uvicorn in a thread on a free port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def settings_for(export_dir, **extra):
    env = {"EXPORT_DIR": str(export_dir), "UPLOAD_MAX_BYTES": str(LIMIT), "URL_FETCH_TIMEOUT": "3",
           "LOGGING_LEVEL": "INFO", **{k: str(v) for k, v in extra.items()}}
    return load_settings(env)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A store with two orders (one closed with 3 images, one open with 1) and their statistics."""
    export = tmp_path_factory.mktemp("api") / "export"
    store = Store(export)
    t0 = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)
    closed, _ = store.open_order("API-1")
    images = []
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        when = t0 + timedelta(minutes=i)
        payload = encode_jpeg(Image.new("RGB", (64, 48), colour), 90, make_exif(when, "API-1", 0.4))
        images.append(store.save_image(closed, payload, None, when, distance=0.4, width=64, height=48))
    store.close_order(closed.id)
    open_order, _ = store.open_order("API-2")
    store.save_image(open_order, encode_jpeg(Image.new("RGB", (8, 8)), 90), None, t0)
    backfill(store)
    return {"export": export, "store": store, "closed": closed, "open": open_order, "images": images}


@pytest.fixture(scope="module")
def images_server():
    srv = ImageServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def open_api(data):
    """No token, private URLs allowed (for the local image server)."""
    with serve(api.create_app(settings_for(data["export"], URL_ALLOW_PRIVATE="true"))) as (base, _):
        yield base


@pytest.fixture(scope="module")
def token_api(data):
    with serve(api.create_app(settings_for(data["export"], API_TOKEN=TOKEN))) as (base, _):
        yield base


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_file(base: str, payload: bytes, name: str = "image.png", ctype: str = "image/png", **kw) -> requests.Response:
    return requests.post(f"{base}/stats", files={"content": (name, payload, ctype)}, timeout=30, **kw)


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "ACME"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (30.0, 0.0, 0.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (120.0, 30.0, 0.0)
    return encode_jpeg(Image.new("RGB", (32, 32), (0, 128, 255)), 95, exif)


RED_BLUE_ANSWER = {
    "exif_data": {},
    "color_data": {
        "avg_color": {"rgb": [0.5, 0.0, 0.5], "hex": "#800080", "method": "arithmetic"},
        "dominant_color": {"rgb": [1.0, 0.0, 0.0], "hex": "#ff0000"},
    },
}


# ----------------------------------------------------------------- POST /stats


def test_stats_of_an_uploaded_file(open_api):
    r = post_file(open_api, red_blue_png())
    assert r.status_code == 200, r.text
    assert r.json() == RED_BLUE_ANSWER
    r = post_file(open_api, jpeg_with_gps(), "photo.jpg", "image/jpeg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["exif_data"]["Make"] == "ACME" and body["exif_data"]["DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert body["exif_data"]["GPSPosition"] == {"latitude": 30.0, "longitude": 120.5, "altitude": None}
    assert body["color_data"]["dominant_color"]["hex"] in {"#0080ff", "#0080fe", "#0180ff"}


def test_stats_of_a_url_as_json_or_form_field(open_api, images_server):
    url = images_server.url("/red.png")
    r = requests.post(f"{open_api}/stats", json={"content": url}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == RED_BLUE_ANSWER
    r = requests.post(f"{open_api}/stats", files={"content": (None, url)}, timeout=30)  # a text field, as the original
    assert r.status_code == 200 and r.json() == RED_BLUE_ANSWER


def test_no_opaque_pixel_gives_null_color_data(open_api):
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(buf, format="PNG")
    r = post_file(open_api, buf.getvalue())
    assert r.status_code == 200 and r.json() == {"exif_data": {}, "color_data": None}


def test_bad_input_is_a_clear_4xx(open_api, images_server):
    full = encode_jpeg(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)), 90)
    cases = [
        (dict(data=b"hello", headers={"Content-Type": "text/plain"}), 415, "multipart/form-data"),
        (dict(), 415, "unsupported Content-Type"),
        (dict(files={"file": ("a.png", red_blue_png(), "image/png")}), 422, "no field 'content'"),
        (dict(files={"content": ("a.txt", b"just text", "text/plain")}), 422, "not a readable image: not an image"),
        (dict(files={"content": ("a.jpg", full[: len(full) // 2], "image/jpeg")}), 422, "truncated"),
        (dict(files={"content": ("a.png", b"", "image/png")}), 422, "empty"),
        (dict(data=b"{not json", headers={"Content-Type": "application/json"}), 400, "not valid JSON"),
        (dict(json={}), 422, 'field "content"'),
        (dict(json=["x"]), 422, 'field "content"'),
        (dict(json={"content": 5}), 422, "non-empty string"),
        (dict(json={"content": "ftp://example.com/a.png"}), 400, "only http:// and https://"),
        (dict(json={"content": "not a url"}), 400, "only http:// and https://"),
        (dict(json={"content": images_server.url("/missing")}), 400, "HTTP 404"),
        (dict(json={"content": images_server.url("/page.html")}), 415, "not an image"),
        (dict(json={"content": "http://169.254.169.254/latest/"}), 403, "link-local"),
        (dict(json={"content": images_server.url("/big.png")}), 413, "too large"),
        (dict(json={"content": images_server.url("/silent")}), 400, "timed out"),
    ]
    for kwargs, status, message in cases:
        r = requests.post(f"{open_api}/stats", timeout=30, **kwargs)
        assert r.status_code == status and message in r.json()["detail"], (kwargs, r.status_code, r.text)


def test_crafted_capture_dates_are_answered(open_api):
    for when, offset in CRAFTED_DATES:
        r = post_file(open_api, jpeg_dated(when, offset), "dated.jpg", "image/jpeg")
        assert r.status_code == 200, (when, offset, r.text)
        assert r.json()["exif_data"]["DateTimeOriginal"] == when


def test_uploads_above_the_limit_are_refused(open_api):
    big = os.urandom(LIMIT + 100_000)
    r = post_file(open_api, big, "big.png")
    assert r.status_code == 413 and "UPLOAD_MAX_BYTES" in r.json()["detail"]

    body = (b'--xyz\r\nContent-Disposition: form-data; name="content"; filename="big.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + big + b"\r\n--xyz--\r\n")

    def chunks():  # no Content-Length (chunked): the limit is enforced while the body streams in
        for i in range(0, len(body), 65536):
            yield body[i: i + 65536]

    r = requests.post(f"{open_api}/stats", data=chunks(), timeout=30,
                      headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413, r.text
    just_below = os.urandom(LIMIT - 10)
    r = post_file(open_api, just_below, "noise.png")
    assert r.status_code == 422  # accepted in size, refused as not an image


def timed(call):
    """(seconds taken, result) of ``call()``."""
    t0 = time.monotonic()
    result = call()
    return time.monotonic() - t0, result


def test_slow_image_urls_do_not_stall_the_api(data):
    """The attack: 45 URLs of a server that trickles its headers, all at once; the API must stay responsive."""
    slow = TrickleServer(interval=0.2, give_up=15)
    settings = settings_for(data["export"], URL_ALLOW_PRIVATE="true", URL_FETCH_TIMEOUT="2")
    answers: list[tuple[float, int, str]] = []
    lock = threading.Lock()

    def post() -> None:
        dt, r = timed(lambda: requests.post(f"{base}/stats", json={"content": slow.url()}, timeout=30))
        with lock:
            answers.append((dt, r.status_code, r.json()["detail"]))

    with serve(api.create_app(settings)) as (base, _):
        threads = [threading.Thread(target=post) for _ in range(45)]
        try:
            for t in threads:
                t.start()
            wait_for(lambda: slow.open >= MAX_PARALLEL_FETCHES, 10, what="every fetch slot taken")
            health_s, health = timed(lambda: requests.get(f"{base}/health", timeout=30))
            orders_s, orders = timed(lambda: requests.get(f"{base}/orders", timeout=30))
            for t in threads:
                t.join(30)
        finally:
            slow.close()
    assert health.status_code == 200 and health_s < 2, health_s
    assert orders.status_code == 200 and orders_s < 2, orders_s  # a worker thread was free
    assert len(answers) == 45 and slow.most_open <= MAX_PARALLEL_FETCHES
    busy = [a for a in answers if a[1] == 503]
    timed_out = [a for a in answers if a[1] == 400]
    assert len(busy) + len(timed_out) == 45 and len(busy) >= 45 - 2 * MAX_PARALLEL_FETCHES, answers
    assert all("too many image URLs being fetched at once" in d and "try again" in d for _, _, d in busy)
    assert all("timed out" in d and dt < 2 + 1.5 for dt, _, d in timed_out), timed_out


def test_private_urls_are_refused_unless_allowed(token_api, images_server):
    r = requests.post(f"{token_api}/stats", json={"content": images_server.url("/red.png")}, headers=auth(), timeout=30)
    assert r.status_code == 403 and "loopback" in r.json()["detail"] and "URL_ALLOW_PRIVATE" in r.json()["detail"]


# ----------------------------------------------------------------- read-only access


def test_orders_and_images_can_be_read(open_api, data):
    closed, images = data["closed"], data["images"]
    orders = requests.get(f"{open_api}/orders", timeout=10).json()
    assert [o["order_number"] for o in orders] == ["API-2", "API-1"]  # newest first
    closed_only = requests.get(f"{open_api}/orders", params={"status": "closed"}, timeout=10).json()
    assert [(o["id"], o["n_images"], o["status"]) for o in closed_only] == [(closed.id, 3, "closed")]
    assert requests.get(f"{open_api}/orders", params={"order_number": "API-2"}, timeout=10).json()[0]["status"] == "open"
    one = requests.get(f"{open_api}/orders/{closed.id}", timeout=10).json()
    assert one["folder"] == "API-1" and one["closed_at"] is not None

    listed = requests.get(f"{open_api}/orders/{closed.id}/images", timeout=10).json()
    assert [i["id"] for i in listed] == [r.id for r in images]
    assert [int(np.argmax([i["stats"][c] for c in ("dom_r", "dom_g", "dom_b")])) for i in listed] == [0, 1, 2]
    image = requests.get(f"{open_api}/images/{images[1].id}", timeout=10).json()
    assert image["file_url"] == f"/images/{images[1].id}/file" and image["width"] == 64
    assert image["stats"]["error"] is None and image["stats"]["exif"]["ImageDescription"] == "order API-1"
    r = requests.get(f"{open_api}{image['file_url']}", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == images[1].path.read_bytes()

    for path in ("/orders/999", "/images/999", "/images/999/file", f"/orders/{closed.id}/video"):
        r = requests.get(f"{open_api}{path}", timeout=10)
        assert r.status_code == 404 and r.json()["detail"], path
    assert requests.get(f"{open_api}/orders/abc", timeout=10).status_code == 422
    assert requests.delete(f"{open_api}/images/{images[0].id}", timeout=10).status_code == 405
    missing = requests.post(f"{open_api}/orders", json={}, timeout=10)  # capture control: the number is required
    assert missing.status_code == 422 and "order_number" in missing.text


def test_ids_beyond_sqlite_integers_are_a_4xx(open_api, data):
    closed = data["closed"].id
    for path in ("/orders/9223372036854775808", "/images/99999999999999999999", "/orders/0", "/images/-1",
                 "/orders/9223372036854775808/images", "/orders/99999999999999999999/video",
                 "/images/9223372036854775808/file"):
        r = requests.get(f"{open_api}{path}", timeout=10)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "less than or equal to 9223372036854775807" in r.text or "greater than or equal to 1" in r.text
    for path in ("/orders/9223372036854775807", "/images/9223372036854775807/file"):
        r = requests.get(f"{open_api}{path}", timeout=10)
        assert r.status_code == 404 and "9223372036854775807" in r.json()["detail"], (path, r.text)
    assert requests.get(f"{open_api}/orders/{closed}", timeout=10).status_code == 200


def test_json_bodies_nested_too_deep_or_too_large_are_a_4xx(open_api):
    def post_json(raw: str) -> requests.Response:
        return requests.post(f"{open_api}/stats", data=raw.encode(), timeout=30,
                             headers={"Content-Type": "application/json"})

    deep = '{"content": ' + "[" * 100_000 + "]" * 100_000 + "}"  # the attack: 200 KB, 100000 levels
    r = post_json(deep)
    assert r.status_code == 413 and "at most 65,536" in r.json()["detail"], r.text
    r = post_json('{"content": ' + "[" * 30_000 + "]" * 30_000 + "}")  # fits the size limit, still too deep
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"], r.text
    r = post_json("[" * 30_000)  # too deep and unterminated
    assert r.status_code == 400, r.text
    assert requests.get(f"{open_api}/health", timeout=10).json() == {"status": "ok"}


def test_openapi_docs(open_api):
    spec = requests.get(f"{open_api}/openapi.json", timeout=10).json()
    assert {"/stats", "/orders", "/orders/{order_id}", "/orders/{order_id}/images", "/images/{image_id}",
            "/images/{image_id}/file", "/health"} <= set(spec["paths"])
    body = spec["paths"]["/stats"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert requests.get(f"{open_api}/docs", timeout=10).status_code == 200


# ----------------------------------------------------------------- auth and the loopback guard


def test_bearer_token(token_api, data, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(api.hmac, "compare_digest", spy)
    for headers in ({}, auth("wrong"), {"Authorization": f"Basic {TOKEN}"}, auth(TOKEN + "x")):
        r = requests.get(f"{token_api}/orders", headers=headers, timeout=10)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
        assert "Authorization: Bearer" in r.json()["detail"]
    assert post_file(token_api, red_blue_png()).status_code == 401
    assert requests.get(f"{token_api}/orders", headers=auth(), timeout=10).status_code == 200
    assert post_file(token_api, red_blue_png(), headers=auth()).json() == RED_BLUE_ANSWER
    assert requests.get(f"{token_api}/images/{data['images'][0].id}/file", headers=auth(), timeout=10).ok
    assert requests.get(f"{token_api}/health", timeout=10).json() == {"status": "ok"}
    assert calls and all(t == (bytes, bytes) for t in calls)  # constant-time comparison of bytes


def test_every_route_needs_the_token_in_the_header(data):
    """Every route the app has (read from the app, so a new one is covered), every method: 401 without a
    token, with a wrong one, and with the right token in the query string instead of the header."""
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    app = api.create_app(settings_for(data["export"], API_TOKEN=TOKEN))
    ids = {"order_id": data["closed"].id, "image_id": data["images"][0].id}
    routes = sorted({(m, r.path) for r in app.routes if isinstance(r, (APIRoute, Route)) for m in r.methods
                     if m != "HEAD"})
    assert {p for _, p in routes} - api.PUBLIC_PATHS, "the app has protected routes"
    query = "&".join(f"{k}={TOKEN}" for k in ("token", "access_token", "api_token", "API_TOKEN", "key"))
    with serve(app) as (base, _):
        for method, path in routes:
            url = base + path.format(**ids)
            if path in api.PUBLIC_PATHS:
                assert requests.request(method, url, timeout=10).status_code == 200, path
                continue
            for headers, suffix in (({}, ""), (auth("wrong"), ""), ({}, "?" + query), (auth(""), "?" + query)):
                r = requests.request(method, url + suffix, headers=headers, timeout=10)
                assert r.status_code == 401, (method, path, headers, suffix, r.status_code)
            r = requests.request(method, url, headers=auth(), timeout=10)
            assert r.status_code not in (401, 403), (method, path, r.status_code)


def test_without_token_only_loopback_clients_are_answered(open_api, data):
    # uvicorn trusts X-Forwarded-For from 127.0.0.1: this is how a remote client looks behind a local proxy
    r = requests.get(f"{open_api}/orders", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert r.status_code == 403 and "API_TOKEN" in r.json()["detail"]
    assert requests.get(f"{open_api}/docs", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10).status_code == 403
    # without TRUSTED_PROXIES no forwarded request counts as local (tests/test_hardening.py: point 11)
    assert requests.get(f"{open_api}/orders", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10).status_code == 403
    allowed = api.create_app(settings_for(data["export"], API_ALLOW_REMOTE_WITHOUT_TOKEN="true"))
    with serve(allowed) as (base, _):
        r = requests.get(f"{base}/orders", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        assert r.status_code == 200
    with serve(api.create_app(settings_for(data["export"], API_TOKEN=TOKEN))) as (base, _):
        r = requests.get(f"{base}/orders", headers={"X-Forwarded-For": "203.0.113.9", **auth()}, timeout=10)
        assert r.status_code == 200


def own_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def test_plain_uvicorn_on_all_interfaces_still_refuses_remote_clients(data):
    ip = own_address()
    if ip is None:
        pytest.skip("no non-loopback interface")
    with serve(api.create_app(settings_for(data["export"])), host="0.0.0.0") as (_, port):
        r = requests.get(f"http://{ip}:{port}/orders", timeout=10)
        assert r.status_code == 403 and "loopback" in r.json()["detail"]
        assert requests.get(f"http://127.0.0.1:{port}/orders", timeout=10).status_code == 200


def test_bind_rules():
    s = lambda **kw: load_settings({k: str(v) for k, v in kw.items()})  # noqa: E731
    assert api.bind_problem(s()) is None  # 127.0.0.1
    assert api.bind_problem(s(API_HOST="localhost")) is None
    assert api.bind_problem(s(API_HOST="::1")) is None
    assert "API_TOKEN" in api.bind_problem(s(API_HOST="0.0.0.0"))
    assert api.bind_problem(s(API_HOST="0.0.0.0", API_TOKEN="   ")) is not None  # blank is no token
    assert api.bind_problem(s(API_HOST="0.0.0.0", API_TOKEN=TOKEN)) is None
    assert api.bind_problem(s(API_HOST="0.0.0.0", API_ALLOW_REMOTE_WITHOUT_TOKEN="true")) is None
    assert TOKEN not in repr(s(API_TOKEN=TOKEN)) and TOKEN not in str(s(API_TOKEN=TOKEN).API_TOKEN)


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("API_")}
    env.update({"EXPORT_DIR": str(tmp_path / "export"), "LOGGING_LEVEL": "WARNING", **extra})
    return env


def test_python_m_api_refuses_a_public_bind_without_token(tmp_path):
    out = subprocess.run([sys.executable, "-m", "api"], cwd=ROOT, env=_env(tmp_path, API_HOST="0.0.0.0"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Refusing to serve the API on 0.0.0.0" in out.stderr and "API_TOKEN" in out.stderr
    out = subprocess.run([sys.executable, "-m", "api"], cwd=ROOT, env=_env(tmp_path, API_PORT="http"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "API_PORT" in out.stderr


def test_python_m_api_serves_on_loopback(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=_env(tmp_path, API_PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 45
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < end, "python -m api did not answer"
                time.sleep(0.2)
        assert r.json() == {"status": "ok"}
        assert requests.get(f"http://127.0.0.1:{port}/orders", timeout=5).json() == []
    finally:
        proc.terminate()
        proc.wait(15)
