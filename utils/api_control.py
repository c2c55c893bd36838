"""The HTTP API's control of capture: start an order, close it, keep the next frame, read the live state.

The engine (camera and worker) runs in exactly one process, the dashboard's (:mod:`utils.control.loop`). These
routes, served by ``python -m api``, queue a command in the station database and wait for the engine's answer
(:mod:`utils.control.queue`); the dashboard shows an order started this way like one started by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from utils.config import Settings
from utils.control import queue
from utils.storage import OrderRecord, Store

ENGINE_STALE_S = 5.0  # an engine that has not published for this long is taken as not running
POLL_S = 0.05  # how often the API looks for the engine's answer
UNDER_WAY_WAIT_S = 60.0  # how long the API still waits for a command the engine has begun (a close joins threads)
MAX_ID = 2**63 - 1


class StartOrder(BaseModel):
    """``POST /orders``: the order number and, optionally, options (else the station's defaults)."""

    model_config = ConfigDict(extra="forbid")
    order_number: str = Field(min_length=1, max_length=1000, examples=["4711-A"])
    mode: Literal["distinct images", "video"] | None = Field(
        None, description="default: OPTIONS_SAVE_AS_CHOICE_INIT_IDX")
    threshold: float | None = Field(None, description="distance threshold (OPTIONS_TH_MIN..OPTIONS_TH_MAX)")
    images_per_second: float | None = Field(None, description="IMAGES_PER_SECOND_MIN..IMAGES_PER_SECOND_MAX")
    resolution: int | None = Field(None, description="one of OPTIONS_IMAGE_RESOLUTION")


class LiveState(BaseModel):
    """``GET /orders/current``: what the engine does now (published about once a second)."""

    running: bool
    order: Any | None = Field(None, description="the running order (as GET /orders/{id}), null when none runs")
    started_by: str | None = Field(None, description="who started it when not the dashboard, e.g. 'api:operator'")
    threshold: float | None = None
    images_per_second: float | None = None
    resolution: int | None = None
    kept: int = Field(0, description="images kept for the order so far (distinct-image mode)")
    video_frames: int = 0
    frames_seen: int = 0
    achieved_fps: float = 0.0
    last_distance: float | None = None
    last_frame_at: str | None = None
    last_saved_image_id: int | None = None
    camera: str | None = None
    camera_error: str | None = Field(None, description="the camera's current problem, null while it delivers")
    camera_error_since: str | None = None
    engine: str = Field(description="the process that drives the camera (host:pid:id)")
    state_age_s: float = Field(description="seconds since the engine published this state")


def control_router(settings: Settings, store: Callable[[], Store], operator: list[Any],
                   order_out: Callable[[OrderRecord], BaseModel]) -> APIRouter:
    """The control routes; ``operator`` holds the dependencies that admit the operator and admin tokens."""
    router = APIRouter(tags=["capture control"])
    timeout = settings.CONTROL_TIMEOUT_S

    def limits(body: StartOrder) -> None:
        s = settings
        if body.threshold is not None and not s.OPTIONS_TH_MIN <= body.threshold <= s.OPTIONS_TH_MAX:
            raise HTTPException(422, f"threshold must lie between {s.OPTIONS_TH_MIN} and {s.OPTIONS_TH_MAX}")
        if body.images_per_second is not None and not (
                s.IMAGES_PER_SECOND_MIN <= body.images_per_second <= s.IMAGES_PER_SECOND_MAX):
            raise HTTPException(422, f"images_per_second must lie between {s.IMAGES_PER_SECOND_MIN} and "
                                     f"{s.IMAGES_PER_SECOND_MAX}")
        if body.resolution is not None and body.resolution not in s.OPTIONS_IMAGE_RESOLUTION:
            raise HTTPException(422, f"resolution must be one of {list(s.OPTIONS_IMAGE_RESOLUTION)}")

    async def engine_alive() -> queue.EngineState:
        found = await anyio.to_thread.run_sync(queue.engine_state, store())
        if found is None or found.age_s > ENGINE_STALE_S:
            since = "" if found is None else f" (last seen {found.age_s:.0f} s ago)"
            raise HTTPException(503, "the capture engine is not running" + since + ": it runs in the dashboard's "
                                     "process (streamlit run app.py, or the extract-unique-images service); start it "
                                     "and try again", headers={"Retry-After": "10"})
        return found

    async def run(action: queue.Action, payload: dict[str, Any], request: Request) -> queue.Answer:
        await engine_alive()
        who = f"api:{getattr(request.state, 'role', 'admin')}"
        command_id = await anyio.to_thread.run_sync(queue.submit, store(), action, payload, who, timeout)
        deadline = time.monotonic() + timeout
        while True:
            answer = await anyio.to_thread.run_sync(queue.answer_of, store(), command_id)
            if answer is not None:
                return answer
            if time.monotonic() >= deadline:
                if await anyio.to_thread.run_sync(queue.give_up, store(), command_id):
                    raise HTTPException(504, f"the capture engine did not take the command within {timeout:g} s "
                                             "(CONTROL_TIMEOUT_S); nothing was done, try again")
                if time.monotonic() >= deadline + UNDER_WAY_WAIT_S:
                    raise HTTPException(504, "the capture engine began the command but has not answered; see "
                                             "GET /orders/current for what it did")
            await anyio.sleep(POLL_S)

    def answered(answer: queue.Answer, extra: dict[str, Any] | None = None) -> JSONResponse:
        body = dict(answer.body)
        if answer.status < 300 and body.get("order_id") is not None:
            body["order"] = order_out(store().get_order(int(body["order_id"]))).model_dump(mode="json")
        if answer.status >= 400:
            body = {"detail": body.get("detail", "the capture engine refused the command")}
        return JSONResponse({**body, **(extra or {})}, status_code=answer.status)

    @router.get("/orders/current", response_model=LiveState, dependencies=operator,
                responses={503: {"description": "the capture engine is not running"}})
    async def current_order() -> LiveState:
        """What the engine does now: the running order (or none), its figures and the camera's state."""
        found = await engine_alive()
        state = found.state
        order = None
        if state.get("order_id") is not None:
            rec = await anyio.to_thread.run_sync(store().get_order, int(state["order_id"]))
            order = order_out(rec)
        fields = {k: v for k, v in state.items() if k in LiveState.model_fields and k not in ("order", "engine")}
        return LiveState(**fields, order=order, engine=found.holder, state_age_s=round(found.age_s, 2))

    @router.post("/orders", status_code=201, dependencies=operator,
                 responses={201: {"description": "started (or resumed): {order_id, order, options}"},
                            409: {"description": "an order runs already, or another process drives the camera"},
                            422: {"description": "a bad order number or option; detail says what to send"},
                            503: {"description": "the capture engine is not running, or the store failed"},
                            504: {"description": "the engine did not answer in time; nothing was done"}})
    async def start_order(body: StartOrder, request: Request) -> JSONResponse:
        """Start capturing an order with the station's camera, like Start on the dashboard (an order number that
        exists and is closed is resumed: new images are added to it)."""
        limits(body)
        payload = body.model_dump(exclude_none=True)
        if body.mode is None:
            payload.pop("mode", None)
        return answered(await run("start", payload, request))

    @router.post("/orders/current/save-image", dependencies=operator,
                 responses={201: {"description": "the next frame was kept: {order_id, image_id, order}"},
                            202: {"description": "the next frame the camera sends will be kept"},
                            409: {"description": "no order runs, or it records a video"}})
    async def save_image(request: Request) -> JSONResponse:
        """Keep the next frame whatever its distance, like Save image on the dashboard."""
        return answered(await run("save-image", {}, request))

    @router.post("/orders/{order_id}/close", dependencies=operator,
                 responses={200: {"description": "closed: {order_id, already_closed, kept, order, ...}"},
                            404: {"description": "no such order"}})
    async def close_order(request: Request,
                          order_id: int = Path(ge=1, le=MAX_ID, description="the order's id")) -> JSONResponse:
        """Close the order like Close order on the dashboard. Closing a closed order answers 200 with
        ``already_closed: true`` (a retried request does no harm)."""
        return answered(await run("close", {"order_id": order_id}, request))

    return router

