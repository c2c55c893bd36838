"""The reverse-proxy template, for real: Debian's nginx running ``deploy/nginx-locations.conf`` in front of a
real dashboard and API. Uploads of a stranger are refused by nginx itself (``auth_request`` to the dashboard's
gate) before their body is forwarded; bodies above the cap get 413; Streamlit internals and the gate check are
not reachable from outside; the dashboard (WebSocket included) and the API work through it.

Skipped with the reason when nginx is not installed (``make test`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
import requests

import api
from tests.browser import (
    ROOT,
    Dashboard,
    Wire,
    browser_log_in,
    free_port,
    require_browser,
    seed_order,
    upload,
    wait_idle,
)
from tests.test_api import TOKEN, serve, settings_for
from tests.test_security_browser import ADMIN, ADMIN_PW, SECRET, assert_only_login
from utils.auth import hash_password

require_browser()
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
if NGINX is None:
    pytest.skip("nginx is not installed (apt-get install -y nginx)", allow_module_level=True)


class Nginx:
    """nginx in the foreground with its own prefix, running the project's location template."""

    def __init__(self, prefix, dashboard_port: int, api_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream dashboard   {{ server 127.0.0.1:{dashboard_port}; }}
    upstream capture_api {{ server 127.0.0.1:{api_port}; }}
    limit_conn_zone $binary_remote_addr zone=capture_per_client:10m;
    server {{
        listen 127.0.0.1:{self.port};
        include {ROOT / 'deploy' / 'nginx-locations.conf'};
    }}
}}
""")
        check = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix)], stderr=subprocess.PIPE)
        end = time.monotonic() + 20
        while True:
            try:
                requests.get(self.url + "/_stcore/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < end and self.proc.poll() is None, "nginx did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("proxy")
    seed_order(base / "export", SECRET)
    users = json.dumps({ADMIN: {"hash": hash_password(ADMIN_PW), "role": "admin"}})
    dash = Dashboard(base / "export", base / "streamlit.log", AUTH_USERS=users)
    with serve(api.create_app(settings_for(base / "export", API_TOKEN=TOKEN))) as (_, api_port):
        proxy = Nginx(base / "nginx", dash.port, api_port)
        yield dash, proxy
        proxy.stop()
    dash.stop()


def test_uploads_of_strangers_stop_at_the_proxy(stack, browser):
    dash, proxy = stack
    context = browser.new_context()
    page = context.new_page()
    wire = Wire(page)
    page.goto(proxy.url + "/gallery")  # the dashboard through nginx, WebSocket included
    assert_only_login(page, wire, "/gallery through nginx")
    session_id = wire.session_id()
    cookies = {c["name"]: c["value"] for c in context.cookies()}

    status, _ = upload(proxy, session_id, cookies, 5_000_000)
    assert status == 403
    assert "Upload refused" not in dash.log_path.read_text()  # nginx refused it; the dashboard saw no body
    assert upload(proxy, session_id, cookies, 1000, declared=300_000_000)[0] == 413  # above client_max_body_size

    browser_log_in(page, ADMIN, ADMIN_PW)
    page.get_by_role("heading", name="Gallery").wait_for(timeout=90_000)  # the page the URL asked for
    wait_idle(page)
    assert upload(proxy, session_id, cookies, 1000)[0] in (200, 204)  # a logged-in admin's upload passes
    context.close()


def test_internals_are_not_reachable_through_the_proxy_and_the_api_is(stack):
    _, proxy = stack
    for path in ("/_stcore/metrics", "/_gate/upload", "/_stcore/agent/openapi.json"):
        assert requests.get(proxy.url + path, timeout=10).status_code == 404, path
    assert requests.get(proxy.url + "/api/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(proxy.url + "/api/orders", timeout=10).status_code == 401
    orders = requests.get(proxy.url + "/api/orders", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert [o["order_number"] for o in orders.json()] == [SECRET]
