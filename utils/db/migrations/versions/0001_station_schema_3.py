"""The station database as schema version 3 left it: orders, images, labels, jobs, leases, the sync's outbox.

A database of the versions before Alembic is brought to version 3 by their own steps (``utils.storage._MIGRATIONS``)
and then stamped at this revision; a new one is created by it. On SQLite it also sets ``PRAGMA user_version = 3``,
as version 3 did, so that those versions see the database as theirs.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY, the rowid
_REAL = sa.Float().with_variant(sa.REAL(), "sqlite")  # SQLite: REAL, as version 3 declared it


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("order_number", sa.Text, nullable=False),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("closed_at", sa.Text),
        sa.Column("threshold", _REAL),
        sa.Column("images_per_second", _REAL),
        sa.Column("resolution", sa.Integer),
        sa.Column("camera", sa.Text),
        sa.Column("descriptor", sa.Text),
        sa.Column("video_file", sa.Text),
        sa.Column("video_frames", sa.Integer),
        sa.Column("video_fps", _REAL),
        sa.Column("kind", sa.Text, nullable=False, server_default=sa.text("'capture'")),
        sa.Column("keep", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("trashed_at", sa.Text),
        sa.Column("station", sa.Text),
        sa.Column("synced_at", sa.Text),
        sa.UniqueConstraint("folder"),
        sa.CheckConstraint("status IN ('open', 'closed')"),
    )
    op.create_index("orders_number", "orders", ["order_number"])
    op.create_table(
        "images",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", _ID, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("captured_at", sa.Text, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("size_bytes", _ID),
        sa.Column("distance", _REAL),
        sa.Column("forced", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("camera", sa.Text),
        sa.Column("features", sa.LargeBinary),
        sa.Column("kind", sa.Text, nullable=False, server_default=sa.text("'capture'")),
        sa.Column("source_image_id", _ID, sa.ForeignKey("images.id")),
        sa.Column("operation", sa.Text),
        sa.Column("tool", sa.Text),
        sa.Column("source_url", sa.Text),
        sa.Column("trashed_at", sa.Text),
        sa.Column("station", sa.Text),
        sa.Column("synced_at", sa.Text),
        sa.Column("local_removed_at", sa.Text),
        sa.UniqueConstraint("order_id", "seq"),
        sa.UniqueConstraint("order_id", "file_name"),
        sa.CheckConstraint("state IN ('pending', 'ok', 'trashed')"),
    )
    op.create_index("images_order", "images", ["order_id", "state"])
    op.create_index("images_source", "images", ["source_image_id"])
    op.create_index("images_unsynced", "images", ["synced_at"])
    op.create_table(
        "labels",
        sa.Column("image_id", _ID, sa.ForeignKey("images.id"), primary_key=True, autoincrement=False),
        sa.Column("rank", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("score", _REAL, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
    )
    op.create_index("labels_name", "labels", ["name"])
    op.create_table(
        "jobs",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("last_started", sa.Text),
        sa.Column("last_finished", sa.Text),
        sa.Column("duration_s", _REAL),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("next_run", sa.Text),
        sa.Column("runs", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_at", _REAL, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", _ID, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("failed_at", sa.Text),
        sa.Column("done_at", sa.Text),
        sa.CheckConstraint("entity IN ('order', 'image')"),
        sqlite_autoincrement=True,
    )
    op.create_index("outbox_waiting", "outbox", ["done_at", "failed_at", "id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA user_version = 3")


def downgrade() -> None:
    for name in ("outbox", "leases", "jobs", "labels", "images", "orders"):
        op.drop_table(name)
