"""Inventory databases for the tests: every test that takes `inventory_url` runs twice,
on a SQLite file and on a real PostgreSQL (scripts/test.sh starts a throwaway cluster and
names it in STACKDRILL_TEST_POSTGRES_URL).

Without that variable the PostgreSQL half skips on a developer's machine, but fails in
CI (CI=1, or STACKDRILL_TEST_POSTGRES_REQUIRED=1 from the test script): a check that had
nothing to check does not pass.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stackdrill.recovery.dburl import InventoryTarget, parse, run_namespace

POSTGRES_ENV = "STACKDRILL_TEST_POSTGRES_URL"
REQUIRED_ENV = "STACKDRILL_TEST_POSTGRES_REQUIRED"


def postgres_required() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get(REQUIRED_ENV) == "1"


@pytest.fixture(scope="session")
def postgres_server() -> InventoryTarget:
    """The test PostgreSQL server (each user of it makes its own schema)."""
    raw = os.environ.get(POSTGRES_ENV)
    if not raw:
        why = f"{POSTGRES_ENV} is not set (scripts/test.sh starts a PostgreSQL and sets it)"
        if postgres_required():
            pytest.fail(f"{why}; in CI the PostgreSQL tests must run, not skip")
        pytest.skip(why)
    return InventoryTarget(parse(raw, POSTGRES_ENV))


@pytest.fixture(params=["sqlite", "postgres"])
def inventory_url(request: pytest.FixtureRequest,
                  tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """name -> the URL of this test's inventory of that name (a SQLite file, or a schema
    of its own on the PostgreSQL server, dropped after the test)."""
    target = (InventoryTarget() if request.param == "sqlite"
              else request.getfixturevalue("postgres_server"))
    made: dict[str, str] = {}
    with ExitStack() as stack:

        def url(name: str) -> str:
            if name not in made:
                made[name] = stack.enter_context(run_namespace(target, tmp_path, name))
            return made[name]

        yield url
        gc.collect()  # engines the test dropped close their pooled connections first


@pytest.fixture
def limited_user(postgres_server: InventoryTarget) -> Iterator[str]:
    """The test server's URL as a user who may log in but create nothing: no schema in
    the database, no table in its public schema (PostgreSQL 15's defaults for a new role,
    what a DBA hands out unless asked for more)."""
    assert postgres_server.url is not None
    role = f"sd_limited_{os.getpid()}"
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        yield postgres_server.url.set(username=role).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()
