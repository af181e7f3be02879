"""Alembic's environment: the engine is handed over by records.engine (no alembic.ini, no URL
here: config.py is the only reader of the environment)."""
from alembic import context

from records.schema import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
