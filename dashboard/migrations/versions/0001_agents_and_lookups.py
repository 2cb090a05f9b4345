"""Agents and their look-ups.

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("session_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "lookup_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("site", sa.String(200), nullable=False, server_default=""),
        sa.Column("visitor_id", sa.Text, nullable=False),
        sa.Column("action", sa.String(20), nullable=False, server_default="lookup"),
        sa.Column("outcome", sa.String(40), nullable=False, server_default="ok"),
        sa.Column("ticket", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lookup_events_agent_created", "lookup_events", ["agent_id", "created_at"])
    op.create_index("ix_lookup_events_visitor", "lookup_events", ["visitor_id"])
    op.create_index("ix_lookup_events_created", "lookup_events", ["created_at"])


def downgrade() -> None:
    op.drop_table("lookup_events")
    op.drop_table("agents")
