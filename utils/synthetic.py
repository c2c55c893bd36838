"""Synthetic packing-station frames: the project's own demo data, test scenes and benchmark frames.

``python -m utils.synthetic toydata`` writes the demo sequence into ``toydata/``: a packing
table seen from above, a box slides in, items are added one by one, with repeated frames
(the camera sees the same scene several times), a lighting change and a dark frame.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Item:
    """An object on the table: shape, centre (fractions of the frame), radius (fraction of height), RGB."""

    shape: str  # "circle" | "triangle" | "square"
    x: float
    y: float
    r: float
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    box_x: float | None = None  # left edge of the box as a fraction of the width (None: no box)
    items: tuple[Item, ...] = field(default_factory=tuple)
    light: float = 1.0  # overall brightness factor
    dark: bool = False


def render(scene: Scene, size: tuple[int, int] = (640, 480), noise: float = 2.0, seed: int = 0) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``size`` with a little sensor noise."""
    w, h = size
    if scene.dark:
        base = np.zeros((h, w, 3), np.float32) + 6.0
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        grain = 8.0 * np.sin(xx / (w / 37.0) + np.sin(yy / (h / 5.0))) + 4.0 * np.sin(yy / (h / 61.0))
        table = np.array([196, 168, 128], np.float32)  # light wood
        base = table[None, None, :] + grain[..., None]
        base *= (0.92 + 0.08 * (xx / w))[..., None]  # the light falls in from the right
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if not scene.dark and scene.box_x is not None:
        bx0, by0 = int(scene.box_x * w), int(0.18 * h)
        bx1, by1 = bx0 + int(0.55 * w), int(0.86 * h)
        draw.rectangle([bx0, by0, bx1, by1], fill=(150, 110, 70), outline=(90, 60, 35), width=max(2, h // 80))
        inset = max(4, h // 40)
        draw.rectangle([bx0 + inset, by0 + inset, bx1 - inset, by1 - inset], fill=(170, 128, 84))
    if not scene.dark:
        for it in scene.items:
            cx, cy, r = it.x * w, it.y * h, it.r * h
            if it.shape == "circle":
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=it.color, outline=(40, 40, 40))
            elif it.shape == "square":
                draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=it.color, outline=(40, 40, 40))
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=it.color, outline=(40, 40, 40))
    img = img.filter(ImageFilter.GaussianBlur(radius=max(0.5, h / 600)))
    arr = np.asarray(img, np.float32) * (scene.light if not scene.dark else 1.0)
    if noise > 0:
        arr += np.random.default_rng(seed).normal(0, noise, arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


GREY = (128, 128, 128)
BLUE = (40, 80, 200)
RED = (200, 50, 40)
GREEN = (60, 160, 70)


def demo_sequence() -> list[tuple[str, Scene]]:
    """The demo frames: (what a person sees, scene)."""
    c1 = Item("circle", 0.35, 0.42, 0.15, GREY)
    tri = Item("triangle", 0.58, 0.55, 0.14, BLUE)
    tri_corner = Item("triangle", 0.64, 0.70, 0.14, BLUE)
    c2 = Item("circle", 0.52, 0.36, 0.15, GREY)
    sq = Item("square", 0.36, 0.70, 0.11, RED)
    small = [Item("circle", 0.28 + 0.08 * i, 0.55, 0.05, GREEN) for i in range(3)]
    steps: list[tuple[str, Scene]] = [
        ("empty table", Scene()),
        ("empty table (same)", Scene()),
        ("box sliding in", Scene(box_x=-0.25)),
        ("empty box", Scene(box_x=0.2)),
        ("empty box (same)", Scene(box_x=0.2)),
        ("grey circle in the box", Scene(0.2, (c1,))),
        ("blue triangle added", Scene(0.2, (c1, tri))),
        ("triangle moved to the corner", Scene(0.2, (c1, tri_corner))),
        ("second grey circle", Scene(0.2, (c1, tri_corner, c2))),
        ("second grey circle (same)", Scene(0.2, (c1, tri_corner, c2))),
        ("red square added", Scene(0.2, (c1, tri_corner, c2, sq))),
        ("one small green circle", Scene(0.2, (c1, tri_corner, c2, sq, small[0]))),
        ("two small green circles", Scene(0.2, (c1, tri_corner, c2, sq, *small[:2]))),
        ("three small green circles", Scene(0.2, (c1, tri_corner, c2, sq, *small))),
        ("same content, lights dimmed", Scene(0.2, (c1, tri_corner, c2, sq, *small), light=0.7)),
        ("dark frame (lid closed)", Scene(dark=True)),
    ]
    return steps


def write_demo_frames(folder: Path, size: tuple[int, int] = (640, 480), quality: int = 90) -> list[Path]:
    """Write the demo sequence as ``NN.jpg`` plus a README describing each frame."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, lines = [], []
    for i, (what, scene) in enumerate(demo_sequence(), start=1):
        # repeated scenes get the same noise, like a camera looking at a still scene
        seed = next(j for j, (_, s) in enumerate(demo_sequence()) if s == scene)
        path = folder / f"{i:02d}.jpg"
        render(scene, size, seed=seed).save(path, quality=quality)
        paths.append(path)
        lines.append(f"- {path.name}: {what}")
    (folder / "README.md").write_text(
        "# toydata\n\nThe demo camera's frames, made by `python -m utils.synthetic toydata` "
        f"({size[0]}x{size[1]} JPEG): a packing table seen from above.\n\n" + "\n".join(lines) + "\n"
    )
    return paths


def camera_frames(size: tuple[int, int], n: int, quality: int = 100, seed: int = 0) -> list[bytes]:
    """``n`` JPEG frames of a packing scene at ``size`` where an item appears every few frames (benchmarks)."""
    steps = [s for _, s in demo_sequence()[3:14]]
    frames = []
    for i in range(n):
        scene = steps[(i // 4) % len(steps)]
        buf = io.BytesIO()
        render(scene, size, noise=3.0, seed=seed + i).save(buf, format="JPEG", quality=quality)
        frames.append(buf.getvalue())
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    for p in write_demo_frames(args.folder, (args.width, args.height)):
        print(p)


if __name__ == "__main__":
    main()
