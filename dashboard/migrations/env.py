"""Alembic environment: the app hands over an open connection (see dashboard.db.migrate)."""
from alembic import context

from dashboard.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the app runs migrations
    raise RuntimeError("Run migrations through dashboard.db.migrate(), which passes a connection.")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
