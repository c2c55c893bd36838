"""The central archive: stations, their orders and images.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("first_seen", _WHEN, nullable=False),
        sa.Column("last_seen", _WHEN, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("origin_id", sa.BigInteger, nullable=False),
        sa.Column("order_number", sa.String(200), nullable=False),
        sa.Column("folder", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("closed_at", _WHEN),
        sa.Column("threshold", sa.Float),
        sa.Column("images_per_second", sa.Float),
        sa.Column("resolution", sa.Integer),
        sa.Column("camera", sa.Text),
        sa.Column("descriptor", sa.Text),
        sa.Column("video_key", sa.Text),
        sa.Column("video_frames", sa.Integer),
        sa.Column("video_fps", sa.Float),
        sa.Column("keep", sa.Boolean, nullable=False),
        sa.Column("trashed_at", _WHEN),
        sa.Column("synced_at", _WHEN, nullable=False),
        sa.UniqueConstraint("station", "origin_id", name="orders_station_origin"),
    )
    op.create_index("orders_number", "orders", ["order_number"])
    op.create_table(
        "images",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", _ID, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("origin_id", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("file_name", sa.String(300), nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("captured_at", _WHEN, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("distance", sa.Float),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("camera", sa.Text),
        sa.Column("source_origin_id", sa.BigInteger),
        sa.Column("operation", sa.JSON),
        sa.Column("tool", sa.Text),
        sa.Column("source_url", sa.Text),
        sa.Column("trashed_at", _WHEN),
        sa.Column("synced_at", _WHEN, nullable=False),
        sa.UniqueConstraint("station", "origin_id", name="images_station_origin"),
    )
    op.create_index("images_order", "images", ["order_id"])
    op.create_index("images_captured", "images", ["captured_at"])


def downgrade() -> None:
    op.drop_table("images")
    op.drop_table("orders")
    op.drop_table("stations")
