"""The HTTP API's image tools, web import and job status (mounted by :func:`api.create_app`, same auth rules).

* ``POST /images/{id}/versions`` ``{"recipe": [{"op": "crop", "box": [x0, y0, x1, y1]}, ...]}``: a new version;
  the operations and their parameters are those of :mod:`utils.tools.ops` (style presets are ``{"op": "style",
  "preset": "cartoon"}``).
* ``POST /images/{id}/background`` ``{"method": "auto|reference|grabcut|u2net", "reference_image_id": 1,
  "rect": [x0, y0, x1, y1], "output": "transparent|white|colour", "colour": "#00b140"}``: the cut-out as a version.
* ``POST /images/{id}/style`` ``{"preset": "cartoon"}`` or ``{"neural": true}`` (STYLE_MODEL_FILE).
* ``GET /images/{id}/versions``; ``GET /images/{id}/labels``; ``POST /images/{id}/labels`` (label it now).
* ``POST /images/{id}/objects`` ``{"min_score": 0.5, "save": false}``: COCO objects with boxes (the detector's
  weights: DETECTOR_WEIGHTS_FILE or torchvision's in the torch hub cache); with ``save`` the image with the boxes
  drawn is kept as a version.
* ``POST /imports`` ``{"url": "https://...", "collection": "name", "select": ["image URL", ...]}``.
* ``GET /jobs``: each scheduled job's last run, result, error and next run; which process holds the lease.

New versions answer 201 with the image (``file_url`` to download it). Errors are ``{"detail": "..."}``: 404
unknown image, 409 image in the trash, 413 image or result over TOOLS_MAX_PIXELS, 422 bad recipe or parameters,
503 when the tools are busy or labels have no pretrained weights (the detail says how to get them); an import
answers the page's problem with 400/403/413/415/502/504.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from utils.config import Settings
from utils.jobs import JobStatus
from utils.storage import ImageRecord, OrderNumberError, Store, StorageError

MAX_TOOL_JSON = 64 * 1024
ImageId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="image id (1 to 2^63-1)")]


class LabelOut(BaseModel):
    name: str
    score: float = Field(description="confidence 0..1")
    model: str


class VersionRequest(BaseModel):
    recipe: list[dict[str, Any]] = Field(description="operations applied in order (see utils/tools/ops.py)",
                                         examples=[[{"op": "crop", "box": [0, 0, 640, 480]},
                                                    {"op": "rotate", "degrees": 90}]])


class BackgroundRequest(BaseModel):
    method: Literal["auto", "reference", "grabcut", "u2net"] = "auto"
    reference_image_id: int | None = Field(None, ge=1, description="the empty station (default: the order's "
                                                                    "first frame)")
    rect: tuple[float, float, float, float] | None = Field(None, description="x0, y0, x1, y1 around the object")
    output: Literal["transparent", "white", "colour"] = "transparent"
    colour: str | tuple[int, int, int] = Field("#ffffff", description="background colour for output 'colour'")


class StyleRequest(BaseModel):
    preset: str | None = Field(None, description="stylization, pencil_grey, pencil_colour, detail_enhance, smooth, "
                                                 "cartoon")
    neural: bool = Field(False, description="use the neural style model (STYLE_MODEL_FILE)")


class ObjectsRequest(BaseModel):
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="lowest score of an object reported (0..1)")
    save: bool = Field(False, description="keep the image with the boxes drawn as a version")


class ObjectOut(BaseModel):
    name: str = Field(description="COCO class")
    score: float = Field(description="confidence 0..1")
    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in the image's pixels")


class ObjectsOut(BaseModel):
    model: str
    objects: list[ObjectOut]
    version: Any = Field(None, description="the version with the boxes drawn (save: true), else null")


class ImportRequest(BaseModel):
    url: str = Field(description="the web page (http/https)")
    collection: str = Field(description="the collection the images go into (made if new)")
    select: list[str] | None = Field(None, description="only these image URLs of the page (default: all)")


class SkippedOut(BaseModel):
    url: str
    reason: str


class JobsOut(BaseModel):
    lease_holder: str | None = Field(description="the process running the jobs (host:pid:tag), null if none")
    lease_expires: datetime | None
    jobs: list[JobStatus]


async def small_json(request: Request) -> None:
    """413 for a tool request body above :data:`MAX_TOOL_JSON` (a recipe is a few hundred bytes)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_TOOL_JSON:
        raise HTTPException(413, f"request too large: at most {MAX_TOOL_JSON:,} bytes of JSON")


def tools_router(settings: Settings, store: Callable[[], Store], auth: list[Any],
                 image_out: Callable[[ImageRecord], Any], image_model: type[BaseModel]) -> APIRouter:
    """The routes above, using ``store()`` and answering images as ``image_out(rec)``."""
    from utils.tools.background import BackgroundError
    from utils.tools.labels import DetectorUnavailable, LabelsUnavailable
    from utils.tools.ops import RecipeError
    from utils.tools.service import ToolsBusy, cut_out, detect_objects, edit, get_detector, label
    from utils.tools.versions import ToolInputError

    router = APIRouter()
    write = [*auth, Depends(small_json)]

    def source(image_id: int) -> ImageRecord:
        try:
            rec = store().get_image(image_id)
        except KeyError:
            raise HTTPException(404, f"no image with id {image_id}") from None
        if rec.state != "ok":
            raise HTTPException(409, f"image {image_id} is in the trash; restore it first")
        return rec

    def run(action: Callable[[], ImageRecord]) -> ImageRecord:
        try:
            return action()
        except (RecipeError, BackgroundError, ToolInputError) as err:
            too_large = "TOOLS_MAX_PIXELS" in str(err) or "the limit of" in str(err)
            raise HTTPException(413 if too_large else 422, str(err)) from None
        except ToolsBusy as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "10"}) from None

    @router.post("/images/{image_id}/versions", status_code=201, response_model=image_model, tags=["image tools"],
                 dependencies=write)
    def make_version(image_id: ImageId, body: VersionRequest) -> Any:
        """Apply an editing recipe to the image; the result is a new version (the image stays as it is)."""
        rec = source(image_id)
        return image_out(run(lambda: edit(store(), settings, rec.id, body.recipe, wait=30)))

    @router.get("/images/{image_id}/versions", response_model=list[image_model], tags=["image tools"],
                dependencies=auth)
    def list_versions(image_id: ImageId) -> Any:
        """The versions made from the image, oldest first."""
        try:
            store().get_image(image_id)
        except KeyError:
            raise HTTPException(404, f"no image with id {image_id}") from None
        return [image_out(v) for v in store().versions_of([image_id]).get(image_id, [])]

    @router.post("/images/{image_id}/background", status_code=201, response_model=image_model,
                 tags=["image tools"], dependencies=write)
    def background(image_id: ImageId, body: BackgroundRequest) -> Any:
        """Remove the background; the cut-out is a new version (PNG with transparency, or on a colour)."""
        rec = source(image_id)
        if body.reference_image_id is not None:
            source(body.reference_image_id)

        def act() -> ImageRecord:
            _, version, _ = cut_out(store(), settings, rec.id, method=body.method,
                                    reference_id=body.reference_image_id, rect=body.rect, output=body.output,
                                    colour=body.colour, wait=30)
            return version  # type: ignore[return-value]
        return image_out(run(act))

    @router.post("/images/{image_id}/style", status_code=201, response_model=image_model, tags=["image tools"],
                 dependencies=write)
    def style(image_id: ImageId, body: StyleRequest) -> Any:
        """Apply a style effect; the result is a new version."""
        rec = source(image_id)
        if body.neural == (body.preset is not None):
            raise HTTPException(422, 'give either "preset" or "neural": true')
        if body.neural and not settings.STYLE_MODEL_FILE:
            raise HTTPException(422, "no neural style model: set STYLE_MODEL_FILE to a fast-neural-style .onnx file")
        step = ({"op": "neural_style", "model": str(settings.STYLE_MODEL_FILE)} if body.neural
                else {"op": "style", "preset": body.preset})
        return image_out(run(lambda: edit(store(), settings, rec.id, [step], wait=30)))

    @router.get("/images/{image_id}/labels", response_model=list[LabelOut], tags=["image tools"], dependencies=auth)
    def get_labels(image_id: ImageId) -> Any:
        """The image's stored labels, best first (empty until labelled)."""
        try:
            store().get_image(image_id)
        except KeyError:
            raise HTTPException(404, f"no image with id {image_id}") from None
        return [LabelOut(name=n, score=sc, model=m) for n, sc, m in store().labels_of([image_id]).get(image_id, [])]

    @router.post("/images/{image_id}/labels", response_model=list[LabelOut], tags=["image tools"],
                 dependencies=write)
    def make_labels(image_id: ImageId) -> Any:
        """Label the image now (top-5 ImageNet classes of MobileNetV3-small) and store them."""
        rec = source(image_id)
        try:
            labels = label(store(), settings, rec.id, wait=30)
        except LabelsUnavailable as err:
            raise HTTPException(503, f"labels are unavailable: {err}") from None
        except ToolInputError as err:
            raise HTTPException(422, str(err)) from None
        except ToolsBusy as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "10"}) from None
        return [LabelOut(name=n, score=sc, model=m) for n, sc, m in labels]

    @router.post("/images/{image_id}/objects", response_model=ObjectsOut, tags=["image tools"], dependencies=write)
    def objects(image_id: ImageId, body: ObjectsRequest) -> Any:
        """COCO objects in the image with their boxes (SSDlite320-MobileNetV3-large); with ``save`` the image with
        the boxes drawn becomes a new version."""
        rec = source(image_id)
        try:
            detector = get_detector(settings)
            found, _, version = detect_objects(store(), settings, rec.id, body.min_score, save=body.save, wait=30)
        except DetectorUnavailable as err:
            raise HTTPException(503, f"object detection is unavailable: {err}") from None
        except ToolInputError as err:
            raise HTTPException(422, str(err)) from None
        except ToolsBusy as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "10"}) from None
        return {"model": detector.model_name,
                "objects": [ObjectOut(name=d.name, score=d.score, box=d.box) for d in found],
                "version": image_out(version) if version is not None else None}

    @router.post("/imports", status_code=201, tags=["import"], dependencies=write)
    def import_from_page(body: ImportRequest) -> Any:
        """Import the images of a web page into a collection (robots.txt, limits and the address rules of the
        URL fetcher apply). Answers what was imported and what was skipped, with why."""
        from utils.tools.importer import import_page
        from utils.tools.web_import import WebImportError

        try:
            preview, result = import_page(store(), settings, body.url, body.collection, body.select)
        except WebImportError as err:
            raise HTTPException(err.status, f"the page cannot be used: {err}") from None
        except OrderNumberError as err:
            raise HTTPException(422, f"collection: {err}") from None
        except StorageError as err:
            raise HTTPException(503, str(err)) from None
        return {"collection_id": result.collection_id, "page_url": preview.final_url, "message": preview.message,
                "imported": [image_out(r) for r in result.saved],
                "skipped": [SkippedOut(url=u, reason=why) for u, why in result.skipped]}

    @router.get("/jobs", response_model=JobsOut, tags=["service"], dependencies=auth)
    def jobs() -> Any:
        """The scheduled jobs: last run, duration, result or error, next run; and who runs them."""
        from datetime import timezone

        from utils.jobs import LEASE, default_jobs, job_status

        st = store()
        holder = st.lease_holder(LEASE)
        rows = job_status(st, default_jobs(st, settings))
        return JobsOut(
            lease_holder=holder[0] if holder else None,
            lease_expires=datetime.fromtimestamp(holder[1], timezone.utc) if holder else None,
            jobs=rows)

    return router
