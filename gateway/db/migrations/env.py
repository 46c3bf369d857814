"""Alembic's environment for fedgate: always run on a connection fedgate opened and locked."""

from __future__ import annotations

from alembic import context

from gateway.db.migrate import VERSION_TABLE
from gateway.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only by running the alembic CLI by hand
    raise RuntimeError("fedgate's migrations run through `fedgate db upgrade`, not the alembic command")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite alters tables by copying them; batch mode lets later migrations do that on both backends.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
