"""Scenes made in the tests: a packing table as a camera streams it (noise, flicker, jitter, JPEG), items of known
size, a passing hand. Known answers for the decision tests; independent of the benchmark's sequences."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from utils.synthetic import Item, Scene, render

SIZE = (640, 480)
GREY, GREEN, BROWN = (128, 128, 128), (60, 160, 70), (120, 80, 45)


def item_of_area(share: float, x: float, y: float, color: tuple[int, int, int], shape: str = "circle") -> Item:
    """An item covering ``share`` of the frame (a circle of that area; a square or triangle about the same)."""
    w, h = SIZE
    r_px = math.sqrt(share * w * h / math.pi)
    return Item(shape, x, y, r_px / h, color)


BASE = Scene(0.2, (Item("circle", 0.35, 0.42, 0.12, GREY),))


def with_items(*items: Item, scene: Scene = BASE) -> Scene:
    return Scene(scene.box_x, scene.items + items, scene.light, scene.dark)


class Camera:
    """Frames of scenes as a camera delivers them: sensor noise, flicker of +-3 %, 1-pixel jitter, JPEG 88."""

    def __init__(self, seed: int = 0, flicker: float = 0.03, noise: float = 3.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.flicker, self.noise = flicker, noise
        self._cache: dict[Scene, np.ndarray] = {}

    def _clean(self, scene: Scene) -> np.ndarray:
        if scene not in self._cache:
            self._cache[scene] = np.asarray(render(scene, SIZE, noise=0.0), np.float32)
        return self._cache[scene]

    def shoot(self, scene: Scene, hand: float | None = None) -> Image.Image:
        """One frame; ``hand`` (0..1): a hand and forearm reaching in from the right, that far across."""
        arr = self._clean(scene).copy()
        if hand is not None:
            arr = np.asarray(draw_hand(Image.fromarray(arr.astype(np.uint8)), hand), np.float32)
        arr *= 1.0 + self.rng.uniform(-self.flicker, self.flicker)
        arr += self.rng.normal(0.0, self.noise, arr.shape)
        dx, dy = self.rng.integers(-1, 2, 2)
        arr = np.roll(arr, (int(dy), int(dx)), axis=(0, 1))
        buf = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=88)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def draw_hand(img: Image.Image, reach: float) -> Image.Image:
    """A skin-coloured forearm and hand reaching ``reach`` (0..1) of the way in from the right edge, blurred."""
    w, h = img.size
    out = img.copy()
    d = ImageDraw.Draw(out)
    tip = w * (1.0 - 0.7 * reach)
    y = h * 0.55
    skin = (224, 172, 140)
    d.rectangle([tip + 0.08 * w, y - 0.07 * h, w + 10, y + 0.07 * h], fill=skin)  # forearm
    d.ellipse([tip, y - 0.11 * h, tip + 0.16 * w, y + 0.11 * h], fill=skin)  # hand
    for k in range(4):  # fingers
        fy = y - 0.09 * h + k * 0.06 * h
        d.rounded_rectangle([tip - 0.07 * w, fy, tip + 0.03 * w, fy + 0.04 * h], radius=6, fill=skin)
    return out.filter(ImageFilter.GaussianBlur(2))


def stream(camera: Camera, plan: list[tuple[Scene, int] | tuple[Scene, int, str]]) -> tuple[list[Image.Image], list[str]]:
    """Frames and labels of a plan: (scene, n frames[, "hand"]); a state's label is its scene's index in the
    plan's first appearance order, hand frames are "T"."""
    frames, labels, states = [], [], {}
    for step in plan:
        scene, n = step[0], step[1]
        hand = len(step) > 2
        for i in range(n):
            if hand:
                reach = 0.25 + 0.7 * math.sin(math.pi * (i + 0.5) / n)
                frames.append(camera.shoot(scene, hand=reach))
                labels.append("T")
            else:
                frames.append(camera.shoot(scene))
                labels.append(f"s{states.setdefault(scene, len(states))}")
    return frames, labels
