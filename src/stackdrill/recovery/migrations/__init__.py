"""Alembic migrations of the inventory schema, run programmatically by `recovery.db`."""
