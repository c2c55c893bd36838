"""The Camera settings page (admin) with AppTest against the adapter simulator on loopback: validation through the
adapter's model, the test shot, saving (a restart keeps them), resetting, a running order, the adapter's own answers."""

from __future__ import annotations

import json
import logging

import pytest
from streamlit.testing.v1 import AppTest

import ImageProcessingThread
from tests.conftest import ROOT, restart_engines, shown, wait_for
from utils.auth import User
from utils.demo_adapter import DemoAdapterServer, synthetic_frames

APP = str(ROOT / "app.py")
PAGE = "pages/camera.py"
ENV_PARAMS = {"pixel_format": "Mono8", "exposure_time_microseconds": 1000}


@pytest.fixture()
def adapter():
    server = DemoAdapterServer(frames=synthetic_frames(4, (320, 240))).start()
    yield server
    server.stop()


@pytest.fixture()
def env(app_env, monkeypatch, adapter):
    monkeypatch.setenv("CAMERA_ADDRESS", adapter.url)
    monkeypatch.setenv("CAMERA_PARAMS", json.dumps(ENV_PARAMS))
    monkeypatch.setenv("CAMERA_TIMEOUT", "3")
    monkeypatch.setenv("IMAGES_PER_SECOND", "10")
    monkeypatch.setenv("DUMMY_USER", "anna")  # a login is configured; the tests put the user into the session
    monkeypatch.setenv("DUMMY_PW", "not-used-here")
    return app_env


def open_page(user: User = User("anna", "admin")) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = user
    at.run()
    return at.switch_page(PAGE).run()


def errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def worker() -> ImageProcessingThread.CaptureWorker:
    (w,) = ImageProcessingThread._workers.values()
    return w


def test_a_value_the_adapter_would_refuse_names_the_field_and_what_it_accepts(env):
    at = open_page()
    assert not at.exception and not errors(at)
    assert at.text_input(key="cam_exposure_time_microseconds").value == "1000"  # CAMERA_PARAMS are the defaults
    assert at.selectbox(key="cam_pixel_format").value == "Mono8"
    at.text_input(key="cam_exposure_time_microseconds").input("100")
    at.text_input(key="cam_quality").input("high").run()
    (message,) = errors(at)
    assert "Exposure time (µs) (exposure_time_microseconds): Input should be greater than or equal to 500" in message
    assert "It accepts a whole number of at least 500" in message
    assert "JPEG quality (quality): Input should be a valid integer" in message
    assert "a whole number from 10 to 100" in message
    assert at.button(key="camera_test").disabled and at.button(key="camera_save").disabled
    at.text_input(key="cam_exposure_time_microseconds").input("")  # empty: the adapter's default
    at.text_input(key="cam_quality").input("80").run()
    assert not errors(at) and not at.button(key="camera_test").disabled


def test_a_test_shot_shows_the_picture_saves_nothing_and_unlocks_save_for_exactly_those_values(env, adapter):
    from utils.storage import Store

    at = open_page()
    assert at.button(key="camera_save").disabled  # no test shot yet
    assert at.selectbox(key="cam_acquisition_mode").value == "adapter default"  # not sent: the adapter decides
    assert at.selectbox(key="cam_acquisition_mode").options[:3] == ["adapter default", "SingleFrame", "Continuous"]
    at.text_input(key="cam_exposure_time_microseconds").input("2500")
    at.selectbox(key="cam_acquisition_mode").set_value("Continuous")
    at.selectbox(key="cam_rotation_expand").set_value("yes")
    at.text_input(key="cam_quality").input("80").run()
    at.button(key="camera_test").click().run()
    assert not at.exception and not errors(at)
    sent = adapter.last_query()
    assert sent is not None and (sent["exposure_time_microseconds"], sent["acquisition_mode"], sent["quality"]) == (
        "2500", "Continuous", "80")
    assert sent["pixel_format"] == "Mono8" and sent["rotation_expand"] == "true" and "format" not in sent
    captions = [img.caption for e in at.get("image") for img in e.proto.imgs]
    assert "Test shot — nothing is saved" in captions
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Size"] == "320 x 240 px" and metrics["Took"].endswith(" s")
    assert any("Mono8 (grey)" in shown(c.value) for c in at.caption)
    assert Store(env).camera_params() is None and Store(env).list_orders() == []
    assert not at.button(key="camera_save").disabled
    at.text_input(key="cam_quality").input("81").run()  # another value: that one was not tried
    assert at.button(key="camera_save").disabled
    assert any("changed since this test shot" in c.value for c in at.caption)
    at.text_input(key="cam_quality").input("80").run()
    assert not at.button(key="camera_save").disabled


def save_tried(at: AppTest, **values: str) -> AppTest:
    for name, value in values.items():
        at.text_input(key=f"cam_{name}").input(value)
    at.run()
    at.button(key="camera_test").click().run()
    return at.button(key="camera_save").click().run()


def test_saved_parameters_are_used_now_and_after_a_restart_and_reset_drops_them(env, adapter):

    from communication import make_camera
    from utils.camera_params import effective_params
    from utils.config import load_settings
    from utils.storage import Store

    at = save_tried(open_page(), exposure_time_microseconds="3000", roi_right="0.5")
    assert not at.exception and not errors(at)
    assert any("The camera uses them now" in x.value for x in at.success)
    saved = Store(env).camera_params()
    assert saved is not None and saved.saved_by == "anna"
    assert saved.params == {"exposure_time_microseconds": 3000, "pixel_format": "Mono8", "roi_right": 0.5}
    assert "320 x 240 px" in (saved.test_shot or "")
    worker().camera.grab()  # the running dashboard's camera: the new values at once (no order runs)
    assert adapter.last_query()["exposure_time_microseconds"] == "3000"

    # a restart: a fresh store on the same database, the camera made from the settings
    fresh = Store(env)
    with make_camera(load_settings(), effective_params(load_settings(), fresh).params) as cam:
        cam.grab()
    assert adapter.last_query()["exposure_time_microseconds"] == "3000" and adapter.last_query()["roi_right"] == "0.5"
    # ... and the whole dashboard started again
    restart_engines()
    at = open_page()
    assert at.text_input(key="cam_exposure_time_microseconds").value == "3000"
    assert any("saved by **anna**" in c.value for c in at.caption)
    worker().camera.grab()
    assert adapter.last_query()["exposure_time_microseconds"] == "3000"

    at.button(key="camera_reset").click().run()
    assert not at.exception and Store(env).camera_params() is None
    assert any("Reset to CAMERA_PARAMS. The camera uses them now." in x.value for x in at.success)
    assert at.text_input(key="cam_exposure_time_microseconds").value == "1000"  # CAMERA_PARAMS again
    assert at.text_input(key="cam_roi_right").value == ""
    assert at.button(key="camera_reset").disabled
    worker().camera.grab()
    assert adapter.last_query()["exposure_time_microseconds"] == "1000" and "roi_right" not in adapter.last_query()


def test_while_an_order_runs_the_saved_parameters_apply_from_the_next_order(env, adapter):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = User("anna", "admin")
    at.run()
    at.text_input(key="order_number").input("CAM-1")
    at.button(key="button_start").click().run()
    w = worker()
    wait_for(lambda: w.snapshot().frames_seen >= 2, what="frames of the running order")
    at.switch_page(PAGE).run()
    assert any("CAM-1" in i.value and "apply from the next order" in i.value for i in at.info)
    at = save_tried(at, exposure_time_microseconds="4000")
    assert any("They apply from the next order" in x.value for x in at.success)
    assert adapter.concurrent_violations == 0  # the test shot took its turn between the order's frames
    seen = w.snapshot().frames_seen
    wait_for(lambda: w.snapshot().frames_seen >= seen + 2, what="more frames of the running order")
    assert w.running and w.snapshot().last_error is None
    assert adapter.last_query()["exposure_time_microseconds"] == "1000"  # the running order keeps its parameters
    w.stop()
    w.start("CAM-2", w.snapshot().options)
    seen = w.snapshot().frames_seen
    wait_for(lambda: w.snapshot().frames_seen >= seen + 1, what="frames of the next order")
    assert adapter.last_query()["exposure_time_microseconds"] == "4000"
    w.stop()


def test_the_adapter_s_health_and_camera_info_are_shown(env, adapter):
    at = open_page()
    tables = [d.value for d in at.dataframe]
    rows = {tuple(r) for t in tables for r in t.itertuples(index=False)}
    assert ("status", "ok") in rows  # /health
    assert ("Name", "Emulation") in rows and ("SerialNumber", "0815-0000") in rows  # /basler/get-camera-info
    adapter.info_fault = "status:503"
    at.button(key="camera_adapter_refresh").click().run()
    assert any("HTTP 503" in e for e in errors(at))
    assert len(at.dataframe) == 1  # /health still answers


def test_an_adapter_that_is_down_gets_clear_messages_and_saving_without_a_test_shot_is_explicit(env, adapter, caplog):
    from utils.storage import Store

    adapter.down()
    at = open_page()
    assert not at.exception
    down = [e for e in errors(at) if "cannot reach the camera adapter" in e and "CAMERA_ADDRESS" in e]
    assert len(down) == 2 and not at.dataframe  # /health and /basler/get-camera-info
    at.text_input(key="cam_exposure_time_microseconds").input("5000").run()
    at.button(key="camera_test").click().run()
    assert any("The test shot failed" in e and "cannot reach the camera adapter" in e for e in errors(at))
    assert at.button(key="camera_save").disabled
    at.checkbox(key="camera_save_untested").check().run()
    with caplog.at_level(logging.INFO, logger="utils.camera_params"):
        at.button(key="camera_save").click().run()
    saved = Store(env).camera_params()
    assert saved is not None and saved.test_shot is None and saved.params["exposure_time_microseconds"] == 5000
    assert any("saved by anna (without a test shot)" in r.getMessage()
               and "exposure_time_microseconds: 1000 -> 5000" in r.getMessage() for r in caplog.records)
    assert any("saved without a test shot" in c.value for c in at.caption)


def test_an_operator_cannot_open_the_camera_page(env):
    from utils.navigation import page_for_script, pages_for

    operator = User("ole", "operator")
    assert page_for_script(PAGE) not in pages_for(operator)
    assert page_for_script(PAGE) in pages_for(User("anna", "admin"))
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_page(operator)  # the operator's navigation has no such page
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=60)  # run past the navigation: the page's own check
    at.session_state["auth_user"] = operator
    at.run()
    assert not at.exception
    assert any("for administrators" in e for e in errors(at))
    assert not [t for t in at.text_input if (t.key or "").startswith("cam_")] and not at.dataframe


def test_the_store_keeps_who_saved_what_and_when(store):
    assert store.camera_params() is None and store.clear_camera_params() is False
    first = store.save_camera_params({"quality": 90}, "anna", "320 x 240 px")
    again = store.save_camera_params({"quality": 70, "pixel_format": "BayerRG8"}, "bert", None)
    got = store.camera_params()
    assert got == again and got.params == {"quality": 70, "pixel_format": "BayerRG8"} and got.saved_by == "bert"
    assert got.test_shot is None and got.saved_at >= first.saved_at
    assert store.clear_camera_params() is True and store.camera_params() is None


def test_parameters_saved_that_no_longer_validate_fall_back_to_camera_params(store, monkeypatch):
    from utils.camera_params import effective_params
    from utils.config import load_settings

    settings = load_settings({"CAMERA_PARAMS": json.dumps(ENV_PARAMS)})
    store.save_camera_params({"quality": 5}, "anna", None)  # as if the adapter's bounds had changed since
    in_effect = effective_params(settings, store)
    assert in_effect.params == settings.CAMERA_PARAMS
    assert "JPEG quality (quality)" in (in_effect.problem or "") and "reset them" in (in_effect.problem or "")


def test_the_adapter_s_answers_and_refusals_become_messages_that_say_what_to_do():
    from communication import BaslerAdapterCamera
    from DataModels_BaslerCameraAdapter import TakePhotoParams
    from utils.camera_params import adapter_status, ask_adapter, take_test_shot

    with DemoAdapterServer(tokens=["tok-1"], camera_info={"Name": "acA1300", "SerialNumber": "24339728",
                                                         "Device": {"Vendor": "Basler"}}) as server:
        health, info = adapter_status(BaslerAdapterCamera(server.url, timeout=2.0))
        assert "requires a token: set CAMERA_TOKEN" in health.error and "HTTP 401" in info.error
        camera = BaslerAdapterCamera(server.url, TakePhotoParams(serial_number=24339728), token="tok-1", timeout=2.0)
        health, info = adapter_status(camera)
        assert health.answer == {"status": "ok"} and info.answer["Device"] == {"Vendor": "Basler"}
        assert server.last_query("/basler/get-camera-info") == {"serial_number": "24339728"}  # the camera in use
        other = ask_adapter(camera, "/basler/get-camera-info", {"serial_number": 1})
        assert "HTTP 500" in other.error and "unknown serial_number" in other.error
        server.info_fault = "garbage"
        assert "answered no JSON" in ask_adapter(camera, "/basler/get-camera-info").error
        server.inject("no_image")
        shot = take_test_shot(camera, TakePhotoParams(exposure_time_microseconds=900))
        assert not shot.ok and "delivered no image in time" in shot.error and "failed after" in shot.summary
        assert camera.params.exposure_time_microseconds is None  # a test shot leaves the camera's own as they are


def test_adapter_answers_are_shown_as_rows():
    from utils.camera_params import readable

    assert readable({"Name": "acA1300", "Device": {"IP": "10.0.0.5", "Ports": [1, 2]}, "Empty": {}}) == [
        ("Name", "acA1300"), ("Device.IP", "10.0.0.5"), ("Device.Ports", "[1, 2]"), ("Empty", "{}")]
    assert readable(["a", 1]) == [("answer", '["a", 1]')] and readable("up") == [("answer", "up")]
