"""The HTTP API's view of the central archive (mounted where an archive is set; same auth rules as the rest).

* ``GET /archive/stations``: the stations that sent something, with when they were first and last seen.
* ``GET /archive/orders?station=&order_number=&limit=&offset=``: every station's runs, newest first.
* ``GET /archive/orders/by-number/{order_number}``: one order number with every station's run and its images.
* ``GET /archive/orders/by-number/{order_number}/zip``: the ZIP of that order over all stations (streamed).
* ``GET /archive/images/{id}``, ``GET /archive/images/{id}/file``: one archived image's row; its file, streamed
  from the object store through the API (``?redirect=true``: a presigned URL of the object store instead, valid
  ``expires_s`` seconds, where the store offers one).

503 with the reason while the central database or the object store cannot be reached; 404 for what is not there.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, Field

ArchiveId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="archived image id (1 to 2^63-1)")]


class StationOut(BaseModel):
    name: str
    first_seen: datetime
    last_seen: datetime


class ArchivedOrderOut(BaseModel):
    id: int
    station: str
    order_number: str
    folder: str
    kind: str
    mode: str
    status: str
    started_at: datetime
    closed_at: datetime | None
    n_images: int = 0


class ArchivedImageOut(BaseModel):
    id: int
    order_id: int
    station: str
    seq: int
    file_name: str
    state: str
    kind: str
    captured_at: datetime
    width: int | None
    height: int | None
    size_bytes: int
    md5: str
    object_key: str
    distance: float | None
    operation: dict[str, Any] | None = None
    file_url: str = Field(description="GET it for the file (streamed through the API)")


class OrderNumberOut(BaseModel):
    order_number: str
    stations: list[str]
    runs: list[ArchivedOrderOut]
    images: list[ArchivedImageOut]


def archive_router(open_archive: Callable[[], Any], auth: list[Any]) -> APIRouter:
    """The routes above; ``open_archive()`` gives the :class:`utils.archive.view.ArchiveAccess` (made on first use,
    and again after a failure)."""
    from utils.archive.central import CentralError
    from utils.archive.objects import ObjectNotFound, ObjectStoreError
    from utils.archive.view import archived_orders, order_images, order_zip_chunks

    router = APIRouter(prefix="/archive", tags=["archive"], dependencies=auth)
    held: dict[str, Any] = {}
    lock = threading.Lock()

    def archive() -> Any:
        with lock:
            if "access" not in held:
                try:
                    held["access"] = open_archive()
                except (CentralError, ObjectStoreError) as err:
                    raise HTTPException(503, f"the central archive is unavailable: {err}") from None
            return held["access"]

    def guarded(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ObjectNotFound as err:
            raise HTTPException(404, str(err)) from None
        except (CentralError, ObjectStoreError) as err:
            raise HTTPException(503, f"the central archive is unavailable: {err}") from None

    def image_out(row: dict[str, Any]) -> ArchivedImageOut:
        return ArchivedImageOut(**{k: row[k] for k in ArchivedImageOut.model_fields if k in row},
                                file_url=f"/archive/images/{row['id']}/file")

    @router.get("/stations", response_model=list[StationOut])
    def list_stations() -> Any:
        """The stations that sent something to the archive."""
        return guarded(lambda: archive().central.stations_seen())

    @router.get("/orders", response_model=list[ArchivedOrderOut])
    def list_orders(station: str | None = Query(None, description="only this station's"),
                    order_number: str | None = Query(None, description="only runs of this order number"),
                    limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0)) -> Any:
        """Every station's orders (each station's run of an order number is its own row), newest first."""
        rows = guarded(lambda: archive().central.list_orders(station=station))
        if order_number is not None:
            rows = [r for r in rows if r["order_number"] == order_number]
        return rows[offset: offset + limit]

    def by_number(order_number: str) -> Any:
        found = [o for o in guarded(lambda: archived_orders(archive().central, search=order_number))
                 if o.order_number == order_number]
        if not found:
            raise HTTPException(404, f"no archived order {order_number!r}")
        return found[0]

    @router.get("/orders/by-number/{order_number}", response_model=OrderNumberOut)
    def get_order_number(order_number: str) -> Any:
        """One order number: every station's run of it and all their kept images, in capture order."""
        order = by_number(order_number)
        images = guarded(lambda: order_images(archive().central, order))
        return OrderNumberOut(order_number=order.order_number, stations=order.stations,
                              runs=[ArchivedOrderOut(**{k: r[k] for k in ArchivedOrderOut.model_fields if k in r})
                                    for r in order.runs],
                              images=[image_out(r) for r in images])

    @router.get("/orders/by-number/{order_number}/zip", responses={200: {"content": {"application/zip": {}}}})
    def order_zip(order_number: str) -> StreamingResponse:
        """The order over all stations as a ZIP (``station/folder/file`` and ``images.csv``), streamed."""
        order = by_number(order_number)
        access = archive()
        safe = "".join(c if c.isalnum() or c in "-_.+#" else "_" for c in order_number)
        return StreamingResponse(order_zip_chunks(access.central, access.objects, order),
                                 media_type="application/zip",
                                 headers={"Content-Disposition": f'attachment; filename="{safe}.zip"'})

    def one(image_id: int) -> dict[str, Any]:
        row = guarded(lambda: archive().central.image(image_id))
        if row is None:
            raise HTTPException(404, f"no archived image with id {image_id}")
        return row

    @router.get("/images/{image_id}", response_model=ArchivedImageOut)
    def get_image(image_id: ArchiveId) -> Any:
        """One archived image's row."""
        return image_out(one(image_id))

    @router.get("/images/{image_id}/file", responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
    def image_file(image_id: ArchiveId, redirect: bool = Query(False, description="answer a presigned URL of the "
                                                                                  "object store (307) instead"),
                   expires_s: int = Query(600, ge=10, le=86_400)) -> Any:
        """The archived file, streamed from the object store (or a redirect to a presigned URL)."""
        row = one(image_id)
        access = archive()
        if redirect:
            url = guarded(lambda: access.objects.url(row["object_key"], expires_s))
            if url is None:
                raise HTTPException(409, "this object store has no presigned URLs: ask without redirect")
            return RedirectResponse(url, status_code=307)
        chunks = guarded(lambda: access.objects.read_chunks(row["object_key"]))
        media = mimetypes.guess_type(row["file_name"])[0] or "application/octet-stream"
        return StreamingResponse(chunks, media_type=media,
                                 headers={"Content-Disposition": f'inline; filename="{row["file_name"]}"',
                                          "ETag": f'"{row["md5"]}"'})

    return router
