"""The per-image statistics table (utils/stats_store.py), until now made by the statistics indexer itself.

A database where the indexer of an earlier version made it keeps it as it is (the same columns).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_REAL = sa.Float().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("image_stats"):
        return
    op.create_table(
        "image_stats",
        sa.Column("image_id", _ID, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("format", sa.Text),
        sa.Column("mode", sa.Text),
        sa.Column("file_size", _ID),
        sa.Column("file_mtime", sa.Text),
        *[sa.Column(name, _REAL) for name in ("brightness", "contrast", "sharpness", "opaque_fraction")],
        sa.Column("avg_method", sa.Text),
        *[sa.Column(name, _REAL) for name in ("avg_r", "avg_g", "avg_b")],
        sa.Column("avg_hex", sa.Text),
        *[sa.Column(name, _REAL) for name in ("dom_r", "dom_g", "dom_b")],
        sa.Column("dominant_hex", sa.Text),
        sa.Column("exif_captured_at", sa.Text),
        *[sa.Column(name, _REAL) for name in ("gps_latitude", "gps_longitude", "gps_altitude")],
        sa.Column("exif_json", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("image_stats")
