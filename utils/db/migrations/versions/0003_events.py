"""The events of the capture and their delivery to webhooks and MQTT (utils/events): ``events`` (one row per event,
its JSON body as sent) and ``event_deliveries`` (per destination: attempts, next attempt, done, failed, last error).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("event_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_deliveries",
        sa.Column("event", _ID, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True,
                  autoincrement=False),
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("failed_at", sa.Text),
        sa.Column("done_at", sa.Text),
    )
    op.create_index("event_deliveries_waiting", "event_deliveries",
                    ["destination", "done_at", "failed_at", "event"])


def downgrade() -> None:
    op.drop_index("event_deliveries_waiting", "event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_table("events")
