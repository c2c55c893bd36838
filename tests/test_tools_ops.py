"""Editing recipes: known answers for every operation on images made here (crop box and size, where a pixel goes
on rotation, resize sizes, each filter's measured effect), previews, validation messages and descriptions."""

from __future__ import annotations

import cv2
import numpy as np
import PIL
import pytest
from PIL import Image

from tests.test_tools_style import inverter_model
from utils.tools.ops import MAX_SIDE, RecipeError, apply_recipe, describe_recipe, preview, tool_name, validate_recipe
from utils.tools.style import apply_preset


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.int16)


def gradient(w: int = 120, h: int = 80) -> Image.Image:
    """Every pixel different: R = x, G = y, B = a pattern of both."""
    yy, xx = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.dstack([xx * 2, yy * 3, (xx + 7 * yy) % 256]).astype(np.uint8), "RGB")


def noisy(w: int = 160, h: int = 120, seed: int = 0, level: int = 128, sd: float = 30.0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(rng.normal(level, sd, (h, w, 3)), 0, 255).astype(np.uint8), "RGB")


def laplacian_var(img: Image.Image) -> float:
    return float(cv2.Laplacian(np.asarray(img.convert("L")), cv2.CV_64F).var())


# ----------------------------------------------------------------- geometry


def test_crop_takes_the_box_in_real_pixels():
    img = gradient()
    out = apply_recipe(img, [{"op": "crop", "box": [10, 20, 50, 45]}])
    assert out.size == (40, 25)
    assert np.array_equal(arr(out), arr(img)[20:45, 10:50])
    assert out.getpixel((0, 0)) == img.getpixel((10, 20))


def test_crop_is_clipped_to_the_image_and_refuses_a_box_outside():
    img = gradient(120, 80)
    assert apply_recipe(img, [{"op": "crop", "box": [-30, 60, 500, 500]}]).size == (120, 20)
    with pytest.raises(RecipeError, match=r"operation 2 \(crop\): the box \[130, 0, 150, 10\] lies outside the "
                                          r"120x80 image"):
        apply_recipe(img, [{"op": "flip", "axis": "vertical"}, {"op": "crop", "box": [130, 0, 150, 10]}])


def test_right_angle_rotations_are_exact_and_counter_clockwise():
    img = gradient(120, 80)
    a = arr(img)
    r90 = apply_recipe(img, [{"op": "rotate", "degrees": 90}])
    assert r90.size == (80, 120)
    assert np.array_equal(arr(r90), np.rot90(a, 1))  # numpy's rot90 is counter-clockwise too
    # the top-right pixel (119, 0) ends at the top-left after a quarter turn to the left
    assert r90.getpixel((0, 0)) == img.getpixel((119, 0))
    # a pixel (x, y) goes to (y, W - 1 - x)
    assert r90.getpixel((5, 120 - 1 - 30)) == img.getpixel((30, 5))
    assert np.array_equal(arr(apply_recipe(img, [{"op": "rotate", "degrees": 180}])), a[::-1, ::-1])
    assert np.array_equal(arr(apply_recipe(img, [{"op": "rotate", "degrees": -90}])), np.rot90(a, -1))
    assert np.array_equal(arr(apply_recipe(img, [{"op": "rotate", "degrees": 450}])), np.rot90(a, 1))
    assert np.array_equal(arr(apply_recipe(img, [{"op": "rotate", "degrees": 360}])), a)


def test_other_angles_expand_the_canvas_with_the_fill():
    img = Image.new("RGB", (100, 100), (0, 0, 200))
    out = apply_recipe(img, [{"op": "rotate", "degrees": 45}])
    assert abs(out.width - 142) <= 1 and abs(out.height - 142) <= 1  # 100 * sqrt(2)
    assert out.getpixel((1, 1)) == (255, 255, 255)  # corner: the default white fill
    assert out.getpixel((71, 71)) == (0, 0, 200)  # centre: the image
    red = apply_recipe(img, [{"op": "rotate", "degrees": 30, "fill": [255, 0, 0]}])
    assert red.getpixel((1, 1)) == (255, 0, 0)
    named = apply_recipe(img, [{"op": "rotate", "degrees": 30, "fill": "#00ff00"}])
    assert named.getpixel((1, 1)) == (0, 255, 0)
    rgba = apply_recipe(img.convert("RGBA"), [{"op": "rotate", "degrees": 30}])
    assert rgba.mode == "RGBA" and rgba.getpixel((1, 1))[3] == 0 and rgba.getpixel((60, 60))[3] == 255
    grey = apply_recipe(img.convert("L"), [{"op": "rotate", "degrees": 30, "fill": [0, 0, 0]}])
    assert grey.mode == "L" and grey.getpixel((1, 1)) == 0


def test_flip():
    img = gradient()
    assert np.array_equal(arr(apply_recipe(img, [{"op": "flip", "axis": "horizontal"}])), arr(img)[:, ::-1])
    assert np.array_equal(arr(apply_recipe(img, [{"op": "flip", "axis": "Vertical"}])), arr(img)[::-1])


def test_resize_forms():
    img = gradient(120, 80)
    assert apply_recipe(img, [{"op": "resize", "width": 30, "height": 50}]).size == (30, 50)
    assert apply_recipe(img, [{"op": "resize", "width": 60}]).size == (60, 40)
    assert apply_recipe(img, [{"op": "resize", "height": 20}]).size == (30, 20)
    assert apply_recipe(img, [{"op": "resize", "max_side": 300}]).size == (300, 200)
    assert apply_recipe(img, [{"op": "resize", "scale": 0.25}]).size == (30, 20)
    tiny = apply_recipe(img, [{"op": "resize", "scale": 0.001}])
    assert tiny.size == (1, 1)
    with pytest.raises(RecipeError, match=r"operation 1 \(resize\): the result would be 20000x8000.*1\.\.16384"):
        apply_recipe(gradient(200, 80), [{"op": "resize", "scale": 100}])  # refused before any pixel is made
    with pytest.raises(RecipeError, match=r"'width' must be an integer from 1 to 16384, got 20000"):
        validate_recipe([{"op": "resize", "width": MAX_SIDE + 3616}])


def test_resize_of_rgba_is_premultiplied():
    img = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # transparent red around ...
    img.paste((0, 0, 255, 255), (10, 10, 30, 30))  # ... an opaque blue square
    out = apply_recipe(img, [{"op": "resize", "width": 17, "height": 17}])
    px = np.asarray(out)
    edge = px[(px[..., 3] > 20) & (px[..., 3] < 235)]
    assert len(edge) > 0 and edge[:, 0].max() <= 2  # no red from the transparent pixels bleeds in


# ----------------------------------------------------------------- colour and filters, measured


def test_adjust_brightness_contrast_gamma():
    img = noisy(sd=20)
    base = arr(img)
    brighter = arr(apply_recipe(img, [{"op": "adjust", "brightness": 1.5}]))
    assert abs(brighter.mean() / base.mean() - 1.5) < 0.02
    flatter = arr(apply_recipe(img, [{"op": "adjust", "contrast": 0.5}]))
    assert abs(flatter.std() / base.std() - 0.5) < 0.03
    grey = Image.new("RGB", (4, 4), (128, 64, 255))
    assert apply_recipe(grey, [{"op": "adjust", "gamma": 2.0}]).getpixel((0, 0)) == (181, 128, 255)
    assert apply_recipe(grey, [{"op": "adjust", "gamma": 0.5}]).getpixel((0, 0)) == (64, 16, 255)
    assert np.array_equal(arr(apply_recipe(img, [{"op": "adjust"}])), base)


def test_greyscale_has_equal_channels_and_the_luma():
    img = Image.new("RGB", (8, 8), (255, 0, 0))
    out = apply_recipe(img, [{"op": "greyscale"}])
    assert out.mode == "L" and out.getpixel((0, 0)) == 76  # 0.299 * 255
    rgba = apply_recipe(Image.new("RGBA", (8, 8), (0, 255, 0, 90)), [{"op": "greyscale"}])
    assert rgba.mode == "RGBA" and rgba.getpixel((2, 2)) == (150, 150, 150, 90)
    px = np.asarray(apply_recipe(noisy().convert("RGBA"), [{"op": "greyscale"}]))
    assert np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 1], px[..., 2])


def test_blur_lowers_the_laplacian_variance():
    img = noisy()
    v0 = laplacian_var(img)
    v1 = laplacian_var(apply_recipe(img, [{"op": "blur", "radius": 1}]))
    v3 = laplacian_var(apply_recipe(img, [{"op": "blur", "radius": 3}]))
    assert v3 < v1 < 0.3 * v0
    assert np.array_equal(arr(apply_recipe(img, [{"op": "blur", "radius": 0}])), arr(img))


def test_blur_of_rgba_gives_no_dark_fringe():
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    img.paste((255, 255, 255, 255), (10, 10, 30, 30))
    px = np.asarray(apply_recipe(img, [{"op": "blur", "radius": 3}]))
    fringe = px[(px[..., 3] > 10) & (px[..., 3] < 245)]
    assert len(fringe) > 50 and fringe[:, :3].min() >= 250  # half-transparent white, not grey


def test_sharpen_raises_the_laplacian_variance():
    soft = apply_recipe(noisy(sd=25), [{"op": "blur", "radius": 2}])
    assert laplacian_var(apply_recipe(soft, [{"op": "sharpen", "amount": 2}])) > 3 * laplacian_var(soft)
    assert laplacian_var(apply_recipe(soft, [{"op": "sharpen", "amount": 0.5}])) < \
        laplacian_var(apply_recipe(soft, [{"op": "sharpen", "amount": 2}]))


def test_edges_light_up_at_a_known_edge():
    a = np.full((60, 100, 3), 40, np.uint8)
    a[:, 50:] = 200  # a vertical edge between x = 49 and x = 50
    out = apply_recipe(Image.fromarray(a).convert("RGBA"), [{"op": "edges"}])
    e = np.asarray(out)
    assert out.mode == "L" and set(np.unique(e)) <= {0, 255}
    lit = np.nonzero(e[30])[0]
    assert len(lit) >= 1 and set(lit) <= {49, 50}
    assert (e[5:55, 49:51].max(axis=1) == 255).all()  # the whole edge, row by row
    assert e[:, :45].max() == 0 and e[:, 55:].max() == 0


def test_sepia_colour_ratio():
    out = apply_recipe(Image.new("RGB", (4, 4), (100, 100, 100)), [{"op": "sepia"}])
    r, g, b = out.getpixel((0, 0))
    assert (r, g, b) == (135, 120, 94)  # 100 * (1.351, 1.203, 0.937)
    assert abs(r / b - 1.351 / 0.937) < 0.02 and abs(g / b - 1.203 / 0.937) < 0.02
    from_grey = apply_recipe(Image.new("L", (4, 4), 100), [{"op": "sepia"}])
    assert from_grey.mode == "RGB" and from_grey.getpixel((1, 1)) == (135, 120, 94)
    assert apply_recipe(Image.new("RGB", (2, 2), (250, 250, 250)), [{"op": "sepia"}]).getpixel((0, 0))[0] == 255


def test_clahe_raises_local_contrast_and_keeps_hue():
    rng = np.random.default_rng(3)
    low = (120 + rng.integers(0, 16, (128, 128))).astype(np.uint8)  # a dull, low-contrast texture
    grey = Image.fromarray(low, "L")
    out = apply_recipe(grey, [{"op": "clahe", "clip_limit": 3.0, "tile": 4}])
    assert out.mode == "L" and np.asarray(out).std() > 2 * low.std()
    colour = Image.fromarray(np.dstack([low, low // 2, low // 4]), "RGB")
    c_out = apply_recipe(colour, [{"op": "clahe", "clip_limit": 3.0, "tile": 4}])
    lab_in = cv2.cvtColor(np.asarray(colour), cv2.COLOR_RGB2LAB).astype(np.int16)
    lab_out = cv2.cvtColor(np.asarray(c_out), cv2.COLOR_RGB2LAB).astype(np.int16)
    assert lab_out[..., 0].std() > 2 * lab_in[..., 0].std()
    assert np.abs(np.median(lab_out[..., 1:], axis=(0, 1)) - np.median(lab_in[..., 1:], axis=(0, 1))).max() <= 6


def test_style_and_neural_style_ops(tmp_path):
    img = noisy(80, 60)
    assert np.array_equal(arr(apply_recipe(img, [{"op": "style", "preset": "cartoon"}])),
                          arr(apply_preset(img, "cartoon")))
    model = inverter_model(tmp_path / "invert.onnx")
    out = apply_recipe(img, [{"op": "neural_style", "model": str(model)}])
    assert np.array_equal(arr(out), 255 - arr(img))
    with pytest.raises(RecipeError, match=r"operation 1 \(style\): parameter 'preset' must be one of 'stylization'"):
        validate_recipe([{"op": "style", "preset": "oil"}])
    with pytest.raises(RecipeError, match=r"operation 1 \(neural_style\).*no such file"):
        validate_recipe([{"op": "neural_style", "model": str(tmp_path / "gone.onnx")}])
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"no model")
    with pytest.raises(RecipeError, match=r"operation 2 \(neural_style\): .*not a valid ONNX model"):
        apply_recipe(img, [{"op": "flip", "axis": "horizontal"}, {"op": "neural_style", "model": str(bad)}])


# ----------------------------------------------------------------- recipes as a whole


def test_recipe_runs_in_order_and_leaves_the_source_alone():
    img = gradient(120, 80)
    before = arr(img).copy()
    out = apply_recipe(img, [{"op": "crop", "box": [0, 0, 60, 40]}, {"op": "rotate", "degrees": 90},
                             {"op": "resize", "scale": 2}])
    assert out.size == (80, 120)
    assert np.array_equal(arr(img), before)
    assert apply_recipe(img, []) is not img and np.array_equal(arr(apply_recipe(img, [])), before)


def test_modes_rgb_rgba_l_and_others():
    recipe = [{"op": "crop", "box": [5, 5, 105, 75]}, {"op": "rotate", "degrees": 90}, {"op": "adjust",
              "brightness": 1.2, "contrast": 1.1, "gamma": 0.9}, {"op": "blur", "radius": 1}, {"op": "sharpen"},
              {"op": "clahe"}, {"op": "style", "preset": "smooth"}]
    rgba = gradient().convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    out = apply_recipe(rgba, recipe[:6])  # alpha follows the geometry, untouched by the colour operations
    want_alpha = np.rot90(np.asarray(rgba)[5:75, 5:105, 3], 1)
    assert out.mode == "RGBA" and np.abs(np.asarray(out)[..., 3].astype(int) - want_alpha).max() <= 1
    assert apply_recipe(gradient().convert("L"), recipe[:6]).mode == "L"
    assert apply_recipe(gradient(), recipe).mode == "RGB"
    assert apply_recipe(gradient().convert("P"), [{"op": "flip", "axis": "vertical"}]).mode == "RGB"
    assert apply_recipe(gradient().convert("LA"), [{"op": "flip", "axis": "vertical"}]).mode == "RGBA"
    assert apply_recipe(Image.new("1", (8, 8), 1), [{"op": "blur"}]).mode == "L"


def test_preview_scales_crop_boxes_and_sizes():
    big = Image.new("RGB", (1600, 1200), (200, 200, 200))
    big.paste((220, 30, 30), (800, 400, 1200, 800))  # a red square in real pixels
    recipe = [{"op": "crop", "box": [800, 400, 1200, 800]}]
    small = preview(big, recipe, max_side=400)
    assert small.size == (100, 100)  # 400 x 400 real pixels at a quarter
    px = np.asarray(small).astype(int)
    assert (px[..., 0] > px[..., 1] + 100).all()  # all of it the red square ...
    assert (px[1:-1, 1:-1] == (220, 30, 30)).all()  # ... only the outermost pixels mixed by the reduction
    recipe = [{"op": "crop", "box": [0, 0, 1000, 600]}, {"op": "rotate", "degrees": 90},
              {"op": "resize", "width": 300}, {"op": "blur", "radius": 8}]
    full = apply_recipe(big, recipe)
    assert full.size == (300, 500)
    assert preview(big, recipe, max_side=400).size == (75, 125)
    assert preview(big, recipe, max_side=5000).size == full.size  # nothing to reduce: the real result
    with pytest.raises(RecipeError, match=r"operation 1 \(resize\): the result would be 24000x18000"):
        preview(big, [{"op": "resize", "scale": 15}])  # errors are those of the real image
    with pytest.raises(RecipeError, match="max_side"):
        preview(big, recipe, max_side=0)


def test_preview_blur_matches_the_real_result_scaled():
    rng = np.random.default_rng(5)
    big = Image.fromarray((rng.random((1000, 1000, 3)) > 0.5).astype(np.uint8) * 255, "RGB")
    recipe = [{"op": "blur", "radius": 12}]
    full_reduced = apply_recipe(big, recipe).resize((250, 250), Image.Resampling.BILINEAR)
    pv = preview(big, recipe, max_side=250)
    assert abs(arr(pv).std() - arr(full_reduced).std()) < 0.25 * arr(full_reduced).std()
    unscaled = apply_recipe(big.resize((250, 250), Image.Resampling.BILINEAR), recipe)
    assert arr(unscaled).std() < 0.5 * arr(full_reduced).std()  # a radius not scaled would blur 4x too much


def test_validation_normalises():
    ops = validate_recipe([{"op": "Blur"}, {"op": "rotate", "degrees": 90, "fill": (1, 2, 3)},
                           {"op": "clahe", "tile": 4.0}, {"op": "crop", "box": [1.4, 2, 30.6, 40]}])
    assert ops == [{"op": "blur", "radius": 2.0}, {"op": "rotate", "degrees": 90.0, "fill": [1, 2, 3, 255]},
                   {"op": "clahe", "clip_limit": 2.0, "tile": 4}, {"op": "crop", "box": [1, 2, 31, 40]}]


@pytest.mark.parametrize("recipe, message", [
    ({"op": "blur"}, r"a recipe is a list of operations"),
    ([["blur"]], r"operation 1: expected an object with an 'op' key"),
    ([{"op": "grayscal"}], r"operation 1: unknown op 'grayscal'; known ops: crop, rotate,.*neural_style"),
    ([{"op": "flip"}], r"operation 1 \(flip\): parameter 'axis' is missing; it must be one of 'horizontal', "
                       r"'vertical'"),
    ([{"op": "flip", "axis": "diagonal"}], r"parameter 'axis' must be one of 'horizontal', 'vertical', got "
                                           r"'diagonal'"),
    ([{"op": "greyscale"}, {"op": "blur", "radius": 80}], r"operation 2 \(blur\): parameter 'radius' must be a "
                                                          r"number from 0 to 50, got 80"),
    ([{"op": "blur", "radius": True}], r"'radius' must be a number from 0 to 50, got True"),
    ([{"op": "blur", "radius": "3"}], r"'radius' must be a number"),
    ([{"op": "blur", "sigma": 3}], r"operation 1 \(blur\): unknown parameter 'sigma'; accepted parameters: radius"),
    ([{"op": "sepia", "amount": 1}], r"unknown parameter 'amount'; accepted parameters: none"),
    ([{"op": "crop", "box": [10, 10, 5, 20]}], r"'box' must be \[x0, y0, x1, y1\] with x1 > x0.*empty box"),
    ([{"op": "crop", "box": [1, 2, 3]}], r"'box' must be \[x0, y0, x1, y1\]"),
    ([{"op": "resize"}], r"operation 1 \(resize\): give either 'width' and/or 'height', or 'max_side', or 'scale'"),
    ([{"op": "resize", "max_side": 100, "scale": 2}], r"\(got max_side, scale\)"),
    ([{"op": "resize", "width": 10.5}], r"'width' must be an integer from 1 to 16384"),
    ([{"op": "adjust", "gamma": 0}], r"'gamma' must be a number from 0.1 to 10"),
    ([{"op": "adjust", "brightness": float("nan")}], r"'brightness' must be a number from 0 to 4"),
    ([{"op": "rotate", "degrees": 10, "fill": [300, 0, 0]}], r"'fill' must be \[r, g, b\]"),
    ([{"op": "rotate", "degrees": 10, "fill": "no-such-colour"}], r"'fill' must be"),
    ([{"op": "edges", "low": 200, "high": 100}], r"'low' \(200\) must not be above 'high' \(100\)"),
    ([{"op": "neural_style", "model": "style.pt"}], r"'model' must be the path of an .onnx file.*not an .onnx"),
])
def test_validation_messages_name_operation_parameter_and_what_is_accepted(recipe, message):
    with pytest.raises(RecipeError, match=message):
        validate_recipe(recipe)


def test_describe_recipe():
    assert describe_recipe([{"op": "crop", "box": [10, 20, 130, 100]}, {"op": "rotate", "degrees": 90}]) == \
        "crop 120x80 at (10,20), rotate 90°"
    text = describe_recipe([{"op": "resize", "max_side": 800}, {"op": "adjust", "brightness": 1.2},
                            {"op": "style", "preset": "pencil_grey"}, {"op": "flip", "axis": "horizontal"},
                            {"op": "neural_style", "model": "/models/mosaic-9.onnx"}])
    assert text == ("resize to longer side 800, adjust brightness 1.2, style pencil grey, flip horizontal, "
                    "neural style mosaic-9")
    assert describe_recipe([{"op": "blur", "radius": 2.5}, {"op": "sharpen"}, {"op": "edges"}, {"op": "clahe"},
                            {"op": "greyscale"}, {"op": "sepia"}, {"op": "resize", "scale": 0.5},
                            {"op": "resize", "height": 300}, {"op": "adjust"}]) == (
        "blur radius 2.5, sharpen 1 (radius 2), edges (Canny 50/150), CLAHE clip 2, 8x8 tiles, greyscale, sepia, "
        "resize x0.5, resize to height 300, adjust (no change)")
    assert describe_recipe([]) == "no change"


def test_tool_name_lists_the_libraries_that_ran():
    import onnxruntime

    pil = f"Pillow {PIL.__version__}"
    assert tool_name([{"op": "crop", "box": [0, 0, 5, 5]}, {"op": "blur"}]) == pil
    assert tool_name([{"op": "edges"}]) == f"{pil}, OpenCV {cv2.__version__}"
    both = tool_name([{"op": "clahe"}, {"op": "neural_style", "model": "/gone/m.onnx"}])
    assert both == f"{pil}, OpenCV {cv2.__version__}, onnxruntime {onnxruntime.__version__}"
