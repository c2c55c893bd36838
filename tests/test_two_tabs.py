"""Two browser tabs press Start at the same moment with different order numbers: exactly one order runs.

Both clicks are sent together (Playwright's async API, ``asyncio.gather``) to the real
`streamlit run app.py`; the database must hold one order, one tab says it started, the other
shows the warning naming the running order. Skipped like the other browser tests when Chromium
or playwright is missing.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.browser import CHROMIUM, FLAGS, db_rows, require_browser
from tests.test_kill9 import demo_dashboard, distinct_frames

require_browser()
async_api = pytest.importorskip("playwright.async_api")


async def _press(page) -> bool:
    """Click Start; False when it was disabled (by the other tab's order) before the click could land."""
    try:
        await page.get_by_role("button", name="Start").click(timeout=5_000)
        return True
    except async_api.TimeoutError:
        return False


async def _two_tabs_press_start(url: str, numbers: tuple[str, str]) -> list[str]:
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            pages = [await context.new_page(), await context.new_page()]  # two tabs: two Streamlit sessions
            for page in pages:
                await page.goto(url)
            for page, number in zip(pages, numbers):
                await page.get_by_role("button", name="Start").wait_for(timeout=90_000)
                box = page.get_by_label("Order number")
                await box.fill(number)
                await box.press("Enter")
            await asyncio.sleep(1.0)  # both reruns after Enter are done; both Start buttons are enabled
            for page in pages:
                assert await page.get_by_role("button", name="Start").is_enabled()
            clicked = await asyncio.gather(*(_press(page) for page in pages))
            outcome = re.compile(r"Order \S+ (started in|is running on this camera)")
            texts = []
            for page, was_clicked in zip(pages, clicked):
                if not was_clicked:
                    # the other tab's order started first and this tab's live check disabled Start before the
                    # click landed: also one order; this tab shows the running order instead of a warning
                    start = page.get_by_role("button", name="Start")
                    assert not await start.is_enabled()
                    running = await page.get_by_label("Order number").input_value()
                    texts.append(f"Order {running} is running on this camera (Start was disabled)")
                    continue
                message = page.get_by_text(outcome).first
                await message.wait_for(timeout=30_000)
                texts.append(await message.inner_text())
            # close the running order from the tab that started it
            winner = next(i for i, t in enumerate(texts) if "started in" in t)
            await pages[winner].get_by_role("button", name="Close order").click()
            await pages[winner].get_by_text(re.compile(r"closed\. \d+ image\(s\) saved")).first.wait_for(timeout=30_000)
            return texts
        finally:
            await browser.close()


def test_two_tabs_press_start_at_once_one_order(tmp_path):
    export = tmp_path / "export"
    frames = distinct_frames(tmp_path / "frames", 20)
    dash = demo_dashboard(export, frames, tmp_path / "streamlit.log")
    try:
        numbers = ("TAB-A", "TAB-B")
        texts = asyncio.run(_two_tabs_press_start(dash.url, numbers))
    finally:
        dash.stop()
    started = [t for t in texts if "started in" in t]
    refused = [t for t in texts if "is running on this camera" in t]
    assert len(started) == 1 and len(refused) == 1, texts
    winner = re.search(r"Order (\S+) started", started[0]).group(1)
    loser = next(n for n in numbers if n != winner)
    assert winner in numbers
    assert f"Order {winner} is running on this camera" in refused[0], refused  # names the running order
    orders = db_rows(export, "SELECT order_number, status FROM orders")
    assert orders == [(winner, "closed")], orders
    assert not (export / loser).exists()
