"""The camera adapter's parameters saved on the Camera settings page (they override CAMERA_PARAMS until reset).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_parameters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("saved_by", sa.Text, nullable=False),
        sa.Column("saved_at", sa.Text, nullable=False),
        sa.Column("test_shot", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("camera_parameters")
