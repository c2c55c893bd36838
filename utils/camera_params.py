"""The camera adapter's parameters as the Camera settings page edits them: the form's fields (from the adapter's own
pydantic model, :class:`TakePhotoParams`), validation with a message per field, the test shot, saving and resetting,
and what the adapter says of itself (``/health``, ``/basler/get-camera-info``).

Parameters saved here (in the station database, :meth:`utils.storage.Store.save_camera_params`) replace
``CAMERA_PARAMS`` as a whole (a field left empty is the adapter's default, not the environment's value) until they
are reset; the engine builds the camera with them (:func:`effective_params`), after a restart too."""

from __future__ import annotations

import json
import logging
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image
from pydantic import ValidationError

from communication import BaslerAdapterCamera, CameraError, Frame
from DataModels_BaslerCameraAdapter import TakePhotoParams
from utils.camera_frames import grab_image
from utils.storage import SavedCameraParams, Store

if TYPE_CHECKING:
    from ImageProcessingThread import CaptureWorker
    from utils.config import Settings

logger = logging.getLogger(__name__)

Kind = Literal["choice", "bool", "int", "float", "text"]
#: A choice left to the adapter (the parameter is not sent); text fields are empty instead.
DEFAULT = "adapter default"

#: The form's sections: (title, the fields in it), in the order the page shows them.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Exposure and acquisition", ("exposure_time_microseconds", "acquisition_mode", "timeout_ms")),
    ("Pixel format and colour", ("pixel_format", "convert_to_format")),
    ("Image", ("format", "quality", "rotation_angle", "rotation_expand")),
    ("Region of interest", ("roi_left", "roi_top", "roi_right", "roi_bottom")),
    ("Which camera and how it sends", ("serial_number", "ip_address", "subnet_mask", "transmission_type",
                                       "destination_ip_address", "destination_port")),
)

_LABELS = {
    "exposure_time_microseconds": "Exposure time (µs)", "acquisition_mode": "Acquisition mode",
    "timeout_ms": "Grab timeout (ms)", "pixel_format": "Pixel format", "convert_to_format": "Convert to",
    "format": "Image format", "quality": "JPEG quality", "rotation_angle": "Rotation (degrees)",
    "rotation_expand": "Expand to hold the rotated image", "roi_left": "ROI left", "roi_top": "ROI top",
    "roi_right": "ROI right", "roi_bottom": "ROI bottom", "serial_number": "Serial number",
    "ip_address": "IP address", "subnet_mask": "Subnet mask", "transmission_type": "Transmission type",
    "destination_ip_address": "Multicast destination address", "destination_port": "Multicast destination port",
}


@dataclass(frozen=True)
class ParamField:
    """One parameter of :class:`TakePhotoParams` as a form field: its kind, allowed values and bounds."""

    name: str
    label: str
    kind: Kind
    description: str
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def options(self) -> tuple[Any, ...]:
        """A choice's options for a select box: :data:`DEFAULT` first (unset), then the allowed values."""
        return (DEFAULT, *(("yes", "no") if self.kind == "bool" else self.choices))

    @property
    def accepts(self) -> str:
        """What the field accepts, in words (for the help and the error message)."""
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "yes or no"
        if self.kind == "text":
            return "text"
        what = "a whole number" if self.kind == "int" else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{what} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{what} of at least {self.minimum:g}"
        return what


def _field(name: str) -> ParamField:
    """The form field of one model parameter, read from the model (its type, Literal values and Field bounds)."""
    info = TakePhotoParams.model_fields[name]
    inner = next(a for a in typing.get_args(info.annotation) if a is not type(None))
    minimum = maximum = None
    if typing.get_origin(inner) is typing.Annotated:
        base, *extras = typing.get_args(inner)
        for meta in (m for extra in extras for m in getattr(extra, "metadata", [extra])):
            minimum = getattr(meta, "ge", minimum)
            maximum = getattr(meta, "le", maximum)
        inner = base
    label = _LABELS.get(name, name)
    description = info.description or ""
    if typing.get_origin(inner) is Literal:
        return ParamField(name, label, "choice", description, typing.get_args(inner))
    kind: Kind = {bool: "bool", int: "int", float: "float"}.get(inner, "text")  # type: ignore[assignment]
    return ParamField(name, label, kind, description, minimum=minimum, maximum=maximum)


#: Every parameter of the model, by name (each appears in exactly one of :data:`SECTIONS`).
FIELDS: dict[str, ParamField] = {name: _field(name) for _, names in SECTIONS for name in names}
assert set(FIELDS) == set(TakePhotoParams.model_fields), "a parameter of TakePhotoParams is missing from SECTIONS"


class CameraParamsError(ValueError):
    """Parameters the adapter would refuse: ``str(err)`` names each field, what was wrong and what it accepts."""


def explain(err: ValidationError) -> str:
    """One line per refused field: its label and name, what is wrong, and what it accepts."""
    lines = []
    for e in err.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else ""
        spec = FIELDS.get(name)
        if spec is None:
            lines.append(f"{name or 'parameters'}: {e['msg']}")
            continue
        msg = f"{e.get('input')!r} is not one of its values" if e["type"] == "literal_error" else e["msg"]
        lines.append(f"{spec.label} ({name}): {msg}. It accepts {spec.accepts}; leave it empty for the adapter's "
                     "default.")
    return "\n".join(lines)


def params_from_form(values: Mapping[str, Any]) -> TakePhotoParams:
    """The form's values (text, a choice, yes/no; None, empty or :data:`DEFAULT` for the adapter's default) as
    TakePhotoParams; raises CameraParamsError with one line per field the adapter would refuse."""
    raw: dict[str, Any] = {}
    for name in FIELDS:
        value = values.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "" or value == DEFAULT:
            continue
        raw[name] = value
    try:
        return TakePhotoParams.model_validate(raw)
    except ValidationError as err:
        raise CameraParamsError(explain(err)) from None


def form_values(params: TakePhotoParams) -> dict[str, Any]:
    """The form's initial values for ``params``: choices as they are, yes/no, numbers and text as text; unset:
    :data:`DEFAULT` for a choice, "" for text."""
    out: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        value = getattr(params, name)
        if spec.kind in ("choice", "bool") and value is None:
            out[name] = DEFAULT
        elif spec.kind == "bool":
            out[name] = "yes" if value else "no"
        elif spec.kind == "choice":
            out[name] = value
        elif value is None:
            out[name] = ""
        else:
            out[name] = f"{value:g}" if isinstance(value, float) else str(value)
    return out


def params_dict(params: TakePhotoParams) -> dict[str, Any]:
    """The parameters that are set, as stored and compared (``TakePhotoParams.model_dump`` without the unset)."""
    return params.model_dump(exclude_none=True)


# ---------------------------------------------------------------- in effect, saved, reset


@dataclass(frozen=True)
class InEffect:
    """The parameters the camera uses: the saved ones (``saved``) or CAMERA_PARAMS; ``problem`` when saved ones could
    not be used (they no longer validate)."""

    params: TakePhotoParams
    saved: SavedCameraParams | None
    problem: str | None = None


def effective_params(settings: Settings, store: Store) -> InEffect:
    """The saved parameters where there are valid ones, else CAMERA_PARAMS (the environment's defaults)."""
    saved = store.camera_params()
    if saved is None:
        return InEffect(settings.CAMERA_PARAMS, None)
    try:
        return InEffect(TakePhotoParams.model_validate(saved.params), saved)
    except ValidationError as err:
        problem = (f"The camera parameters saved by {saved.saved_by} cannot be used ({explain(err)}); CAMERA_PARAMS "
                   "apply. Save valid ones on the Camera settings page, or reset them there.")
        logger.error(problem)
        return InEffect(settings.CAMERA_PARAMS, saved, problem)


def changes(old: TakePhotoParams, new: TakePhotoParams) -> list[str]:
    """``name: old -> new`` for every parameter that differs ("default" where unset)."""
    a, b = params_dict(old), params_dict(new)
    return [f"{name}: {a.get(name, 'default')} -> {b.get(name, 'default')}"
            for name in FIELDS if a.get(name) != b.get(name)]


def save_params(store: Store, settings: Settings, worker: CaptureWorker, params: TakePhotoParams, user: str,
                shot: TestShot | None) -> tuple[SavedCameraParams, bool]:
    """Save ``params`` (tried by ``shot``; None: saved without a test shot) and hand them to the worker's camera:
    (what was saved, whether they apply now; False: from the next order, one runs). Logs what changed and who."""
    before = effective_params(settings, store).params
    saved = store.save_camera_params(params_dict(params), user, shot.summary if shot is not None else None)
    applied = worker.reconfigure_camera(params)
    logger.info("Camera parameters saved by %s (%s), %s: %s", user,
                f"test shot {shot.summary}" if shot is not None else "without a test shot",
                "in use now" if applied else "in use from the next order",
                "; ".join(changes(before, params)) or "nothing changed")
    return saved, applied


def reset_params(store: Store, settings: Settings, worker: CaptureWorker, user: str) -> bool:
    """Drop the saved parameters (CAMERA_PARAMS apply again) and hand those to the worker's camera: whether they apply
    now (False: from the next order). Logs what changed and who."""
    before = effective_params(settings, store).params
    store.clear_camera_params()
    applied = worker.reconfigure_camera(settings.CAMERA_PARAMS)
    logger.info("Camera parameters reset to CAMERA_PARAMS by %s, %s: %s", user,
                "in use now" if applied else "in use from the next order",
                "; ".join(changes(before, settings.CAMERA_PARAMS)) or "nothing changed")
    return applied


# ---------------------------------------------------------------- the test shot


@dataclass(frozen=True)
class TestShot:
    """One picture taken with ``params`` (nothing saved): the image and what it is, or why there is none."""

    __test__ = False  # not a pytest test class

    params: dict[str, Any]
    seconds: float
    image: Image.Image | None = None
    error: str | None = None
    content_type: str | None = None
    size_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.image is not None

    @property
    def pixel_format(self) -> str:
        """The camera's pixel format and the conversion asked for, and what arrived (colour or grey)."""
        fmt = self.params.get("pixel_format", "adapter default (Mono8)")
        convert = self.params.get("convert_to_format")
        arrived = {"L": "grey", "RGB": "colour", "RGBA": "colour"}.get(self.image.mode, self.image.mode) \
            if self.image is not None else "nothing"
        return f"{fmt}" + (f" -> {convert}" if convert else "") + f" ({arrived})"

    @property
    def summary(self) -> str:
        """One line: size, pixel format, encoding and time (what the saved parameters were tried with)."""
        if self.image is None:
            return f"failed after {self.seconds:.2f} s: {self.error}"
        kind = (self.content_type or "").removeprefix("image/") or "image"
        return (f"{self.image.width} x {self.image.height} px, {self.pixel_format}, {kind} "
                f"{self.size_bytes / 1024:.0f} KiB, {self.seconds:.2f} s")


class _OneShot:
    """The camera seen by :func:`grab_image` for one test shot: its next grab uses other parameters."""

    def __init__(self, camera: BaslerAdapterCamera, params: TakePhotoParams) -> None:
        self.camera, self.params = camera, params
        self.frame: Frame | None = None

    def grab(self) -> Frame:
        self.frame = self.camera.grab_with(self.params)
        return self.frame


def take_test_shot(camera: BaslerAdapterCamera, params: TakePhotoParams, max_side: int | None = 1280) -> TestShot:
    """One picture with ``params`` through the camera's connection (in turn with a running order's grabs);
    nothing is saved and the camera's own parameters stay as they are."""
    shot = _OneShot(camera, params)
    started = time.monotonic()
    image, problem = grab_image(shot, max_side)
    seconds = time.monotonic() - started
    frame = shot.frame
    size = len(frame.data) if frame is not None and frame.data is not None else 0
    got = problem if image is None else f"{image.width} x {image.height} {image.mode} in {seconds:.2f} s"
    logger.info("Test shot with %s: %s", params_dict(params) or "the adapter's defaults", got)
    return TestShot(params_dict(params), seconds, image, problem, frame.content_type if frame else None, size)


# ---------------------------------------------------------------- what the adapter says of itself


@dataclass(frozen=True)
class AdapterAnswer:
    """One GET to the adapter: its JSON answer, or the message why there is none."""

    path: str
    answer: Any = None
    error: str | None = None


def ask_adapter(camera: BaslerAdapterCamera, path: str, query: dict[str, Any] | None = None) -> AdapterAnswer:
    """``GET path`` on the adapter (in turn with the grabs): its answer, or a message saying what to do."""
    try:
        return AdapterAnswer(path, camera.get_json(path, query))
    except CameraError as err:
        logger.warning("Camera adapter %s: %s", path, err)
        return AdapterAnswer(path, error=str(err))


def adapter_status(camera: BaslerAdapterCamera) -> tuple[AdapterAnswer, AdapterAnswer]:
    """(``/health``, ``/basler/get-camera-info`` of the camera the parameters name: serial number or IP address)."""
    which = {k: v for k, v in params_dict(camera.params).items() if k in ("serial_number", "ip_address", "subnet_mask")}
    return ask_adapter(camera, "/health"), ask_adapter(camera, "/basler/get-camera-info", which or None)


def readable(answer: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A JSON answer as (name, value) rows: nested objects as ``a.b``, lists and scalars as text."""
    if isinstance(answer, dict):
        rows: list[tuple[str, str]] = []
        for key, value in answer.items():
            name = f"{prefix}{key}"
            rows += readable(value, name + ".") if isinstance(value, dict) and value else [(name, _text(value))]
        return rows
    return [(prefix.rstrip(".") or "answer", _text(answer))]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
