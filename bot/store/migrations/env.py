"""Alembic environment: the connection comes from bot.store.migrations (never from a file)."""
from alembic import context

from bot.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  compare_type=True, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
