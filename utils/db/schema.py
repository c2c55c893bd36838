"""The station database's tables (one :data:`metadata`): orders, images, labels, jobs, leases, the sync's outbox,
the events of the capture and their delivery (utils/events).

The column types keep SQLite's on-disk format of earlier versions: times are ISO 8601 text (UTC), flags are
integers, the features a BLOB (BYTEA on PostgreSQL); ids are SQLite's ``INTEGER PRIMARY KEY`` (BIGSERIAL on
PostgreSQL). Changes go into a new Alembic revision in ``utils/db/migrations/versions`` as well.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    REAL,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)

#: Integer keys: SQLite's INTEGER (a rowid alias when it is the primary key), 64 bits on PostgreSQL.
BigInt = BigInteger().with_variant(Integer, "sqlite")
#: Floating point: REAL on SQLite (as declared before), double precision on PostgreSQL.
Real = Float().with_variant(REAL(), "sqlite")
#: Times as ISO 8601 text (``2026-11-21T10:15:02.123000+00:00``): the format earlier versions stored.
When = Text

metadata = MetaData()

orders = Table(
    "orders", metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("order_number", Text, nullable=False),
    Column("folder", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_at", When, nullable=False),
    Column("closed_at", When),
    Column("threshold", Real),
    Column("images_per_second", Real),
    Column("resolution", Integer),
    Column("camera", Text),
    Column("descriptor", Text),
    Column("video_file", Text),
    Column("video_frames", Integer),
    Column("video_fps", Real),
    Column("kind", Text, nullable=False, server_default=text("'capture'")),
    Column("keep", Integer, nullable=False, server_default=text("0")),
    Column("trashed_at", When),
    Column("station", Text),
    Column("synced_at", When),
    UniqueConstraint("folder"),
    CheckConstraint("status IN ('open', 'closed')"),
    Index("orders_number", "order_number"),
)

images = Table(
    "images", metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("order_id", BigInt, ForeignKey("orders.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("captured_at", When, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("size_bytes", BigInt),
    Column("distance", Real),
    Column("forced", Integer, nullable=False, server_default=text("0")),
    Column("camera", Text),
    Column("features", LargeBinary),
    Column("kind", Text, nullable=False, server_default=text("'capture'")),
    Column("source_image_id", BigInt, ForeignKey("images.id")),
    Column("operation", Text),  # JSON text
    Column("tool", Text),
    Column("source_url", Text),
    Column("trashed_at", When),
    Column("station", Text),
    Column("synced_at", When),
    Column("local_removed_at", When),
    UniqueConstraint("order_id", "seq"),
    UniqueConstraint("order_id", "file_name"),
    CheckConstraint("state IN ('pending', 'ok', 'trashed')"),
    Index("images_order", "order_id", "state"),
    Index("images_source", "source_image_id"),
    Index("images_unsynced", "synced_at"),
)

labels = Table(
    "labels", metadata,
    Column("image_id", BigInt, ForeignKey("images.id"), primary_key=True, autoincrement=False),
    Column("rank", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("score", Real, nullable=False),
    Column("model", Text, nullable=False),
    Index("labels_name", "name"),
)

jobs = Table(
    "jobs", metadata,
    Column("name", Text, primary_key=True),
    Column("last_started", When),
    Column("last_finished", When),
    Column("duration_s", Real),
    Column("result", Text),
    Column("error", Text),
    Column("next_run", When),
    Column("runs", Integer, nullable=False, server_default=text("0")),
    Column("failures", Integer, nullable=False, server_default=text("0")),
)

leases = Table(
    "leases", metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", Real, nullable=False),  # epoch seconds
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("entity", Text, nullable=False),
    Column("entity_id", BigInt, nullable=False),
    Column("created_at", When, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("failed_at", When),
    Column("done_at", When),
    CheckConstraint("entity IN ('order', 'image')"),
    Index("outbox_waiting", "done_at", "failed_at", "id"),
    sqlite_autoincrement=True,  # ids are never reused (as in schema version 3)
)

#: Per-image statistics (utils/stats_store.py): one row per image id, written only by the statistics indexer.
image_stats = Table(
    "image_stats", metadata,
    Column("image_id", BigInt, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("computed_at", When, nullable=False),
    Column("error", Text),
    Column("width", Integer),
    Column("height", Integer),
    Column("format", Text),
    Column("mode", Text),
    Column("file_size", BigInt),
    Column("file_mtime", When),
    Column("brightness", Real),
    Column("contrast", Real),
    Column("sharpness", Real),
    Column("opaque_fraction", Real),
    Column("avg_method", Text),
    Column("avg_r", Real),
    Column("avg_g", Real),
    Column("avg_b", Real),
    Column("avg_hex", Text),
    Column("dom_r", Real),
    Column("dom_g", Real),
    Column("dom_b", Real),
    Column("dominant_hex", Text),
    Column("exif_captured_at", When),
    Column("gps_latitude", Real),
    Column("gps_longitude", Real),
    Column("gps_altitude", Real),
    Column("exif_json", Text),
)

#: Events of the capture (utils/events): one row per event, its JSON body exactly as it is sent; written in the same
#: transaction as the order or image row it describes.
events = Table(
    "events", metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),  # the order of the events
    Column("event_id", Text, nullable=False),  # UUID: receivers dedupe by it
    Column("type", Text, nullable=False),
    Column("created_at", When, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("event_id"),
    sqlite_autoincrement=True,  # ids are never reused: the order of the events holds after pruning
)

#: The delivery of each event to each destination (a webhook URL, or "mqtt").
event_deliveries = Table(
    "event_deliveries", metadata,
    Column("event", BigInt, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("destination", Text, primary_key=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", When),  # empty: at once
    Column("last_error", Text),
    Column("failed_at", When),  # refused for good (e.g. 404) after several attempts; retried on request
    Column("done_at", When),
    Index("event_deliveries_waiting", "destination", "done_at", "failed_at", "event"),
)

#: Control of the capture engine from other processes (utils/control): the HTTP API queues a command, the one
#: process that runs the engine (the dashboard's) carries it out and writes the answer.
control_commands = Table(
    "control_commands", metadata,
    Column("id", BigInt, primary_key=True, autoincrement=True),
    Column("action", Text, nullable=False),  # start, close, save-image
    Column("payload", Text, nullable=False),  # JSON
    Column("requested_by", Text),
    Column("created_at", When, nullable=False),
    Column("deadline", Real, nullable=False),  # epoch seconds: not carried out after it
    Column("state", Text, nullable=False, server_default=text("'waiting'")),
    Column("status", Integer),  # the HTTP status of the answer
    Column("result", Text),  # JSON
    Column("answered_at", When),
    CheckConstraint("state IN ('waiting', 'running', 'done', 'expired')"),
    Index("control_commands_waiting", "state", "id"),
    sqlite_autoincrement=True,
)

#: What the engine does right now (one row per engine name), written by its holder about once a second.
engine_status = Table(
    "engine_status", metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("updated_at", Real, nullable=False),  # epoch seconds
    Column("state", Text, nullable=False),  # JSON
)

#: The camera adapter's parameters saved on the Camera settings page (utils/camera_params.py): one row per camera
#: (``name``; "adapter" for the BaslerCameraAdapter), overriding CAMERA_PARAMS until they are reset.
camera_parameters = Table(
    "camera_parameters", metadata,
    Column("name", Text, primary_key=True),
    Column("params", Text, nullable=False),  # JSON: the query parameters of /basler/take-photo that are set
    Column("saved_by", Text, nullable=False),
    Column("saved_at", When, nullable=False),
    Column("test_shot", Text),  # what the test shot with exactly these values showed; NULL: saved without one
)
