"""Order numbers read by the camera from the order sheet (utils/barcodes.py, zxing-cpp): codes the tests render
themselves on a sheet lying on the packing table, through JPEG; and the Capture page's button (AppTest)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from utils.barcodes import order_number_from_image
from utils.synthetic import Scene, render

zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed (pip install zxing-cpp)")


def sheet_on_the_table(text: str, kind: str = "QRCode", angle: float = 7.0, size: tuple[int, int] = (1280, 960)
                       ) -> Image.Image:
    """The packing table with an order sheet on it carrying ``text`` as a code, turned a little, through JPEG."""
    code = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, kind))
    mark = Image.fromarray(np.asarray(code.to_image(scale=4))).convert("RGBA")
    sheet = Image.new("RGBA", (mark.width + 120, mark.height + 160), (245, 245, 240, 255))
    sheet.paste(mark, (60, 60))
    sheet = sheet.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)  # transparent corners
    table = render(Scene(items=()), size, noise=3.0, seed=4).convert("RGB")
    table.paste(sheet, ((size[0] - sheet.width) // 2, (size[1] - sheet.height) // 2), sheet)
    buf = io.BytesIO()
    table.save(buf, format="JPEG", quality=85)
    return Image.open(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("kind", ["QRCode", "Code128", "DataMatrix"])
def test_the_order_number_is_read_from_the_sheet(kind):
    read = order_number_from_image(sheet_on_the_table("ORD-4711", kind))
    assert read.number == "ORD-4711" and "ORD-4711" in read.message and "press Start" in read.message


def test_no_code_and_a_code_that_is_no_order_number_say_so():
    nothing = order_number_from_image(render(Scene(items=()), (640, 480), seed=1))
    assert nothing.number is None and "No barcode or QR code found" in nothing.message
    bad = order_number_from_image(sheet_on_the_table("../etc/passwd"))
    assert bad.number is None and "not an order number" in bad.message and "../etc/passwd" in bad.message


def test_the_capture_page_proposes_the_number_and_starts_nothing(app_env, monkeypatch, tmp_path):
    import ImageProcessingThread

    folder = tmp_path / "camera"
    folder.mkdir()
    sheet_on_the_table("ORD-4711").save(folder / "0001.jpg")
    monkeypatch.setenv("TEST_DATA_FOLDER", str(folder))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.button(key="button_read_code").click().run()
    assert at.text_input(key="order_number").value == "ORD-4711"
    assert any("Read “ORD-4711”" in i.value for i in at.info)
    assert not any(w.snapshot().running for w in ImageProcessingThread._workers.values())  # Start is the operator's
