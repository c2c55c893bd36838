"""Configuration: the original app's variables and defaults, PREFIX, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from utils.config import ConfigError, Settings, load_settings, settings_table
from tests.conftest import ROOT


def test_defaults_match_the_original_app():
    s = load_settings({})
    assert s.TITLE == "Extract unique images"
    assert s.INPUT_TEXT_TITLE == "Order number"
    assert s.INPUT_TEXT_PLACEHOLDER == "Please enter an order number here"
    assert (s.IMAGE_SAVE_QUALITY, s.LOOP_UPDATE_TIME, s.IMAGE_DISPLAY_WIDTH) == (95, 0.1, 320)
    assert (s.GALLERY_N_COLUMNS, s.GALLERY_OVERALL_HEIGHT) == (6, None)
    assert s.OPTIONS_IMAGE_RESOLUTION == [240, 320, 480, 512, 640, 960, 1024, 1280]
    assert s.initial_resolution == 480
    assert (s.OPTIONS_TH_MIN, s.OPTIONS_TH_MAX, s.OPTIONS_TH_INC, s.OPTIONS_TH_INIT) == (0.15, 0.5, 0.025, 0.325)
    assert s.threshold_options[0] == 0.15 and s.threshold_options[-1] == 0.5 and len(s.threshold_options) == 15
    assert 0.325 in s.threshold_options
    assert (s.IMAGES_PER_SECOND, s.IMAGES_PER_SECOND_MIN, s.IMAGES_PER_SECOND_MAX) == (5, 1, 23)
    assert s.VIDEO_CODEC == "h264" and s.CAMERA_TIMEOUT == 5 and s.CAMERA_ADDRESS is None
    assert s.camera_kind == "folder" and s.demo_folder == ROOT / "toydata"
    assert s.database_path == Path("export") / ".capture" / "capture.sqlite3"


def test_values_in_the_original_spellings():
    s = load_settings(
        {
            "OPTIONS_IMAGE_RESOLUTION": "(320, 640)",
            "GALLERY_OVERALL_HEIGHT": "None",
            "LAYOUT_LANDSCAPE": "true",
            "LOGGING_LEVEL": "warn",
            "CAMERA_ADDRESS": "http://cam:5050",
            "CAMERA_PARAMS": '{"pixel_format": "BayerRG8", "convert_to_format": "RGB", "exposure_time_microseconds": 2000}',
            "OPTIONS_IMAGE_RESOLUTION_INIT_IDX": "1",
        }
    )
    assert s.OPTIONS_IMAGE_RESOLUTION == [320, 640] and s.initial_resolution == 640
    assert s.GALLERY_OVERALL_HEIGHT is None and s.LAYOUT_LANDSCAPE is True and s.LOGGING_LEVEL == "WARNING"
    assert s.camera_kind == "basler"
    assert s.CAMERA_PARAMS.query() == {"pixel_format": "BayerRG8", "convert_to_format": "RGB", "exposure_time_microseconds": 2000}
    assert load_settings({"OPTIONS_IMAGE_RESOLUTION": "[240,480]"}).OPTIONS_IMAGE_RESOLUTION == [240, 480]
    assert load_settings({"OPTIONS_IMAGE_RESOLUTION": "240, 480", "OPTIONS_IMAGE_RESOLUTION_INIT_IDX": "0"}).initial_resolution == 240


def test_prefix_selects_prefixed_variables():
    s = load_settings({"PREFIX": "CAM2", "CAM2_TITLE": "Station 2", "TITLE": "ignored", "CAM2_IMAGES_PER_SECOND": "7"})
    assert s.TITLE == "Station 2" and s.IMAGES_PER_SECOND == 7
    with pytest.raises(ConfigError, match="CAM2_IMAGE_SAVE_QUALITY"):
        load_settings({"PREFIX": "CAM2", "CAM2_IMAGE_SAVE_QUALITY": "0"})


def test_camera_kind_precedence():
    assert load_settings({"CAMERA_ADDRESS": "http://a", "TEST_DATA_FOLDER": "/tmp"}).camera_kind == "folder"
    assert load_settings({"CAMERA_SNAPSHOT_URL": "http://a/snap.jpg"}).camera_kind == "snapshot"
    assert load_settings({"CAMERA_DEVICE": "0"}).camera_kind == "opencv"
    assert load_settings({"CAMERA_SOURCE": "basler", "CAMERA_ADDRESS": "x:1"}).camera_kind == "basler"


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"IMAGES_PER_SECOND": "abc"}, "IMAGES_PER_SECOND: Input should be a valid integer"),
        ({"IMAGE_SAVE_QUALITY": "101"}, "IMAGE_SAVE_QUALITY: Input should be less than or equal to 100"),
        ({"VIDEO_CODEC": "divx"}, "VIDEO_CODEC: Input should be 'mp4v', 'h264', 'X264', 'avc1' or 'HEVC'"),
        ({"OPTIONS_TH_MIN": "0.6"}, "OPTIONS_TH_MIN must be smaller than OPTIONS_TH_MAX"),
        ({"OPTIONS_TH_INIT": "0.9"}, "OPTIONS_TH_INIT must lie between"),
        ({"IMAGES_PER_SECOND": "30"}, "IMAGES_PER_SECOND must lie between"),
        ({"OPTIONS_IMAGE_RESOLUTION": "[240, 99999]"}, "32..8192"),
        ({"OPTIONS_IMAGE_RESOLUTION_INIT_IDX": "8"}, "OPTIONS_IMAGE_RESOLUTION_INIT_IDX must be an index"),
        ({"CAMERA_PARAMS": '{"exposure_time_microseconds": 100}'}, "CAMERA_PARAMS (exposure_time_microseconds)"),
        ({"CAMERA_PARAMS": '{"exposure": 1000}'}, "CAMERA_PARAMS (exposure): Extra inputs are not permitted"),
        ({"CAMERA_PARAMS": "{not json"}, "CAMERA_PARAMS"),
        ({"DATABASE_URL": "postgresql://x"}, "sqlite:///"),
        ({"CAMERA_ADDRESS": "ftp://cam"}, "http://"),
        ({"CAMERA_TIMEOUT": "-1"}, "CAMERA_TIMEOUT"),
        ({"LOGGING_LEVEL": "LOUD"}, "LOGGING_LEVEL"),
        ({"STATION_NAME": "pack 3/a"}, "STATION_NAME: use 1 to 64 letters, digits, - _ ."),
        ({"STORAGE_URL": "s3://b/p"}, "CENTRAL_DATABASE_URL and STORAGE_URL go together"),
        ({"CENTRAL_DATABASE_URL": "postgresql+psycopg://a@h/db"}, "CENTRAL_DATABASE_URL and STORAGE_URL go together"),
        ({"STORAGE_URL": "ftp://x/y", "CENTRAL_DATABASE_URL": "sqlite:///x"}, "use s3://bucket/prefix"),
        ({"STORAGE_URL": "s3:///prefix", "CENTRAL_DATABASE_URL": "sqlite:///x"}, "name the bucket"),
    ],
)
def test_bad_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    text = str(err.value)
    assert needle in text, text
    assert text.startswith("Invalid configuration")


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, _default, description in settings_table():
        assert description, f"{name} has no description"
        assert f"`{name}`" in readme, f"{name} missing from the README's configuration table"
    assert "`PREFIX`" in readme
    assert set(Settings.model_fields) >= {
        "LOGGING_LEVEL", "TITLE", "INPUT_TEXT_TITLE", "INPUT_TEXT_PLACEHOLDER", "IMAGE_SAVE_QUALITY", "LOOP_UPDATE_TIME",
        "IMAGE_DISPLAY_WIDTH", "GALLERY_N_COLUMNS", "GALLERY_OVERALL_HEIGHT", "OPTIONS_IMAGE_RESOLUTION",
        "OPTIONS_IMAGE_RESOLUTION_INIT_IDX", "OPTIONS_SAVE_AS_CHOICE_INIT_IDX", "OPTIONS_TH_MIN", "OPTIONS_TH_MAX",
        "OPTIONS_TH_INC", "OPTIONS_TH_INIT", "IMAGES_PER_SECOND", "IMAGES_PER_SECOND_MIN", "IMAGES_PER_SECOND_MAX",
        "VIDEO_CODEC", "CAMERA_ADDRESS", "CAMERA_TOKEN", "CAMERA_TIMEOUT", "TEST_DATA_FOLDER",
    }


def test_bad_configuration_stops_the_engine_cli_with_a_message(tmp_path):
    """The command-line check exits non-zero and prints the variable, no traceback."""
    env = {"PATH": "/usr/bin:/bin", "IMAGES_PER_SECOND": "fast", "EXPORT_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "utils.config"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "IMAGES_PER_SECOND" in proc.stderr and "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "utils.config"], cwd=ROOT,
                        env={"PATH": "/usr/bin:/bin", "EXPORT_DIR": str(tmp_path / "export")},
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "CAMERA_SOURCE" in ok.stdout


def test_the_archive_settings_and_the_station_name():
    s = load_settings({"STATION_NAME": "pack-3", "CENTRAL_DATABASE_URL": "postgresql+psycopg://st:pw@h/archive",
                       "STORAGE_URL": "s3://plant-images/line-1", "S3_SECRET_ACCESS_KEY": "very-secret"})
    assert s.archive_enabled and s.STATION_NAME == "pack-3"
    assert "pw" not in repr(s) and "very-secret" not in repr(s)  # secrets never printed
    assert not load_settings({}).archive_enabled
    default = load_settings({}).STATION_NAME  # the host name, cut to a valid name
    assert default and load_settings({"STATION_NAME": default}).STATION_NAME == default
    assert dict((n, d) for n, d, _ in settings_table())["STATION_NAME"] == ""  # the README shows no machine's name


def test_the_station_database_is_a_sqlite_file_or_postgresql():
    s = load_settings({"EXPORT_DIR": "export", "DATABASE_URL": "postgresql+psycopg://st:secret@db.plant/station"})
    assert s.database_path is None and s.database_url == "postgresql+psycopg://st:secret@db.plant/station"
    assert s.shown("DATABASE_URL") == "postgresql+psycopg://st:***@db.plant/station"  # the check, the settings page
    s = load_settings({"DATABASE_URL": "sqlite:////var/lib/eui/capture.sqlite3"})
    assert s.database_path == Path("/var/lib/eui/capture.sqlite3")
    assert s.database_url == "sqlite:////var/lib/eui/capture.sqlite3" == s.shown("DATABASE_URL")
    s = load_settings({"EXPORT_DIR": "export"})
    assert s.database_url == "sqlite:///export/.capture/capture.sqlite3"


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"DATABASE_URL": "mysql://a@h/db"}, "use sqlite:///path/to/file.db or postgresql+psycopg://"),
        ({"DATABASE_URL": "postgresql+psycopg://h"}, "name the server and the database"),
        ({"DATABASE_URL": "postgresql+psycopg://st@db.plant/archive", "STORAGE_URL": "/srv/objects",
          "CENTRAL_DATABASE_URL": "postgresql+psycopg://other:pw@db.plant:5432/archive"}, "name the same database"),
    ],
)
def test_station_databases_that_cannot_work_are_refused(env, needle):
    with pytest.raises(ConfigError, match=needle.replace("+", r"\+")):
        load_settings(env)


def test_store_for_opens_the_postgresql_database_of_database_url(postgres_url, tmp_path):
    from utils.preflight import store_problems
    from utils.storage import store_for

    settings = load_settings({"EXPORT_DIR": str(tmp_path / "export"), "DATABASE_URL": postgres_url,
                              "STATION_NAME": "pack-2"})
    assert store_problems(settings) == []
    store = store_for(settings)
    order, _ = store.open_order("PG-7")
    store.close()
    again = store_for(settings)
    assert again.dialect == "postgresql" and [(o.id, o.station) for o in again.list_orders()] == [(order.id, "pack-2")]
    again.close()
