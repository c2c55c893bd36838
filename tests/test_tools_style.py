"""Style effects: each OpenCV preset measured on images made here, and fast neural style on tiny ONNX graphs built
here with the ``onnx`` package (known outputs: inversion, a channel swap), run by the real onnxruntime."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from utils.tools.style import PRESETS, NeuralStyle, StyleError, StyleModelError, apply_preset, load_neural_style

# ----------------------------------------------------------------- tiny ONNX graphs with known outputs


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None = None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def inverter_model(path: Path, size: tuple[int, int] | None = None, top: float = 255.0,
                   metadata: dict[str, str] | None = None) -> Path:
    """A 'style' model computing ``top - x``: input ``1x3xHxW`` (dynamic H, W unless ``size`` = (W, H))."""
    h, w = (size[1], size[0]) if size else ("H", "W")
    x = helper.make_tensor_value_info("input1", TensorProto.FLOAT, [1, 3, h, w])
    y = helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, 3, h, w])
    top_t = numpy_helper.from_array(np.array(top, np.float32), "top")
    graph = helper.make_graph([helper.make_node("Sub", ["top", "input1"], ["output1"])], "invert", [x], [y],
                              initializer=[top_t])
    return _save(graph, path, metadata)


def channel_swap_model(path: Path) -> Path:
    """A 1x1 convolution that swaps R and B (dynamic H, W): checks the NCHW / RGB order end to end."""
    x = helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, "H", "W"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, "H", "W"])
    weight = np.zeros((3, 3, 1, 1), np.float32)
    for o in range(3):
        weight[o, 2 - o, 0, 0] = 1.0
    graph = helper.make_graph([helper.make_node("Conv", ["img", "w"], ["out"])], "swap", [x], [y],
                              initializer=[numpy_helper.from_array(weight, "w")])
    return _save(graph, path)


def random_rgb(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


# ----------------------------------------------------------------- neural style


def test_dynamic_model_runs_at_the_image_size_with_exact_output(tmp_path):
    img = random_rgb(64, 48)
    out = NeuralStyle(inverter_model(tmp_path / "inv.onnx")).apply(img)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert np.array_equal(np.asarray(out), 255 - np.asarray(img))


def test_channel_order_is_rgb_in_nchw(tmp_path):
    img = Image.new("RGB", (20, 12), (250, 30, 5))
    out = NeuralStyle(channel_swap_model(tmp_path / "swap.onnx")).apply(img)
    assert out.getpixel((3, 3)) == (5, 30, 250)


def test_fixed_size_model_gets_the_image_resized_in_and_back(tmp_path):
    model = NeuralStyle(inverter_model(tmp_path / "inv224.onnx", size=(224, 224)))
    assert model.fixed_size == (224, 224)
    img = Image.new("RGB", (100, 70), (10, 120, 200))
    out = model.apply(img)
    assert out.size == (100, 70)
    assert np.abs(np.asarray(out, np.int16) - np.array([245, 135, 55])).max() <= 1


def test_dynamic_model_runs_reduced_to_max_side_and_rounded_to_four(tmp_path):
    model = NeuralStyle(inverter_model(tmp_path / "inv.onnx"), max_side=64)
    assert model._run_size((250, 130)) == (64, 32)
    img = Image.new("RGB", (250, 130), (0, 100, 255))
    out = model.apply(img)
    assert out.size == (250, 130) and out.getpixel((125, 65)) == (255, 155, 0)


def test_zero_to_one_models_from_metadata_or_argument(tmp_path):
    img = random_rgb(32, 16, seed=1)
    want = 255 - np.asarray(img, np.int16)
    by_meta = NeuralStyle(inverter_model(tmp_path / "a.onnx", top=1.0, metadata={"input_range": "0-1"}))
    by_arg = NeuralStyle(inverter_model(tmp_path / "b.onnx", top=1.0), input_range="0-1")
    assert by_meta.scale == 1.0 and by_arg.scale == 1.0
    for model in (by_meta, by_arg):
        assert np.abs(np.asarray(model.apply(img), np.int16) - want).max() <= 1
    # read as 0..255, a 1 - x model clips to black: the convention matters
    assert np.asarray(NeuralStyle(tmp_path / "b.onnx").apply(img)).max() <= 1


def test_alpha_is_kept(tmp_path):
    img = Image.new("RGBA", (16, 8), (10, 20, 30, 77))
    out = NeuralStyle(inverter_model(tmp_path / "inv.onnx")).apply(img)
    assert out.mode == "RGBA" and out.getpixel((1, 1)) == (245, 235, 225, 77)


def test_description_names_file_md5_and_runtime(tmp_path):
    import hashlib

    import onnxruntime

    path = inverter_model(tmp_path / "mosaic.onnx")
    desc = NeuralStyle(path).description
    assert "mosaic.onnx" in desc and hashlib.md5(path.read_bytes()).hexdigest() in desc
    assert f"onnxruntime {onnxruntime.__version__}" in desc


def test_loaded_model_is_reused_until_the_file_changes(tmp_path):
    path = inverter_model(tmp_path / "inv.onnx")
    first = load_neural_style(path)
    assert load_neural_style(path) is first
    inverter_model(path, top=100.0)
    import os

    os.utime(path, ns=(first.path.stat().st_mtime_ns + 10**9,) * 2)
    assert load_neural_style(path) is not first


def test_missing_and_invalid_model_files(tmp_path):
    with pytest.raises(StyleModelError, match="does not exist"):
        NeuralStyle(tmp_path / "nope.onnx")
    with pytest.raises(StyleModelError, match="does not exist"):
        load_neural_style(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(StyleModelError, match="not a valid ONNX model"):
        NeuralStyle(junk)


def test_unexpected_signatures(tmp_path):
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    two = _save(helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two", [a, b], [y]),
                tmp_path / "two.onnx")
    with pytest.raises(StyleModelError, match="2 inputs"):
        NeuralStyle(two)
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 10])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 10])
    flat = _save(helper.make_graph([helper.make_node("Identity", ["v"], ["w"])], "flat", [v], [w]),
                 tmp_path / "flat.onnx")
    with pytest.raises(StyleModelError, match=r"expected a float tensor 1x3xHxW"):
        NeuralStyle(flat)
    g = helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, 1, "H", "W"])
    h = helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 1, "H", "W"])
    grey = _save(helper.make_graph([helper.make_node("Identity", ["g"], ["h"])], "grey", [g], [h]),
                 tmp_path / "grey.onnx")
    with pytest.raises(StyleModelError, match="one RGB image"):
        NeuralStyle(grey)
    with pytest.raises(StyleError, match="input_range"):
        NeuralStyle(inverter_model(tmp_path / "inv.onnx"), input_range="0-100")


# ----------------------------------------------------------------- OpenCV presets, measured


def laplacian_var(img: Image.Image) -> float:
    return float(cv2.Laplacian(np.asarray(img.convert("L")), cv2.CV_64F).var())


def scene(noise: float = 8.0, seed: int = 0) -> Image.Image:
    """A grey table with a red square (edges at x = 40 and 120) and camera noise."""
    arr = np.full((160, 200, 3), (150, 150, 150), np.float32)
    arr[40:120, 40:120] = (200, 40, 40)
    arr += np.random.default_rng(seed).normal(0, noise, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def test_every_preset_keeps_size_and_changes_the_image():
    img = scene()
    for name in PRESETS:
        out = apply_preset(img, name)
        assert out.size == img.size, name
        assert out.mode == ("L" if name == "pencil_grey" else "RGB"), name
        assert np.abs(np.asarray(out.convert("RGB"), np.int16) - np.asarray(img, np.int16)).mean() > 1.0, name


def test_smoothing_presets_remove_noise_but_keep_the_edge():
    img = scene(noise=10.0)
    for name in ("smooth", "stylization", "cartoon"):
        out = np.asarray(apply_preset(img, name), np.float32)
        flat = out[60:100, 60:100]  # inside the red square
        assert flat.std(axis=(0, 1)).max() < 0.5 * 10.0, name
        assert out[80, 80, 0] - out[80, 20, 0] > 25, name  # red square still stands out from the grey


def test_pencil_sketch_is_light_with_dark_lines_at_edges():
    grey = np.asarray(apply_preset(scene(noise=2.0), "pencil_grey"), np.float32)
    assert grey[60:100, 60:100].mean() > 180  # paper inside a flat area

    def darkest_per_row(x0: int) -> float:  # the pencil line across an 8-pixel band, row by row
        return float(grey[50:110, x0:x0 + 8].min(axis=1).mean())

    inside = darkest_per_row(76)  # no edge there: only the paper's grain
    assert darkest_per_row(36) < inside - 20 and darkest_per_row(116) < inside - 20
    colour = np.asarray(apply_preset(scene(noise=2.0), "pencil_colour"), np.float32)
    r, g, b = colour[60:100, 60:100].reshape(-1, 3).mean(axis=0)
    assert r > g + 30 and r > b + 30  # the red square stays red


def test_detail_enhance_raises_local_contrast():
    soft = Image.fromarray(cv2.GaussianBlur(np.asarray(scene(noise=6.0)), (0, 0), 1.5), "RGB")
    assert laplacian_var(apply_preset(soft, "detail_enhance")) > 1.5 * laplacian_var(soft)


def test_cartoon_outlines_and_flat_colours():
    img = scene(noise=6.0)
    out = np.asarray(apply_preset(img, "cartoon"), np.int16)
    edge_cols = out[50:110, 36:44].sum(axis=2).min(axis=1)  # darkest pixel of each row across the left edge
    assert (edge_cols < 60).mean() > 0.9  # a black outline along the edge
    inside = out[55:105, 55:105].reshape(-1, 3)
    assert len(np.unique(inside, axis=0)) < len(np.unique(np.asarray(img)[55:105, 55:105].reshape(-1, 3), axis=0)) / 10


def test_presets_keep_alpha_and_accept_grey():
    rgba = scene().convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    for name in ("pencil_grey", "cartoon"):
        out = apply_preset(rgba, name)
        assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], np.asarray(rgba)[..., 3])
    grey = apply_preset(scene().convert("L"), "smooth")
    assert grey.mode == "RGB" and grey.size == (200, 160)


def test_unknown_preset_and_tiny_image():
    with pytest.raises(StyleError, match="unknown style preset 'oil'.*stylization.*cartoon"):
        apply_preset(scene(), "oil")
    with pytest.raises(StyleError, match="at least 2x2"):
        apply_preset(Image.new("RGB", (1, 5)), "smooth")
