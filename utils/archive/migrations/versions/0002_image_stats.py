"""Image statistics computed centrally from the archived files (brightness, contrast, sharpness, colours).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "image_stats",
        sa.Column("image_id", _ID, sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("brightness", sa.Float),
        sa.Column("contrast", sa.Float),
        sa.Column("sharpness", sa.Float),
        sa.Column("avg_hex", sa.String(7)),
        sa.Column("dominant_hex", sa.String(7)),
        sa.Column("error", sa.Text),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("image_stats")
