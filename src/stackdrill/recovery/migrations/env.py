"""Alembic environment: runs on the connection `recovery.db.migrate` hands over.

Called with a connection in `config.attributes["connection"]` (the normal path)
or, from the alembic command line, with `sqlalchemy.url` in the config or the
`STACKDRILL_INVENTORY_URL` environment variable (recovery.dburl's rule).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from stackdrill.recovery.dburl import inventory_url
from stackdrill.recovery.inventory import Base


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or inventory_url().url
    if url is None:
        raise SystemExit("alembic: set sqlalchemy.url or STACKDRILL_INVENTORY_URL")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


_run()
