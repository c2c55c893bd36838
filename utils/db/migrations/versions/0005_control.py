"""Control of the capture engine from the HTTP API: the command queue and the engine's published state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_REAL = sa.Float().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "control_commands",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("deadline", _REAL, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'waiting'")),
        sa.Column("status", sa.Integer),
        sa.Column("result", sa.Text),
        sa.Column("answered_at", sa.Text),
        sa.CheckConstraint("state IN ('waiting', 'running', 'done', 'expired')"),
        sqlite_autoincrement=True,
    )
    op.create_index("control_commands_waiting", "control_commands", ["state", "id"])
    op.create_table(
        "engine_status",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("updated_at", _REAL, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("engine_status")
    op.drop_index("control_commands_waiting", "control_commands")
    op.drop_table("control_commands")
