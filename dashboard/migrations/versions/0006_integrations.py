"""Help-desk integrations (the visitor card in Zendesk, Intercom or a JSON caller),
agents' Zendesk user IDs, and which integration and help-desk agent a look-up came from.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False, server_default=sa.text("''")),
        sa.Column("installation_id", sa.String(64), nullable=True),
        sa.Column("site_slug", sa.String(64), nullable=True),
        sa.Column("visitor_field", sa.String(200), nullable=False, server_default=sa.text("''")),
        sa.Column("secret_encrypted", sa.Text, nullable=True),
        sa.Column("secret_last4", sa.String(4), nullable=True),
        sa.Column("previous_secret_encrypted", sa.Text, nullable=True),
        sa.Column("previous_secret_last4", sa.String(4), nullable=True),
        sa.Column("public_key_pem", sa.Text, nullable=True),
        sa.Column("trust_all_agents", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("zendesk_user_id", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_agents_zendesk_user_id", ["zendesk_user_id"])
    with op.batch_alter_table("lookup_events") as batch:
        batch.add_column(sa.Column("integration", sa.String(64), nullable=True))
        batch.add_column(sa.Column("helpdesk_agent", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lookup_events") as batch:
        batch.drop_column("helpdesk_agent")
        batch.drop_column("integration")
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("uq_agents_zendesk_user_id", type_="unique")
        batch.drop_column("zendesk_user_id")
    op.drop_table("integrations")
