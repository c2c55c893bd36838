"""What a browser that never logged in can cost the dashboard: memory measured on a real `streamlit run app.py`.

Starts the dashboard with login configured (AUTH_USERS) and, from sessions that only ever see the login form,
measures the dashboard process's resident memory (VmRSS) and its peak (VmHWM, reset before each step):

* ``sessions``: 20 browser tabs on the login form (each one a Streamlit session);
* ``uploads``: 5 x 100 MB to Streamlit's upload endpoint (the attack of issue 8);
* ``ws_message_20mb`` / ``ws_message_100mb``: one WebSocket message of that size from a stranger's page;
* ``logins``: 8 login attempts submitted at the same moment from 8 tabs (argon2: 64 MiB per verification).

    python bench/prelogin.py --json

Needs Debian's chromium and playwright (``make install-dev``). Numbers vary a little from run to run (shared
machine); each figure is the median of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, FLAGS, Dashboard, memory_kb, open_login_page, reset_peak, upload  # noqa: E402
from utils.auth import hash_password  # noqa: E402

MB = 1024


def _mb(kb: int) -> float:
    return round(kb / MB, 1)


def _ws_message(page, url: str, size_mb: int) -> str:
    return page.evaluate(
        """async ([url, mb]) => await new Promise((resolve) => {
            const ws = new WebSocket(url, ["streamlit"]);
            ws.binaryType = "arraybuffer";
            ws.onopen = () => { ws.send(new Uint8Array(mb * 1000000)); setTimeout(() => resolve("sent"), 4000); };
            ws.onclose = (e) => resolve("closed " + e.code);
            ws.onerror = () => resolve("error");
        })""",
        [url.replace("http", "ws", 1) + "/_stcore/stream", size_mb],
    )


def one_round(browser, dash: Dashboard) -> dict[str, float]:
    pid = dash.proc.pid
    out: dict[str, float] = {}
    context = browser.new_context()
    page, wire = open_login_page(context, dash.url)
    out["rss_start_mb"] = _mb(memory_kb(pid)["VmRSS"])

    # 20 sessions on the login form
    before = memory_kb(pid)["VmRSS"]
    tabs = [context.new_page() for _ in range(20)]
    for tab in tabs:
        tab.goto(dash.url)
    for tab in tabs:
        tab.get_by_role("button", name="Log in").wait_for(timeout=60_000)
    out["per_session_kb"] = round((memory_kb(pid)["VmRSS"] - before) / 20, 1)
    for tab in tabs:
        tab.close()

    # uploads
    session_id = wire.session_id()
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    before = memory_kb(pid)["VmRSS"]
    reset_peak(pid)
    statuses = [upload(dash, session_id, cookies, 100_000_000)[0] for _ in range(5)]
    assert statuses == [403] * 5, statuses
    out["uploads_5x100mb_peak_mb"] = _mb(memory_kb(pid)["VmHWM"] - before)

    # WebSocket messages
    for size in (20, 100):
        before = memory_kb(pid)["VmRSS"]
        reset_peak(pid)
        _ws_message(page, dash.url, size)
        out[f"ws_message_{size}mb_peak_mb"] = _mb(memory_kb(pid)["VmHWM"] - before)

    # 8 simultaneous login attempts
    tabs = [context.new_page() for _ in range(8)]
    for i, tab in enumerate(tabs):  # other names each time: the per-name lock-out does not cut the crowd short
        tab.goto(dash.url)
        tab.get_by_label("User name").fill(f"nobody{i}-{id(tab)}")
        tab.get_by_label("Password", exact=True).fill("wrong-password")
    before = memory_kb(pid)["VmRSS"]
    reset_peak(pid)
    for tab in tabs:  # as close together as the browser allows
        tab.get_by_role("button", name="Log in").click(no_wait_after=True)
    for tab in tabs:
        tab.get_by_text("Wrong user name or password.").wait_for(timeout=60_000)
    out["logins_8_at_once_peak_mb"] = _mb(memory_kb(pid)["VmHWM"] - before)
    context.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    users = json.dumps({"anna": {"hash": hash_password("admin-pass-1"), "role": "admin"}})
    rounds = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for _ in range(args.rounds):  # a fresh dashboard per round: peaks are not hidden by earlier ones
            base = Path(tempfile.mkdtemp(dir=tmp))
            # AUTH_MAX_FAILURES high: every attempt of the crowd is verified (no lock-out cuts it short)
            dash = Dashboard(base / "export", base / "streamlit.log", AUTH_USERS=users, AUTH_MAX_FAILURES="100")
            try:
                rounds.append(one_round(browser, dash))
            finally:
                dash.stop()
        browser.close()
    result = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    result["rounds"] = args.rounds
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
