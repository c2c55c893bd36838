"""Camera sources against a real DemoAdapterServer on loopback (no mocks), plus folder and OpenCV sources."""

from __future__ import annotations

import io
import sys
import threading
import time
from datetime import timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
from PIL import Image
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `pytest` works too

from communication import (  # noqa: E402
    BaslerAdapterCamera,
    CameraError,
    CameraSource,
    FolderCamera,
    OpenCVCamera,
    SnapshotCamera,
    make_camera,
    sniff_image_type,
)
from DataModels_BaslerCameraAdapter import TakePhotoParams  # noqa: E402
from utils.config import load_settings  # noqa: E402
from utils.demo_adapter import DemoAdapterServer  # noqa: E402

TOKEN = "s3cret-token"


def encode(color: tuple[int, int, int], fmt: str = "JPEG", size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return [encode((200, 0, 0)), encode((0, 200, 0)), encode((0, 0, 200))]


@pytest.fixture
def server(frames):
    with DemoAdapterServer(frames=frames) as srv:
        yield srv


@pytest.fixture
def auth_server(frames):
    with DemoAdapterServer(frames=frames, tokens=[TOKEN]) as srv:
        yield srv


@pytest.fixture
def camera(server):
    cam = BaslerAdapterCamera(server.url, TakePhotoParams(), timeout=2.0)
    yield cam
    cam.close()


def grab_error(cam) -> CameraError:
    with pytest.raises(CameraError) as info:
        cam.grab()
    return info.value


# ---------------------------------------------------------------------------------------
# BaslerAdapterCamera: success
# ---------------------------------------------------------------------------------------


def test_grab_returns_jpeg_bytes_and_arrival_time(server, camera, frames):
    server.set_latency(0.1)
    before = time.time()
    frame = camera.grab()
    assert frame.data == frames[0]
    assert sniff_image_type(frame.data) == "jpeg"
    assert frame.content_type == "image/jpeg"
    assert frame.image is None
    assert frame.timestamp.tzinfo == timezone.utc
    assert before + 0.1 <= frame.timestamp.timestamp() <= time.time()  # when the answer arrived
    server.set_latency(0)
    assert frame.source == camera.name
    assert [camera.grab().data for _ in range(3)] == [frames[1], frames[2], frames[0]]  # cycles
    assert server.served == 4 and server.concurrent_violations == 0
    assert isinstance(camera, CameraSource)


def test_query_string_carries_the_parameters(server):
    params = TakePhotoParams(
        exposure_time_microseconds=2000,
        pixel_format="BayerRG8",
        convert_to_format="RGB",
        acquisition_mode="Continuous",
        rotation_expand=True,
        quality=80,
        timeout_ms=9000,
    )
    with BaslerAdapterCamera(server.url, params, timeout=2.0) as cam:
        cam.grab()
    url = urlsplit(server.paths[-1])
    assert url.path == "/basler/take-photo"
    assert {k: v[0] for k, v in parse_qs(url.query).items()} == {
        "exposure_time_microseconds": "2000",
        "pixel_format": "BayerRG8",
        "convert_to_format": "RGB",
        "acquisition_mode": "Continuous",
        "rotation_expand": "true",
        "quality": "80",
        "timeout_ms": "1900",  # capped below the client's 2 s timeout
    }


def test_address_forms_and_name(server):
    port = server.port
    for address in (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}/basler/take-photo"):
        cam = BaslerAdapterCamera(address, TakePhotoParams())
        assert cam.url == f"http://127.0.0.1:{port}/basler/take-photo"
        assert cam.name == f"Basler adapter http://127.0.0.1:{port}"
        assert cam.grab().data
        cam.close()
    assert all(urlsplit(p).path == "/basler/take-photo" for p in server.paths)
    cam = BaslerAdapterCamera(f"http://user:pw@127.0.0.1:{port}", token=TOKEN)
    assert TOKEN not in cam.name and "pw" not in cam.name


def test_token_is_sent(auth_server):
    with BaslerAdapterCamera(auth_server.url, token=TOKEN) as cam:
        assert sniff_image_type(cam.grab().data) == "jpeg"
        assert TOKEN not in cam.name
    assert auth_server.auth_headers == [f"Bearer {TOKEN}"]


# ---------------------------------------------------------------------------------------
# BaslerAdapterCamera: every error maps to a kind and a message that says what to do
# ---------------------------------------------------------------------------------------


def test_missing_token(auth_server):
    err = grab_error(BaslerAdapterCamera(auth_server.url))
    assert (err.kind, err.status) == ("auth", 401)
    assert "requires a token: set CAMERA_TOKEN" in str(err) and "Not authenticated" in str(err)
    assert auth_server.requests == 1  # not retried


def test_wrong_token(auth_server):
    err = grab_error(BaslerAdapterCamera(auth_server.url, token="wrong-one"))
    assert (err.kind, err.status) == ("auth", 401)
    assert "refused the token: check CAMERA_TOKEN" in str(err) and "Invalid access token" in str(err)
    assert "wrong-one" not in str(err)
    assert auth_server.requests == 1


def test_unauthorized_fault_with_token(server, camera):
    server.inject("unauthorized")
    assert "refused the token" in str(grab_error(BaslerAdapterCamera(server.url, token="x")))


def test_bad_parameter_names_the_parameter_and_bound(server):
    # model_construct skips our own validation: as if the adapter were stricter than TakePhotoParams
    params = TakePhotoParams.model_construct(exposure_time_microseconds=100, quality=5)
    err = grab_error(BaslerAdapterCamera(server.url, params))
    assert (err.kind, err.status) == ("bad_parameter", 422)
    message = str(err)
    assert "exposure_time_microseconds: Input should be greater than or equal to 500" in message
    assert "quality: Input should be greater than or equal to 10" in message
    assert "fix CAMERA_PARAMS" in message
    assert server.requests == 1


def test_no_image(server, camera, frames):
    server.inject("no_image")
    err = grab_error(camera)
    assert (err.kind, err.status) == ("no_image", 400)
    message = str(err)
    assert "No image retrieved." in message and "timeout_ms=1900" in message
    assert "exposure" in message and "trigger" in message and "cabling" in message
    assert server.requests == 1  # not retried
    assert camera.grab().data == frames[0]


@pytest.mark.parametrize("fault", ["server_error_close", "reset"])
def test_one_failure_is_recovered_by_the_single_retry(server, camera, frames, fault):
    camera.grab()
    server.inject(fault)
    assert camera.grab().data == frames[1]
    assert server.requests == 3 and server.served == 2


@pytest.mark.parametrize(
    "faults, kind, hint",
    [
        (("server_error_close", "server_error_close"), "server", "check CAMERA_PARAMS and the adapter's log"),
        (("reset", "reset"), "connection", "CAMERA_ADDRESS"),
        (("server_error_close", "reset"), "connection", "CAMERA_ADDRESS"),
        (("status:503", "status:503"), "server", "adapter's log"),
        (("status:404", "status:404"), "server", "check CAMERA_ADDRESS"),
    ],
)
def test_two_failures_raise(server, camera, frames, faults, kind, hint):
    server.inject(*faults)
    err = grab_error(camera)
    assert err.kind == kind and hint in str(err)
    assert "retrying once" in str(err)
    assert server.requests == 2
    assert camera.grab().data == frames[0]  # the camera works again afterwards


def test_timeout(server):
    cam = BaslerAdapterCamera(server.url, timeout=0.3)
    server.inject("slow:1.5")
    start = time.monotonic()
    err = grab_error(cam)
    assert time.monotonic() - start < 1.0
    assert err.kind == "timeout" and "no answer within CAMERA_TIMEOUT=0.3 s" in str(err)
    assert server.requests == 1  # a timeout is not retried
    cam.close()


def test_answer_that_is_not_an_image(server, camera):
    server.inject("garbage")
    err = grab_error(camera)
    assert (err.kind, err.status) == ("not_image", 200)
    assert "image/jpeg" in str(err) and "<html>" in str(err)


def test_camera_down_then_back(server, camera, frames):
    assert camera.grab().data == frames[0]
    server.down()
    err = grab_error(camera)
    assert err.kind == "connection"
    assert "connection refused" in str(err) and "CAMERA_ADDRESS" in str(err)
    server.up()
    assert camera.grab().data == frames[1]


def test_never_two_requests_in_flight(server, camera):
    server.set_latency(0.01)
    errors: list[Exception] = []

    def worker() -> None:
        for _ in range(5):
            try:
                camera.grab()
            except Exception as err:  # noqa: BLE001 - collected and asserted below
                errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.concurrent_violations == 0
    assert server.served == server.requests == 20


def test_demo_server_detects_concurrent_requests(server):
    """Sanity check of the counter above: unsynchronised clients do overlap and get 500."""
    server.set_latency(0.1)
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def client() -> None:
        barrier.wait()
        codes.append(requests.get(server.url + "/basler/take-photo", timeout=2).status_code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.concurrent_violations >= 1
    assert sorted(codes).count(500) == server.concurrent_violations


def test_demo_server_refuses_unknown_faults(server):
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("explode")


# ---------------------------------------------------------------------------------------
# SnapshotCamera
# ---------------------------------------------------------------------------------------


def test_snapshot_camera(server):
    url = server.url + "/basler/take-photo?format=png"
    with SnapshotCamera(url) as cam:
        frame = cam.grab()
        assert sniff_image_type(frame.data) == "png" and frame.content_type == "image/png"
        assert cam.name == f"Snapshot camera {server.url}/basler/take-photo"
        assert isinstance(cam, CameraSource)
        server.inject("server_error_close")
        assert cam.grab().data  # recovered by the retry
    assert urlsplit(server.paths[0]).query == "format=png"


def test_snapshot_camera_errors(auth_server):
    err = grab_error(SnapshotCamera(auth_server.url + "/basler/take-photo"))
    assert err.kind == "auth" and "camera requires a token: set CAMERA_TOKEN" in str(err)
    with SnapshotCamera(auth_server.url + "/basler/take-photo?quality=5", token=TOKEN) as cam:
        err = grab_error(cam)
        assert err.kind == "bad_parameter" and "quality: Input should be greater than or equal to 10" in str(err)
        assert "CAMERA_SNAPSHOT_URL" in str(err)
        assert "?" not in cam.name  # the query may hold secrets


# ---------------------------------------------------------------------------------------
# sniff_image_type
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, expected", [("JPEG", "jpeg"), ("PNG", "png"), ("BMP", "bmp"), ("WEBP", "webp"), ("TIFF", "tiff")]
)
def test_sniff_image_type(fmt, expected):
    assert sniff_image_type(encode((1, 2, 3), fmt)) == expected


@pytest.mark.parametrize("data", [b"", b"BM", b"<html>", b"RIFF\x00\x00\x00\x00WAVE", b"GIF89a"])
def test_sniff_image_type_refuses_other_bytes(data):
    assert sniff_image_type(data) is None


# ---------------------------------------------------------------------------------------
# FolderCamera
# ---------------------------------------------------------------------------------------


def test_folder_camera_order_and_wrap(tmp_path):
    files = {"c.JpEg": "JPEG", "a.jpg": "JPEG", "b.PNG": "PNG", "d.Tiff": "TIFF", "e.bmp": "BMP", "f.WEBP": "WEBP"}
    for i, (name, fmt) in enumerate(files.items()):
        (tmp_path / name).write_bytes(encode((i * 40, 0, 0), fmt))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.jpg").mkdir()  # a folder, not an image
    cam = FolderCamera(tmp_path)
    assert isinstance(cam, CameraSource)
    order = sorted(files)
    got = [cam.grab() for _ in range(len(order) + 2)]
    assert [f.data for f in got] == [(tmp_path / n).read_bytes() for n in order + order[:2]]
    assert [f.content_type for f in got[:6]] == [
        "image/jpeg", "image/png", "image/jpeg", "image/tiff", "image/bmp", "image/webp"
    ]
    assert all(f.timestamp.tzinfo == timezone.utc for f in got)


def test_folder_camera_rereads_on_close(tmp_path):
    (tmp_path / "b.jpg").write_bytes(encode((1, 1, 1)))
    cam = FolderCamera(tmp_path)
    (tmp_path / "a.jpg").write_bytes(encode((9, 9, 9)))
    assert [f.data for f in (cam.grab(), cam.grab())] == [(tmp_path / "b.jpg").read_bytes()] * 2
    cam.close()
    assert cam.grab().data == (tmp_path / "a.jpg").read_bytes()


def test_folder_camera_threads_share_one_index(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(encode((i, i, i), "PNG"))
    cam = FolderCamera(tmp_path)
    seen: list[bytes] = []
    threads = [threading.Thread(target=lambda: seen.extend(cam.grab().data for _ in range(25))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {data: seen.count(data) for data in set(seen)}
    assert sorted(counts.values()) == [20] * 5  # 100 grabs spread exactly over the 5 images


def test_folder_camera_file_removed_meanwhile(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(encode((3, 3, 3)))
    cam = FolderCamera(tmp_path)
    (tmp_path / "a.jpg").unlink()
    err = grab_error(cam)
    assert err.kind == "config" and "a.jpg" in str(err)
    assert cam.grab().data == (tmp_path / "b.jpg").read_bytes()  # the folder was read again


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_folder_camera_config_errors(tmp_path, make):
    folder = tmp_path / "images"
    if make == "empty":
        folder.mkdir()
        (folder / "readme.txt").write_text("no images here")
    with pytest.raises(CameraError) as info:
        FolderCamera(folder)
    assert info.value.kind == "config"
    assert str(folder) in str(info.value) and ".jpg" in str(info.value) and ".tiff" in str(info.value)


# ---------------------------------------------------------------------------------------
# OpenCVCamera
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_file(tmp_path_factory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    assert writer.isOpened()
    for _ in range(6):
        writer.write(np.full((48, 64, 3), (255, 0, 0), np.uint8))  # BGR: pure blue
    writer.release()
    return path


def test_opencv_camera_reads_rgb_frames_and_loops(video_file):
    cam = OpenCVCamera(str(video_file))
    assert isinstance(cam, CameraSource)
    frames = [cam.grab() for _ in range(9)]  # 6 frames in the file: wraps to the start
    for frame in frames:
        assert frame.data is None and frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        red, green, blue = frame.image[24, 32].astype(int)
        assert blue > 200 and red < 50 and green < 50  # converted from BGR
    cam.close()
    assert cam.grab().image.shape == (48, 64, 3)  # reopened
    cam.close()


def test_opencv_camera_missing_file(tmp_path):
    cam = OpenCVCamera(str(tmp_path / "nope.mp4"))  # opened lazily: no error yet
    err = grab_error(cam)
    assert err.kind == "device" and "nope.mp4" in str(err) and "CAMERA_DEVICE" in str(err)


def test_opencv_camera_unreadable_file(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is no video" * 64)
    err = grab_error(OpenCVCamera(str(path)))
    assert err.kind == "device" and "broken.mp4" in str(err) and "CAMERA_DEVICE" in str(err)


def test_opencv_camera_device_index():
    cam = OpenCVCamera("0")
    assert cam.device == 0 and cam.name == "OpenCV webcam 0"
    assert OpenCVCamera("rtsp://user:pw@cam/stream").name == "OpenCV rtsp://cam/stream"


# ---------------------------------------------------------------------------------------
# make_camera
# ---------------------------------------------------------------------------------------


def test_make_camera_basler(server):
    settings = load_settings(
        {"CAMERA_ADDRESS": server.url, "CAMERA_PARAMS": '{"exposure_time_microseconds": 3000}', "CAMERA_TIMEOUT": "3"}
    )
    with make_camera(settings) as cam:
        assert isinstance(cam, BaslerAdapterCamera)
        assert cam.grab().data
    query = parse_qs(urlsplit(server.paths[-1]).query)
    assert query["exposure_time_microseconds"] == ["3000"] and query["timeout_ms"] == ["2900"]


def test_make_camera_basler_with_token(auth_server):
    cam = make_camera(load_settings({"CAMERA_ADDRESS": auth_server.url, "CAMERA_TOKEN": TOKEN}))
    assert cam.grab().data and auth_server.auth_headers[-1] == f"Bearer {TOKEN}"


def test_make_camera_other_kinds(server, tmp_path, video_file):
    (tmp_path / "a.png").write_bytes(encode((5, 5, 5), "PNG"))
    snapshot = make_camera(load_settings({"CAMERA_SNAPSHOT_URL": server.url + "/basler/take-photo"}))
    assert isinstance(snapshot, SnapshotCamera) and snapshot.grab().data
    folder = make_camera(load_settings({"TEST_DATA_FOLDER": str(tmp_path), "CAMERA_ADDRESS": server.url}))
    assert isinstance(folder, FolderCamera) and folder.folder == tmp_path  # TEST_DATA_FOLDER comes first
    opencv = make_camera(load_settings({"CAMERA_DEVICE": str(video_file)}))
    assert isinstance(opencv, OpenCVCamera) and opencv.grab().image is not None
    opencv.close()
    forced = make_camera(load_settings({"CAMERA_SOURCE": "opencv", "CAMERA_DEVICE": "0", "CAMERA_ADDRESS": "x"}))
    assert isinstance(forced, OpenCVCamera) and forced.device == 0


@pytest.mark.parametrize(
    "source, variable", [("basler", "CAMERA_ADDRESS"), ("snapshot", "CAMERA_SNAPSHOT_URL"), ("opencv", "CAMERA_DEVICE")]
)
def test_make_camera_names_the_missing_variable(source, variable):
    with pytest.raises(CameraError) as info:
        make_camera(load_settings({"CAMERA_SOURCE": source}))
    assert info.value.kind == "config" and f"set it, e.g. {variable}=" in str(info.value)


# ---------------------------------------------------------------------------------------
# TakePhotoParams.query
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("exposure_time_microseconds", 499), ("timeout_ms", 199), ("quality", 9), ("quality", 101),
     ("roi_left", -0.1), ("destination_port", 25), ("pixel_format", "Mono9"), ("format", "xyz")],
)  # fmt: skip
def test_take_photo_params_refuse_out_of_bounds(field, value):
    with pytest.raises(ValidationError) as info:
        TakePhotoParams(**{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_take_photo_params_query():
    assert TakePhotoParams().query() == {}
    params = TakePhotoParams(exposure_time_microseconds=500, rotation_expand=False, roi_right=0.5)
    assert params.query() == {"exposure_time_microseconds": 500, "rotation_expand": "false", "roi_right": 0.5}
    assert TakePhotoParams().query(5.0) == {"timeout_ms": 4900}  # adapter default 5000 capped below 5 s
    assert TakePhotoParams(timeout_ms=1000).query(5.0)["timeout_ms"] == 1000  # already below: kept
    assert TakePhotoParams(timeout_ms=8000).query(2.0)["timeout_ms"] == 1900
    assert TakePhotoParams().query(0.1)["timeout_ms"] == 200  # never below the adapter's minimum
    with pytest.raises(ValidationError):
        TakePhotoParams(unknown_parameter=1)
