"""The one source of configuration: environment variables read by pydantic-settings.

Every variable of the original app keeps its name and default. With ``PREFIX`` set
(e.g. ``PREFIX=CAM1``) every variable is read as ``CAM1_<NAME>`` instead, so several
dashboards can share one environment. A bad value stops start-up with a
:class:`ConfigError` that names the variable and says what it accepts.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from DataModels_BaslerCameraAdapter import TakePhotoParams

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOYDATA = PROJECT_ROOT / "toydata"

MAX_THRESHOLD = 100.0  # distances are RMS feature differences; the useful range is far below this
MAX_THRESHOLD_STEPS = 1000  # values of the threshold slider
MIN_TOKEN_LENGTH = 16
DEFAULT_SETTLE_FRAMES = 2  # regional decision: frames a scene must hold still (tuned on bench/quality.py)
# login settings that PREFIX must not silently drop (an un-prefixed one would leave a prefixed dashboard open)
LOGIN_SETTINGS = ("AUTH_USERS", "DUMMY_USER", "DUMMY_PW", "DUMMY_ROLE", "AUTH_ADMIN_EMAILS", "API_TOKEN",
                  "API_OPERATOR_TOKEN")

VideoCodec = Literal["mp4v", "h264", "X264", "avc1", "HEVC"]
CameraSourceKind = Literal["auto", "basler", "snapshot", "folder", "opencv"]
SAVE_OPTIONS = ("distinct images", "video")

_NONE_STRINGS = {"", "none", "null"}
_STATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _default_station() -> str:
    """The host name, cut to what a station name may hold."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).strip("-.") or "station"
    return name[:64]


def _none_if_empty(value: Any) -> Any:
    """Map the original app's spellings of "no value" ("", "None", "null") to None."""
    if isinstance(value, str) and value.strip().lower() in _NONE_STRINGS:
        return None
    return value


def _not_writable(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (None if it can); creates nothing."""
    path = Path(path).expanduser()
    if path.is_dir():
        return f"{path} is a folder"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable by this user"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK):
        return f"the folder {parent} is not writable by this user (or is on a read-only file system)"
    return None


def _parse_int_list(value: Any) -> Any:
    """Accept JSON ``[240, 320]``, a Python tuple ``(240, 320)`` or plain ``240,320``."""
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        if not text:
            return []
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class AuthUser(BaseModel):
    """One dashboard user of AUTH_USERS."""

    hash: str = Field(pattern=r"^\$argon2(id|i|d)\$", description="argon2 hash (python -m utils.auth hash)")
    role: Literal["operator", "admin"] = "operator"


class Settings(BaseSettings):
    """All settings of the dashboard and the capture engine (see README, "Configuration")."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, validate_default=True, allow_inf_nan=False)

    # ---- the original app's variables (same names, same defaults) ----
    LOGGING_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "DEBUG", description="Log level of the app (the original app logged at DEBUG)."
    )
    TITLE: str = Field("Extract unique images", description="Title of the dashboard.")
    INPUT_TEXT_TITLE: str = Field("Order number", description="Label of the order number input.")
    INPUT_TEXT_PLACEHOLDER: str = Field(
        "Please enter an order number here", description="Placeholder of the order number input."
    )
    IMAGE_SAVE_QUALITY: int = Field(95, ge=1, le=100, description="JPEG quality of saved images (1..100).")
    LOOP_UPDATE_TIME: float = Field(
        0.1, gt=0, le=10, description="Seconds between refreshes of the live view (0 < x <= 10)."
    )
    IMAGE_DISPLAY_WIDTH: int = Field(
        320, ge=32, le=4096,
        description="Width in pixels of the live image when set; not set, the live image fills its column of the "
        "Capture page (beside the figures).",
    )
    GALLERY_N_COLUMNS: int = Field(6, ge=1, le=24, description="Columns of the gallery grid.")
    GALLERY_OVERALL_HEIGHT: int | None = Field(
        None, ge=100, description="Height in pixels of the scrolling gallery; empty: as tall as needed."
    )
    GALLERY_PAGE_SIZE: int = Field(
        60, ge=6, le=600, description="Thumbnails per page of the gallery (orders of any size page through them)."
    )
    OPTIONS_IMAGE_RESOLUTION: Annotated[list[int], NoDecode] = Field(
        [240, 320, 480, 512, 640, 960, 1024, 1280],
        description="Choices of the maximum image side in pixels (each 32..8192).",
    )
    OPTIONS_IMAGE_RESOLUTION_INIT_IDX: int = Field(2, ge=0, description="Index of the preselected resolution.")
    OPTIONS_SAVE_AS_CHOICE_INIT_IDX: int = Field(
        0, ge=0, le=1, description="Preselected mode: 0 distinct images, 1 video."
    )
    OPTIONS_TH_MIN: float = Field(0.15, ge=0, le=MAX_THRESHOLD, description="Smallest threshold of the slider.")
    OPTIONS_TH_MAX: float = Field(0.5, gt=0, le=MAX_THRESHOLD, description="Largest threshold of the slider.")
    OPTIONS_TH_INC: float = Field(
        0.025, gt=0, description=f"Step of the threshold slider (at most {MAX_THRESHOLD_STEPS} steps from min to max)."
    )
    OPTIONS_TH_INIT: float = Field(0.325, ge=0, le=MAX_THRESHOLD, description="Preselected threshold.")
    IMAGES_PER_SECOND: int = Field(5, ge=1, le=60, description="Preselected frames requested per second.")
    IMAGES_PER_SECOND_MIN: int = Field(1, ge=1, le=60, description="Lowest selectable rate.")
    IMAGES_PER_SECOND_MAX: int = Field(23, ge=1, le=60, description="Highest selectable rate.")
    VIDEO_CODEC: VideoCodec = Field(
        "h264", description="Preferred video codec; if OpenCV lacks it, the next working one is used."
    )
    CAMERA_ADDRESS: str | None = Field(
        None, description="Base URL of the BaslerCameraAdapter, e.g. http://camera:5050."
    )
    CAMERA_TOKEN: str | None = Field(None, description="Bearer token for the camera adapter (if it needs one).")
    CAMERA_TIMEOUT: float = Field(5, gt=0, le=300, description="Seconds to wait for one camera answer.")
    TEST_DATA_FOLDER: Path | None = Field(
        None, description="Folder of images served by the demo camera (takes precedence over a camera)."
    )

    # ---- new settings ----
    LAYOUT_LANDSCAPE: bool = Field(False, description="Wide page layout instead of centered.")
    LANGUAGE: Literal["en", "de"] = Field(
        "en",
        description="Language of the dashboard's labels: en (English) or de (German). TITLE and INPUT_TEXT_* set "
        "explicitly are shown as given; their defaults are translated.",
    )
    LOGFILE: Path | None = Field(None, description="Also write the log to this file (rotated at 10 MB).")
    EXPORT_DIR: Path = Field(
        Path("./export"),
        description="Folder holding one sub-folder per order (and the database in EXPORT_DIR/.capture/); not the "
        "program's own folder.",
    )
    DATABASE_URL: str | None = Field(
        None,
        description="The station's database: a SQLite file as sqlite:///path/to/file.db, or PostgreSQL as "
        "postgresql+psycopg://user:password@host/db (a database of its own, not the central archive's). Empty: "
        "EXPORT_DIR/.capture/capture.sqlite3 (or EXPORT_DIR/capture.sqlite3 where an older installation has it).",
    )
    ORDER_NUMBER_MAX_LENGTH: int = Field(64, ge=1, le=200, description="Longest accepted order number.")
    START_ON_ENTER: bool = Field(
        False, description="Enter in the order number starts the order (a hand-held barcode scanner types the number "
        "and Enter)."
    )
    SCAN_CLOSES_RUNNING: bool = Field(
        False, description="While an order runs, a scanned number (typed and Enter in 'Next order') closes it and "
        "starts that one with the same options."
    )
    CAMERA_SOURCE: CameraSourceKind = Field(
        "auto",
        description="auto | basler | snapshot | folder | opencv. auto: TEST_DATA_FOLDER, else CAMERA_ADDRESS, "
        "else CAMERA_SNAPSHOT_URL, else CAMERA_DEVICE, else the demo camera over toydata/.",
    )
    CAMERA_SNAPSHOT_URL: str | None = Field(
        None, description="URL answering one JPEG/PNG per GET (generic IP camera)."
    )
    CAMERA_DEVICE: str | None = Field(
        None, description="OpenCV source: webcam index (0), RTSP URL or video file."
    )
    CAMERA_PARAMS: TakePhotoParams = Field(
        default_factory=TakePhotoParams,
        description='Query parameters of /basler/take-photo as JSON, e.g. {"pixel_format": "BayerRG8", '
        '"convert_to_format": "RGB"}.',
    )
    CAMERA_BACKOFF_MAX: float = Field(
        10.0, gt=0, le=600, description="Longest pause in seconds between retries while the camera fails."
    )
    KEEP_ORIGINAL_BYTES: bool = Field(
        False, description="Save the camera's frame bytes untouched instead of a resized JPEG."
    )
    AUTH_USERS: dict[str, AuthUser] = Field(
        default_factory=dict,
        description='Dashboard users as JSON: {"anna": {"hash": "$argon2id$...", "role": "admin"}}; roles operator '
        "(default) or admin; hashes from python -m utils.auth hash. Empty: no login (unless DUMMY_USER).",
    )
    DUMMY_USER: str | None = Field(None, description="A plain user name accepted with DUMMY_PW (logs a warning).")
    DUMMY_PW: SecretStr | None = Field(None, description="The plain password of DUMMY_USER.")
    DUMMY_ROLE: Literal["operator", "admin"] = Field("operator", description="Role of DUMMY_USER.")
    AUTH_MAX_FAILURES: int = Field(
        5, ge=1, le=100, description="Wrong passwords for one user name or client before logins are refused for a while."
    )
    AUTH_LOCKOUT_S: float = Field(
        60.0, gt=0, le=3600, description="First lock-out in seconds after too many wrong passwords (doubles, max 1 h)."
    )
    AUTH_ADMIN_EMAILS: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="With Streamlit's OIDC login (st.login): e-mail addresses that get the admin role (comma separated).",
    )
    DESCRIPTOR_WEIGHTS_FILE: Path | None = Field(
        None, description="Local MobileNetV3-small ImageNet weights (.pth) for offline sites."
    )
    DESCRIPTOR_DOWNLOAD: bool = Field(
        True, description="Let torchvision fetch the pretrained weights into its cache if missing."
    )
    DESCRIPTOR_FALLBACK: Literal["thumbnail", "untrained", "error"] = Field(
        "thumbnail",
        description="What to use when no pretrained weights load: thumbnail (colour thumbnail features), "
        "untrained (seeded random MobileNetV3, for tests), error (refuse to capture).",
    )
    TORCH_NUM_THREADS: int = Field(1, ge=1, le=64, description="CPU threads of the feature network.")
    DECISION_MODE: Literal["regional", "original"] = Field(
        "regional",
        description="regional: compare frames region by region, judge a frame once the scene has settled (sees "
        "small items, ignores hands passing); original: the original app's decision (globally pooled features, "
        "RMS distance, every frame judged alone).",
    )
    SETTLE_FRAMES: int | None = Field(
        None, ge=0, le=100,
        description="Frames the scene must hold still (each close to the one before) before a frame is judged; "
        "0: every frame is judged. Empty: 2 with DECISION_MODE=regional, 0 with original. Stills from a folder "
        "count as settled.",
    )

    # ---- statistics, upload analysis and the HTTP API ----
    AVERAGING_METHOD: Literal["arithmetic", "geometric", "harmonic"] = Field(
        "arithmetic",
        description="Average colour of an image: arithmetic, geometric or harmonic mean of its opaque pixels "
        "(the original stats API's variable).",
    )
    API_TOKEN: SecretStr | None = Field(
        None,
        description=f"Bearer token the HTTP API (api.py) requires, at least {MIN_TOKEN_LENGTH} characters; empty: no "
        "token, and the API then answers loopback clients only (see API_ALLOW_REMOTE_WITHOUT_TOKEN).",
    )
    API_OPERATOR_TOKEN: SecretStr | None = Field(
        None,
        description=f"Second bearer token of the HTTP API, at least {MIN_TOKEN_LENGTH} characters, for machines "
        "that run orders (an MES, a PLC gateway): it may start and close orders, save an image and read orders and "
        "images, nothing else (API_TOKEN may do everything). Needs API_TOKEN; empty: no such token.",
    )
    CONTROL_TIMEOUT_S: float = Field(
        10.0,
        ge=1.0,
        le=120.0,
        description="Seconds the HTTP API waits for the capture engine (in the dashboard's process) to carry out "
        "POST /orders, close or save-image before it answers 504; a command not begun by then is dropped.",
    )
    API_HOST: str = Field(
        "127.0.0.1",
        description="Address python -m api binds to; anything but loopback needs API_TOKEN or "
        "API_ALLOW_REMOTE_WITHOUT_TOKEN=true.",
    )
    API_PORT: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API (python -m api).")
    API_ALLOW_REMOTE_WITHOUT_TOKEN: bool = Field(
        False,
        description="Let the HTTP API without API_TOKEN bind to and answer non-loopback addresses (trusted "
        "networks only).",
    )
    UPLOAD_MAX_BYTES: int = Field(
        25_000_000,
        ge=1024,
        le=2_000_000_000,
        description="Largest image in bytes accepted by the upload analysis, image URLs and POST /stats.",
    )
    EXTRACT_MAX_BYTES: int = Field(
        200_000_000,
        ge=1024,
        le=4_000_000_000,
        description="Largest upload in bytes of the Extract page (a video, or all its images together). Streamlit's "
        "upload limit (server.maxUploadSize) is the larger of this and UPLOAD_MAX_BYTES; an upload is held in "
        "memory until it is written to a temporary file.",
    )
    URL_FETCH_TIMEOUT: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds allowed to fetch one image URL, the whole exchange: connection, TLS, headers, "
        "redirects and body.",
    )
    TRUSTED_PROXIES: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For is believed (comma separated, e.g. "
        "127.0.0.1); empty: no forwarded header is believed. The dashboard and the API then see the real client "
        "behind the proxy (wrong-password limits, the API's loopback rule).",
    )
    URL_ALLOW_PRIVATE: bool = Field(
        False,
        description="Allow image URLs on private and loopback addresses (link-local, multicast and reserved "
        "addresses stay refused).",
    )
    # ---- image tools (issue 11) ----
    DETECTOR_WEIGHTS_FILE: Path | None = Field(
        None,
        description="Local SSDLite320-MobileNetV3-large COCO weights (.pth) for object boxes; empty: torchvision's "
        "file in the torch hub cache (downloaded there with DESCRIPTOR_DOWNLOAD).",
    )
    BACKGROUND_MODEL_FILE: Path | None = Field(
        None,
        description="U²-Net ONNX model for background removal (u2net.onnx, u2netp.onnx, ...); empty: the first one "
        "found in U2NET_HOME (rembg's folder, default ~/.u2net). Without one, OpenCV's GrabCut runs.",
    )
    STYLE_MODEL_FILE: Path | None = Field(
        None, description="ONNX fast-neural-style model for the neural style effect; empty: only OpenCV's presets."
    )
    TOOLS_MAX_PIXELS: int = Field(
        50_000_000, ge=1_000_000, le=500_000_000,
        description="Largest image in pixels the image tools edit (and the result they may make, e.g. by resizing).",
    )
    IMPORT_MAX_IMAGES: int = Field(200, ge=1, le=5000, description="Most images taken from one web page.")
    IMPORT_MAX_TOTAL_BYTES: int = Field(
        300_000_000, ge=1024, le=10_000_000_000, description="Most bytes one web import downloads in all."
    )
    IMPORT_PARALLEL: int = Field(4, ge=1, le=32, description="Parallel requests of a web import.")
    IMPORT_RESPECT_ROBOTS: bool = Field(
        True, description="Follow the site's robots.txt when importing from a web page (false: only for your own sites)."
    )
    JOBS_ENABLED: bool = Field(
        True,
        description="Run the scheduled jobs in this process. The dashboard and the API may both; a lease in the "
        "database lets exactly one of them run the jobs at a time.",
    )
    JOBS_TICK_S: float = Field(
        30.0, ge=0.05, le=3600, description="Seconds between two looks for due jobs (the lease lasts three of them)."
    )
    JOB_STATS_EVERY_S: float = Field(
        900.0, ge=0, le=7 * 86400, description="Statistics backfill every N seconds (0: off)."
    )
    JOB_LABELS_EVERY_S: float = Field(
        600.0, ge=0, le=7 * 86400,
        description="Labels for new images every N seconds (0: off; needs the pretrained MobileNetV3 weights).",
    )
    JOB_TRASH_EVERY_S: float = Field(3600.0, ge=0, le=7 * 86400, description="Trash clean-up every N seconds (0: off).")
    JOB_RETENTION_EVERY_S: float = Field(
        3600.0, ge=0, le=7 * 86400, description="Retention check every N seconds (0: off)."
    )
    SNAPSHOT_AT: str | None = Field(
        "02:00",
        description="Local time (HH:MM) of the nightly analytics snapshot (CSV and plots into REPORTS_DIR); empty: off.",
    )
    REPORTS_DIR: Path | None = Field(
        None, description="Folder of the nightly analytics snapshots; empty: EXPORT_DIR/.capture/reports."
    )
    TRASH_DAYS: float = Field(
        30.0, ge=0, le=3650,
        description="Days images and orders stay in the trash before the clean-up job removes them for good.",
    )
    RETENTION_MAX_GB: float | None = Field(
        None, gt=0,
        description="Size budget of the order folders in GB: above it the oldest closed orders not marked keep go "
        "to the trash. Empty: no size budget.",
    )
    RETENTION_MAX_DAYS: float | None = Field(
        None, gt=0,
        description="Age budget: closed orders older than this many days go to the trash (except those marked "
        "keep). Empty: no age budget.",
    )
    DISK_WARN_FREE_PERCENT: float = Field(
        10.0, ge=0, le=90,
        description="Warn (Settings page, log) when the disk of EXPORT_DIR has less free space than this percentage.",
    )

    # ---- several stations, one archive (utils/archive) ----
    APP_MODE: Literal["station", "central"] = Field(
        "station",
        description="station: a camera PC (capture, its own gallery; syncs into the archive where one is set). "
        "central: the office's view of the archive (every station's orders and images; no camera); needs "
        "CENTRAL_DATABASE_URL and STORAGE_URL.",
    )
    STATION_NAME: str = Field(
        default_factory=_default_station,
        description="This station's name, on every order and image in the central archive (letters, digits, "
        "- _ .; at most 64). Default: the computer's host name.",
    )
    CENTRAL_DATABASE_URL: SecretStr | None = Field(
        None,
        description="The central archive's database (SQLAlchemy URL), e.g. "
        "postgresql+psycopg://station:secret@archive.plant.local/archive. With STORAGE_URL it turns on the sync: "
        "every kept image goes there too (the station never waits for it). Empty: this station is on its own.",
    )
    STORAGE_URL: str | None = Field(
        None,
        description="Where the central archive keeps the image files: s3://bucket/prefix (S3_* settings) or a folder "
        "(a path or file:///path, e.g. a mounted share). Needs CENTRAL_DATABASE_URL.",
    )
    S3_ENDPOINT_URL: str | None = Field(
        None, description="S3-compatible endpoint, e.g. http://archive.plant.local:8333 (empty: AWS)."
    )
    S3_REGION: str = Field("us-east-1", description="S3 region.")
    S3_ACCESS_KEY_ID: str | None = Field(None, description="S3 access key id.")
    S3_SECRET_ACCESS_KEY: SecretStr | None = Field(None, description="S3 secret access key.")
    S3_CREATE_BUCKET: bool = Field(
        False, description="Create the bucket of STORAGE_URL when it does not exist (else: an error saying so)."
    )
    ARCHIVE_LOCAL_KEEP_DAYS: float | None = Field(
        None, gt=0,
        description="Days a station keeps its own copy of an image after the central archive confirmed it (closed "
        "orders; the archive's copy is checked by MD5 first); then the file is read from the archive when shown. "
        "Empty: every local copy is kept.",
    )
    SYNC_INTERVAL_S: float = Field(
        2.0, gt=0, le=3600, description="Seconds the sync waits for new images when it has nothing to send."
    )
    SYNC_BACKOFF_MAX_S: float = Field(
        60.0, gt=0, le=3600,
        description="Longest wait between two tries while the central archive cannot be reached (the wait doubles "
        "from 1 s up to this).",
    )

    # ---- events of the capture: webhooks and MQTT (utils/events) ----
    WEBHOOK_URLS: Annotated[list[str], NoDecode] = Field(
        [],
        description="Addresses (http:// or https://, comma-separated or a JSON list) that get every event of the "
        "capture (order started, image kept, order closed, camera error and recovered) as a JSON POST, through a "
        "durable outbox in the station database (README: Events). Empty: no webhooks.",
    )
    WEBHOOK_SECRET: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 signature of every webhook body, sent as X-Signature-256: sha256=<hex> "
        "(at least 16 characters). Empty: webhooks are not signed.",
    )
    WEBHOOK_TIMEOUT_S: float = Field(
        10.0, gt=0, le=300, description="Seconds a webhook receiver has to answer before the attempt counts as failed."
    )
    MQTT_URL: SecretStr | None = Field(
        None,
        description="MQTT broker that gets every event too: mqtt://user:password@host:1883 (mqtts:// for TLS, "
        "port 8883 by default). Empty: no MQTT.",
    )
    MQTT_TOPIC_PREFIX: str | None = Field(
        None,
        description="Topics of the events: <prefix>/order/started, <prefix>/image/kept, ... and <prefix>/available "
        "(online/offline). Empty: extract-unique-images/<STATION_NAME>.",
    )
    EVENT_RETRY_FIRST_S: float = Field(
        1.0, gt=0, le=3600, description="Wait before the second attempt to deliver an event; it doubles with every "
        "failed attempt up to EVENT_RETRY_MAX_S.",
    )
    EVENT_RETRY_MAX_S: float = Field(
        300.0, gt=0, le=86400,
        description="Longest wait between two attempts to deliver an event (a receiver that is down is tried again "
        "forever, in order; nothing is dropped).",
    )
    EVENT_GIVE_UP_AFTER: int = Field(
        5, ge=1, le=1000,
        description="Attempts after which an event a receiver refuses for good (HTTP 4xx other than 408 and 429, a "
        "redirect) is marked failed and the next ones go on; the Settings page lists them and sends them again.",
    )
    EVENT_KEEP_DAYS: float = Field(
        7.0, gt=0, le=3650, description="Days delivered events stay in the station database before they are pruned."
    )

    @field_validator(
        "GALLERY_OVERALL_HEIGHT",
        "CAMERA_ADDRESS",
        "CAMERA_TOKEN",
        "TEST_DATA_FOLDER",
        "LOGFILE",
        "DATABASE_URL",
        "CAMERA_SNAPSHOT_URL",
        "CAMERA_DEVICE",
        "DESCRIPTOR_WEIGHTS_FILE",
        "DUMMY_USER",
        "DUMMY_PW",
        "SETTLE_FRAMES",
        "DETECTOR_WEIGHTS_FILE",
        "BACKGROUND_MODEL_FILE",
        "STYLE_MODEL_FILE",
        "SNAPSHOT_AT",
        "REPORTS_DIR",
        "RETENTION_MAX_GB",
        "RETENTION_MAX_DAYS",
        "WEBHOOK_SECRET",
        "MQTT_URL",
        "MQTT_TOPIC_PREFIX",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return _none_if_empty(value)

    @field_validator("SNAPSHOT_AT")
    @classmethod
    def _clock_time(cls, value: str | None) -> str | None:
        import re

        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError("give a time of day as HH:MM (24 h), e.g. 02:00, or leave it empty to turn it off")
        return None if value is None else value.strip()

    @field_validator("LANGUAGE", mode="before")
    @classmethod
    def _lower_language(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("LOGGING_LEVEL", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        value = value.strip().upper() if isinstance(value, str) else value
        return "WARNING" if value == "WARN" else value

    @field_validator("OPTIONS_IMAGE_RESOLUTION", mode="before")
    @classmethod
    def _resolution_list(cls, value: Any) -> Any:
        return _parse_int_list(value)

    @field_validator("OPTIONS_IMAGE_RESOLUTION")
    @classmethod
    def _resolution_bounds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one resolution")
        bad = [v for v in value if not 32 <= v <= 8192]
        if bad:
            raise ValueError(f"each resolution must be 32..8192 pixels, got {bad}")
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item == "*":
                raise ValueError("'*' would believe any client's X-Forwarded-For; list your proxy's address")
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/24)") from None
        return value

    @field_validator("EXPORT_DIR", mode="before")
    @classmethod
    def _export_dir_given(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("name a folder for the orders, e.g. ./export or /var/lib/extract-unique-images")
        return value

    @field_validator("EXPORT_DIR")
    @classmethod
    def _export_dir_apart(cls, value: Path) -> Path:
        where = value.expanduser().resolve()
        if where == PROJECT_ROOT or where in PROJECT_ROOT.parents:
            raise ValueError(
                f"{where} is the program's own folder (or holds it): the orders would mix with the code. "
                "Use a folder of their own, e.g. ./export"
            )
        return value

    @field_validator("LOGFILE")
    @classmethod
    def _logfile_writable(cls, value: Path | None) -> Path | None:
        if value is None:
            return value
        problem = _not_writable(value)
        if problem:
            raise ValueError(f"cannot write the log there: {problem}")
        return value

    @field_validator("API_TOKEN", "API_OPERATOR_TOKEN", "WEBHOOK_SECRET")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value().strip()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"a token must have at least {MIN_TOKEN_LENGTH} characters to be a secret; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("AUTH_ADMIN_EMAILS", "TRUSTED_PROXIES", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.strip("[]").replace('"', "").split(",") if part.strip()]
        return value

    @field_validator("CAMERA_PARAMS", "AUTH_USERS", mode="before")
    @classmethod
    def _params_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        return value

    @field_validator("CAMERA_ADDRESS", "CAMERA_SNAPSHOT_URL")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(("http://", "https://")):
            raise ValueError("use an http:// or https:// address")
        return value

    @field_validator("WEBHOOK_URLS", mode="before")
    @classmethod
    def _url_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("WEBHOOK_URLS")
    @classmethod
    def _webhook_urls(cls, value: list[str]) -> list[str]:
        from urllib.parse import urlsplit

        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is no http:// or https:// address with a host; give full addresses, "
                                 "comma-separated, e.g. https://mes.plant.local/hooks/capture")
        if len(set(value)) != len(value):
            raise ValueError("an address is given twice; give each receiver once")
        return value

    @field_validator("MQTT_URL")
    @classmethod
    def _mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        from urllib.parse import urlsplit

        if value is not None:
            parts = urlsplit(value.get_secret_value())
            try:
                parts.port
            except ValueError:
                raise ValueError("the port must be a number, e.g. mqtt://broker.plant.local:1883") from None
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                raise ValueError("use mqtt://[user:password@]host[:port] (mqtts:// for TLS), "
                                 "e.g. mqtt://station:secret@broker.plant.local:1883")
        return value

    @field_validator("MQTT_TOPIC_PREFIX")
    @classmethod
    def _topic_prefix(cls, value: str | None) -> str | None:
        if value is not None and (any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/")
                                  or "//" in value):
            raise ValueError("use topic levels without + # and without a leading, trailing or doubled /, "
                             "e.g. plant/packing-3")
        return value

    @field_validator("STATION_NAME")
    @classmethod
    def _station_name(cls, value: str) -> str:
        value = value.strip()
        if not _STATION_RE.fullmatch(value):
            raise ValueError("use 1 to 64 letters, digits, - _ . (it names the station's folder in the archive), "
                             "e.g. packing-3")
        return value

    @field_validator("STORAGE_URL")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "://" in value and not value.startswith(("s3://", "file:///")):
            raise ValueError("use s3://bucket/prefix, file:///path or a folder path")
        if value.startswith("s3://") and not value.removeprefix("s3://").split("/", 1)[0]:
            raise ValueError("name the bucket: s3://bucket/prefix")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("postgresql+psycopg://"):
            from sqlalchemy.engine import make_url

            try:
                url = make_url(value)
            except Exception:  # noqa: BLE001 - any parse error is the same mistake
                raise ValueError("cannot read this URL; write postgresql+psycopg://user:password@host/db") from None
            if not url.host or not url.database:
                raise ValueError("name the server and the database: postgresql+psycopg://user:password@host/db")
            return value
        if not value.startswith("sqlite:///"):
            raise ValueError("use sqlite:///path/to/file.db or postgresql+psycopg://user:password@host/db")
        path = value.removeprefix("sqlite:///")
        if not path.strip() or path.strip() == ":memory:" or path.startswith("file:") or "mode=memory" in path:
            raise ValueError("name a database file, e.g. sqlite:////var/lib/extract-unique-images/capture.sqlite3 "
                             "(an in-memory database would lose every order at the next start)")
        if Path(path).is_dir():
            raise ValueError(f"{path} is a folder; name the database file inside it")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.APP_MODE == "central" and not (self.CENTRAL_DATABASE_URL and self.STORAGE_URL):
            raise ValueError("APP_MODE=central shows the central archive: set CENTRAL_DATABASE_URL and STORAGE_URL")
        if self.DATABASE_URL and self.CENTRAL_DATABASE_URL and _same_database(
                self.DATABASE_URL, self.CENTRAL_DATABASE_URL.get_secret_value()):
            raise ValueError("DATABASE_URL and CENTRAL_DATABASE_URL name the same database: the station's own "
                             "database and the central archive have tables of the same names; give each its own")
        if bool(self.CENTRAL_DATABASE_URL) != bool(self.STORAGE_URL):
            raise ValueError("CENTRAL_DATABASE_URL and STORAGE_URL go together: the archive needs a database for the "
                             "rows and a store for the files (set both, or neither for a station on its own)")
        if self.API_OPERATOR_TOKEN is not None and self.API_OPERATOR_TOKEN.get_secret_value().strip():
            admin = self.API_TOKEN.get_secret_value().strip() if self.API_TOKEN is not None else ""
            if not admin:
                raise ValueError("API_OPERATOR_TOKEN needs API_TOKEN: set API_TOKEN too (the administrator's token), "
                                 "or leave API_OPERATOR_TOKEN empty")
            if admin == self.API_OPERATOR_TOKEN.get_secret_value().strip():
                raise ValueError("API_OPERATOR_TOKEN must differ from API_TOKEN (a role per token)")
        if self.OPTIONS_TH_MIN >= self.OPTIONS_TH_MAX:
            raise ValueError("OPTIONS_TH_MIN must be smaller than OPTIONS_TH_MAX")
        if (self.OPTIONS_TH_MAX - self.OPTIONS_TH_MIN) / self.OPTIONS_TH_INC > MAX_THRESHOLD_STEPS:
            raise ValueError(f"OPTIONS_TH_INC is too small: at most {MAX_THRESHOLD_STEPS} steps from OPTIONS_TH_MIN "
                             "to OPTIONS_TH_MAX")
        if bool(self.DUMMY_USER) != bool(self.DUMMY_PW and self.DUMMY_PW.get_secret_value()):
            raise ValueError("DUMMY_USER and DUMMY_PW go together: set both (a login) or neither (no such login); "
                             "one without the other would leave the dashboard open")
        if not self.OPTIONS_TH_MIN <= self.OPTIONS_TH_INIT <= self.OPTIONS_TH_MAX:
            raise ValueError("OPTIONS_TH_INIT must lie between OPTIONS_TH_MIN and OPTIONS_TH_MAX")
        if self.IMAGES_PER_SECOND_MIN > self.IMAGES_PER_SECOND_MAX:
            raise ValueError("IMAGES_PER_SECOND_MIN must not exceed IMAGES_PER_SECOND_MAX")
        if not self.IMAGES_PER_SECOND_MIN <= self.IMAGES_PER_SECOND <= self.IMAGES_PER_SECOND_MAX:
            raise ValueError("IMAGES_PER_SECOND must lie between IMAGES_PER_SECOND_MIN and IMAGES_PER_SECOND_MAX")
        if self.OPTIONS_IMAGE_RESOLUTION_INIT_IDX >= len(self.OPTIONS_IMAGE_RESOLUTION):
            if "OPTIONS_IMAGE_RESOLUTION_INIT_IDX" not in self.model_fields_set:  # default index, shorter list
                self.OPTIONS_IMAGE_RESOLUTION_INIT_IDX = len(self.OPTIONS_IMAGE_RESOLUTION) - 1
                return self
            raise ValueError(
                "OPTIONS_IMAGE_RESOLUTION_INIT_IDX must be an index into OPTIONS_IMAGE_RESOLUTION "
                f"(0..{len(self.OPTIONS_IMAGE_RESOLUTION) - 1})"
            )
        return self

    # ---- derived values ----
    @property
    def archive_configured(self) -> bool:
        """Whether a central archive is set (CENTRAL_DATABASE_URL and STORAGE_URL)."""
        return bool(self.CENTRAL_DATABASE_URL and self.STORAGE_URL)

    @property
    def archive_enabled(self) -> bool:
        """Whether this station syncs into the central archive (a station with the archive set)."""
        return self.APP_MODE == "station" and self.archive_configured

    @property
    def event_destinations(self) -> tuple[str, ...]:
        """Where the events of the capture go: each webhook URL, and ``mqtt`` with MQTT_URL (none: no events)."""
        if self.APP_MODE != "station":
            return ()
        return (*self.WEBHOOK_URLS, *(("mqtt",) if self.MQTT_URL else ()))

    @property
    def mqtt_topic_prefix(self) -> str:
        """MQTT_TOPIC_PREFIX, or ``extract-unique-images/<STATION_NAME>``."""
        return self.MQTT_TOPIC_PREFIX or f"extract-unique-images/{self.STATION_NAME}"

    @property
    def database_path(self) -> Path | None:
        """File of the SQLite database (None where DATABASE_URL names a PostgreSQL database)."""
        from utils.storage import default_database_path

        if self.DATABASE_URL:
            is_file = self.DATABASE_URL.startswith("sqlite")
            return Path(self.DATABASE_URL.removeprefix("sqlite:///")) if is_file else None
        return default_database_path(self.EXPORT_DIR)

    @property
    def database_url(self) -> str:
        """The station database as a SQLAlchemy URL: DATABASE_URL, else the SQLite file :attr:`database_path`."""
        return self.DATABASE_URL or f"sqlite:///{self.database_path}"

    def shown(self, name: str) -> str:
        """A setting's value as the check and the settings page show it: secrets as ***, passwords in URLs
        hidden."""
        value = getattr(self, name)
        if value is None:
            return ""
        if name in SECRET_SETTINGS and value:
            return "***"
        if name == "DATABASE_URL" and "://" in value and not value.startswith("sqlite"):
            from sqlalchemy.engine import make_url

            return make_url(value).render_as_string(hide_password=True)
        return str(value)

    @property
    def threshold_options(self) -> list[float]:
        """Values of the threshold slider, OPTIONS_TH_MIN..OPTIONS_TH_MAX in steps of OPTIONS_TH_INC."""
        n = int(round((self.OPTIONS_TH_MAX - self.OPTIONS_TH_MIN) / self.OPTIONS_TH_INC))
        values = [round(self.OPTIONS_TH_MIN + i * self.OPTIONS_TH_INC, 6) for i in range(n + 1)]
        return [v for v in values if v <= self.OPTIONS_TH_MAX + 1e-9]

    @property
    def max_upload_bytes(self) -> int:
        """The largest upload any page takes (Streamlit's and the gate's limit; each page checks its own)."""
        return max(self.UPLOAD_MAX_BYTES, self.EXTRACT_MAX_BYTES)

    @property
    def settle_frames(self) -> int:
        """SETTLE_FRAMES, or the default of the decision mode."""
        if self.SETTLE_FRAMES is not None:
            return self.SETTLE_FRAMES
        return DEFAULT_SETTLE_FRAMES if self.DECISION_MODE == "regional" else 0

    @property
    def initial_resolution(self) -> int:
        return self.OPTIONS_IMAGE_RESOLUTION[self.OPTIONS_IMAGE_RESOLUTION_INIT_IDX]

    @property
    def camera_kind(self) -> Literal["basler", "snapshot", "folder", "opencv"]:
        """The camera source in use, resolving CAMERA_SOURCE=auto."""
        if self.CAMERA_SOURCE != "auto":
            return self.CAMERA_SOURCE
        if self.TEST_DATA_FOLDER is not None:
            return "folder"
        if self.CAMERA_ADDRESS:
            return "basler"
        if self.CAMERA_SNAPSHOT_URL:
            return "snapshot"
        if self.CAMERA_DEVICE:
            return "opencv"
        return "folder"

    @property
    def reports_dir(self) -> Path:
        """Folder of the nightly analytics snapshots."""
        from utils.storage import PRIVATE_FOLDER

        return self.REPORTS_DIR if self.REPORTS_DIR is not None else self.EXPORT_DIR / PRIVATE_FOLDER / "reports"

    @property
    def demo_folder(self) -> Path:
        """Folder of the demo camera: TEST_DATA_FOLDER or the project's toydata/."""
        return self.TEST_DATA_FOLDER if self.TEST_DATA_FOLDER is not None else DEFAULT_TOYDATA


def _same_database(a: str, b: str) -> bool:
    """Whether two SQLAlchemy URLs name the same database (same server and database name, or the same file)."""
    from sqlalchemy.engine import make_url

    try:
        ua, ub = make_url(a), make_url(b)
    except Exception:  # noqa: BLE001 - a URL the other checks refuse
        return False
    if ua.get_backend_name() != ub.get_backend_name():
        return False
    if ua.get_backend_name() == "sqlite":
        return bool(ua.database and ub.database) and Path(ua.database).resolve() == Path(ub.database).resolve()
    return (ua.host, ua.port or 5432, ua.database) == (ub.host, ub.port or 5432, ub.database)


MACHINE_DEFAULTS = {"STATION_NAME"}  # defaults that differ from machine to machine
SECRET_SETTINGS = {"CAMERA_TOKEN", "DUMMY_PW", "AUTH_USERS", "API_TOKEN", "API_OPERATOR_TOKEN", "CENTRAL_DATABASE_URL",
                   "S3_SECRET_ACCESS_KEY", "WEBHOOK_SECRET", "MQTT_URL",
                   "WEBHOOK_URLS"}  # webhook addresses often carry a token


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the variable and what it accepts."""


def _describe_errors(err: ValidationError, prefix: str) -> str:
    lines = []
    for item in err.errors():
        loc = [str(p) for p in item.get("loc", ())]
        name = prefix + loc[0] if loc else "configuration"
        detail = ".".join(loc[1:])
        where = f"{name} ({detail})" if detail else name
        msg = item.get("msg", "invalid").removeprefix("Value error, ")
        given = item.get("input")
        hidden = isinstance(given, dict) or given is None or not loc or loc[0] in SECRET_SETTINGS  # no secret in logs
        shown = "" if hidden else f" (got {given!r})"
        if not loc:
            lines.append(f"- {msg}")
        else:
            lines.append(f"- {where}: {msg}{shown}")
    return "Invalid configuration, fix these environment variables and start again:\n" + "\n".join(lines)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the settings from ``environ`` (default: the process environment).

    Raises :class:`ConfigError` with one line per bad variable.
    """
    env = dict(os.environ if environ is None else environ)
    prefix = env.get("PREFIX", "").strip()
    prefix = f"{prefix}_" if prefix else ""
    values = {name: env[prefix + name] for name in Settings.model_fields if prefix + name in env}
    if prefix:
        dropped = [n for n in LOGIN_SETTINGS if env.get(n, "").strip() and prefix + n not in env]
        if dropped:
            raise ConfigError(
                "Invalid configuration, fix these environment variables and start again:\n" + "\n".join(
                    f"- {n} is set, but with PREFIX={prefix[:-1]} this dashboard reads {prefix}{n}, which is not set: "
                    f"it would run without that login setting. Rename it to {prefix}{n} (or unset PREFIX)."
                    for n in dropped
                )
            )
    try:
        # values are passed explicitly (not read again from os.environ) so that tests and
        # PREFIX work the same way; NoDecode/before-validators handle the string forms.
        return _SettingsFromValues(**values)
    except ValidationError as err:
        raise ConfigError(_describe_errors(err, prefix)) from None
    except json.JSONDecodeError as err:  # pragma: no cover - wrapped by pydantic in practice
        raise ConfigError(f"Invalid JSON in configuration: {err}") from None


class _SettingsFromValues(Settings):
    """Settings built only from the values given (no second read of the environment)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # type: ignore[override]
        return (init_settings,)



def settings_table() -> list[tuple[str, str, str]]:
    """(name, default, description) of every setting, for the README and the UI."""
    rows = []
    for name, field in Settings.model_fields.items():
        machine_dependent = name in MACHINE_DEFAULTS  # the description says what it defaults to
        default = None if machine_dependent else field.get_default(call_default_factory=True)
        if hasattr(default, "model_dump"):
            default = json.dumps(default.model_dump(exclude_none=True))
        rows.append((name, "" if default is None else str(default), field.description or ""))
    return rows


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|",
             "| `PREFIX` | | Read every variable below as `<PREFIX>_<NAME>` (several dashboards, one environment). |"]
    for name, default, description in settings_table():
        lines.append(f"| `{name}` | `{default}` | {description} |" if default else f"| `{name}` | | {description} |")
    return "\n".join(lines)


def main() -> int:
    """``python -m utils.config``: check the environment (values, then files, database and proxy trust:
    utils.preflight) and print the login in force and the settings in effect.

    ``--markdown`` prints the README's configuration table instead.
    """
    import sys

    if "--markdown" in sys.argv[1:]:
        print(markdown_table())
        return 0
    if "--update-readme" in sys.argv[1:]:
        readme = PROJECT_ROOT / "README.md"
        text = readme.read_text()
        start = text.index("<!-- config-table:start")
        start = text.index("\n", start) + 1
        end = text.index("<!-- config-table:end -->")
        readme.write_text(text[:start] + markdown_table() + "\n" + text[end:])
        return 0
    try:
        settings = load_settings()
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    from utils.auth import login_summary
    from utils.preflight import all_problems

    problems = all_problems(settings)
    if problems:
        print("Not ready to serve, fix these and start again:\n" + "\n".join(f"- {p}" for p in problems),
              file=sys.stderr)
        return 2
    print(f"# {login_summary(settings)}")
    for name in Settings.model_fields:
        print(f"{name}={settings.shown(name) if getattr(settings, name) is not None else None}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
