"""The environment's site is configuration, no longer a row: remove the rows and the column.

Until now every instance wrote POSTMETRIC_API_URL/POSTMETRIC_API_KEY to the shared
``default`` row at start, so the last instance to start redirected every other's
look-ups. Each instance now keeps its environment's site in memory; the old row held
nothing that the environment does not (its key came from there), so it goes.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sites = sa.table("sites", sa.column("from_environment", sa.Boolean))
    op.execute(sites.delete().where(sites.c.from_environment.is_(sa.true())))
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("from_environment")


def downgrade() -> None:
    # The environment's row comes back at the older version's next start.
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("from_environment", sa.Boolean, nullable=False, server_default=sa.false()))
