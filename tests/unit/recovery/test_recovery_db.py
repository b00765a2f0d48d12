"""A new SQLite inventory is a copy of the schema Alembic migrated once in this process:
the same schema as migrating the file itself, without running the migrations per file."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from stackdrill.recovery.db import connect, current_revision, migrate, open_inventory
from stackdrill.recovery.inventory import Base, Service

MIGRATION_LOG = "alembic.runtime.migration"


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    """Every table, index and trigger as SQLite stores it, and the Alembic revision."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                            "ORDER BY type, name").fetchall()
        rows += [("revision", "", "", v) for (v,) in
                 conn.execute("SELECT version_num FROM alembic_version")]
    conn.close()
    return rows


def test_a_new_sqlite_inventory_has_the_migrated_schema(tmp_path: Path) -> None:
    """Opening a new file gives exactly what `alembic upgrade head` on that file gives,
    and the models see no drift in it."""
    migrated = connect(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    migrate(migrated)
    opened = open_inventory(f"sqlite:///{tmp_path / 'opened.sqlite'}")
    migrated.dispose()
    assert _schema(tmp_path / "opened.sqlite") == _schema(tmp_path / "migrated.sqlite")
    engine = opened.kw["bind"]
    assert current_revision(engine) == "0002"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_new_sqlite_inventories_do_not_run_the_migrations_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """After the first inventory of the process, a new one is a copy: Alembic logs no
    upgrade, and each copy is a database of its own."""
    open_inventory(f"sqlite:///{tmp_path / 'first.sqlite'}")
    caplog.set_level(logging.INFO, logger=MIGRATION_LOG)
    sessions = [open_inventory(f"sqlite:///{tmp_path / f'inv{i}.sqlite'}") for i in range(3)]
    assert [r.getMessage() for r in caplog.records if r.name == MIGRATION_LOG
            and "Running upgrade" in r.getMessage()] == []
    with sessions[0]() as s, s.begin():
        s.add(Service(host="cmp1", binary="nova-compute", disabled=False, forced_down=False,
                      report_count=0))
    with sessions[1]() as s:
        assert s.scalars(select(Service)).all() == []


def test_an_existing_sqlite_inventory_is_migrated_in_place(tmp_path: Path) -> None:
    """A file left at an older revision keeps its rows and is brought to head, never
    replaced by the template."""
    path = tmp_path / "old.sqlite"
    old = connect(f"sqlite:///{path}")
    migrate(old, "0001")
    with old.begin() as conn:
        conn.execute(Service.__table__.insert().values(  # type: ignore[attr-defined]
            host="cmp9", binary="nova-compute", disabled=False, forced_down=False,
            report_count=0))
    old.dispose()
    sessions = open_inventory(f"sqlite:///{path}")
    assert current_revision(sessions.kw["bind"]) == "0002"
    with sessions() as s:
        assert s.scalars(select(Service.host)).all() == ["cmp9"]
