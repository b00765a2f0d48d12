"""`--inventory URL` as a user gives it: a real drill and a named lab's recovery on a real
PostgreSQL pass and leave no schema behind; a bad or unreachable URL is one line, its
exit code, and no password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from stackdrill.cli import cli
from stackdrill.recovery.dburl import InventoryTarget

ROOT = Path(__file__).resolve().parents[3]
DRILL = str(ROOT / "lab" / "drills" / "nova-host-failure.yaml")
TOPO = str(ROOT / "lab" / "topologies" / "nova-drbd.yaml")


def sd(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _schemas(server: InventoryTarget) -> set[str]:
    assert server.url is not None
    engine = create_engine(server.url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sd\\_%'"))
        names = {str(r[0]) for r in rows}
    engine.dispose()
    return names


def test_a_drill_runs_on_postgresql_and_passes(postgres_server: InventoryTarget,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stackdrill.recovery.dburl")
    url = postgres_server.url
    assert url is not None
    code, out, err = sd("run", DRILL, "--inventory", url.render_as_string(False))
    assert code == 0, (out, err)
    assert "PASS nova-host-failure" in out
    said = [r.getMessage() for r in caplog.records]
    created = {m.split()[2] for m in said
               if m.startswith("inventory schema sd_inventory_") and "created" in m}
    assert len(created) == 1 and any(m.endswith("dropped") for m in said)
    # the run's schema went with the run (other tests' runs may hold theirs meanwhile)
    assert not created & _schemas(postgres_server)


def test_a_named_labs_recovery_uses_the_variable(
        postgres_server: InventoryTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    assert postgres_server.url is not None
    monkeypatch.setenv("STACKDRILL_INVENTORY_URL", postgres_server.url.render_as_string(False))
    assert sd("up", TOPO, "--lab", "pg1")[0] == 0
    sd("inject", "host_crash", "host=cmp1", "--lab", "pg1")
    sd("wait", "60", "--lab", "pg1")
    code, out, err = sd("recover", "--lab", "pg1", "--dry-run")  # its plan: a scratch schema
    assert code == 0 and "cmp1 is down" in out, (out, err)
    code, out, err = sd("recover", "--lab", "pg1")
    assert code == 0, (out, err)
    assert "web1" in out and "recovered" in out
    # the variable is what the command used: pointed at no server, the recovery cannot run
    monkeypatch.setenv("STACKDRILL_INVENTORY_URL", f"postgresql://u@/inv?host={tmp_path}")
    code, _out, err = sd("recover", "--lab", "pg1")
    assert code == 3 and "server unreachable" in err


@pytest.mark.parametrize(("url", "code"), [
    ("mysql://admin:s3cret@db/inv", 2),
    ("postgresql://admin:s3cret@/inv?host=/nonexistent-sd-socket-dir", 3),
])
def test_a_bad_inventory_is_one_line_and_no_password(url: str, code: int) -> None:
    got, _out, err = sd("run", DRILL, "-q", "--inventory", url)
    assert got == code
    assert err.startswith("stackdrill: error: ")
    assert "s3cret" not in err and "Traceback" not in err
    assert "admin:***@" in err


def test_a_user_who_may_not_create_schemas_is_refused_before_a_lab_is_brought_up(
        limited_user: str) -> None:
    """Not exit 1 with a traceback (a FAIL, to a gate), as it was: an environment
    problem, exit 3, "no verdict", the line says what to grant, and no lab brought up."""
    code, out, err = sd("run", DRILL, "--inventory", limited_user)
    assert code == 3, (out, err)
    assert "may not create schemas in database 'postgres'" in err
    assert "GRANT CREATE ON DATABASE postgres TO sd_limited_" in err
    assert err.startswith("stackdrill: error: inventory ") and "Traceback" not in err
    assert "no verdict" in err
    assert "bringing up lab" not in out + err
