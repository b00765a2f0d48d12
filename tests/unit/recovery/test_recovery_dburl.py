"""Where the inventory lives: one rule (--inventory, else STACKDRILL_INVENTORY_URL, else a
SQLite file per run), bad URLs refused in one line without a password, and a namespace
per run so that runs on one server never see each other's rows."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from stackdrill.recovery.db import open_inventory, seed_inventory
from stackdrill.recovery.dburl import (
    ENV,
    InventoryRefused,
    InventoryTarget,
    InventoryUnreachable,
    InventoryURLError,
    inventory_url,
    run_namespace,
)
from stackdrill.recovery.inventory import Instance
from stackdrill.topology import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


def test_the_option_wins_over_the_variable_which_wins_over_the_default(tmp_path: Path) -> None:
    env = {ENV: f"sqlite:///{tmp_path / 'from-env.sqlite'}"}
    given = inventory_url(f"sqlite:///{tmp_path / 'given.sqlite'}", env)
    assert given.url is not None and given.url.database == str(tmp_path / "given.sqlite")
    from_env = inventory_url(None, env)
    assert from_env.url is not None and from_env.url.database == str(tmp_path / "from-env.sqlite")
    assert inventory_url(None, {}).url is None  # a SQLite file in each run's directory


def test_a_bare_postgresql_url_means_the_shipped_driver() -> None:
    target = inventory_url("postgresql://u@db.example/inv", {})
    assert target.url is not None and target.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(("raw", "says"), [
    ("mysql://admin:s3cret@db/inv", "unsupported database 'mysql'"),
    ("not a url at all", "not a database URL"),
    ("sqlite://", "in-memory SQLite"),
    ("postgresql+nodriver://admin:s3cret@db/inv", "postgresql+nodriver"),
])
def test_a_bad_url_is_bad_input_named_without_its_password(raw: str, says: str) -> None:
    with pytest.raises(InventoryURLError) as bad:
        inventory_url(raw, {})
    message = str(bad.value)
    assert bad.value.exit_code == 2
    assert says in message and "s3cret" not in message and "\n" not in message


def test_an_unreachable_server_is_an_infrastructure_error_without_the_password(
        tmp_path: Path) -> None:
    target = inventory_url(f"postgresql://admin:s3cret@/inv?host={tmp_path}", {})
    with pytest.raises(InventoryUnreachable) as down:
        target.check()
    assert down.value.exit_code == 3
    assert "server unreachable" in str(down.value) and "s3cret" not in str(down.value)
    assert "admin:***@" in str(down.value)


def _instances(url: str) -> list[str]:
    with open_inventory(url)() as s:
        return sorted(s.scalars(select(Instance.host)).all())


def test_two_runs_on_one_postgresql_see_only_their_own_rows(
        postgres_server: InventoryTarget, tmp_path: Path) -> None:
    """Each run gets a schema of its own, dropped with its tables when the run ends."""
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    with run_namespace(postgres_server, tmp_path, "run one") as one, \
            run_namespace(postgres_server, tmp_path, "run two") as two:
        assert one != two
        sessions = open_inventory(one)
        with sessions() as s, s.begin():
            seed_inventory(s, topo, 16.0, 1.5, ())
            s.execute(Instance.__table__.update().values(host="moved"))
        assert set(_instances(one)) == {"moved"}
        assert _instances(two) == []
        schema = one.split("search_path%3D")[1]
    assert postgres_server.url is not None
    with create_engine(postgres_server.url).connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"),
                            {"n": schema}).scalar()
    assert left == 0


def test_a_named_sqlite_file_holds_one_run_and_is_removed_after_it(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    target = inventory_url(f"sqlite:///{path}", {})
    with run_namespace(target, tmp_path, "run") as url:
        open_inventory(url)
        assert path.exists()
        with pytest.raises(InventoryURLError, match="holds one run"):
            target.check()  # what `run` asks before it brings a lab up
        with pytest.raises(InventoryURLError, match="holds one run"), \
                run_namespace(target, tmp_path, "another run"):
            pass
    assert not path.exists()


def test_a_schema_the_server_refuses_is_an_infrastructure_error(
        limited_user: str, tmp_path: Path) -> None:
    """CREATE SCHEMA refused after `check` passed (a privilege taken away meanwhile):
    exit 3 and the server's reason, not a database traceback."""
    target = inventory_url(limited_user, {})
    with pytest.raises(InventoryRefused) as refused, run_namespace(target, tmp_path, "run"):
        pass
    said = str(refused.value)
    assert refused.value.exit_code == 3
    assert 'CREATE SCHEMA "sd_run_' in said and "refused: permission denied" in said


def test_a_schema_that_cannot_be_dropped_after_a_failed_run_keeps_the_runs_error(
        postgres_server: InventoryTarget, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The server refused the run's user meanwhile (a failover to a replica without it, a
    role disabled): the run's own error reaches the user, not the DROP's; the schema left
    behind is named so that someone can drop it."""
    assert postgres_server.url is not None
    # (its own level: an in-process fuzz sweep earlier in this worker may have raised
    # the `stackdrill` logger's)
    caplog.set_level(logging.WARNING, logger="stackdrill.recovery.dburl")
    role = f"sd_dropped_{os.getpid()}"
    admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT CREATE ON DATABASE postgres TO "{role}"'))
    target = inventory_url(postgres_server.url.set(username=role).render_as_string(False), {})
    try:
        with pytest.raises(RuntimeError, match="the run failed"), \
                run_namespace(target, tmp_path, "run"):
            with admin.connect() as conn:
                conn.execute(text(f'ALTER ROLE "{role}" NOLOGIN'))
            raise RuntimeError("the run failed")
        assert "inventory schema sd_run_" in caplog.text and "left on" in caplog.text
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()
