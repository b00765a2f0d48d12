"""A netns lab brought up with `up --inventory URL`: its keeper keeps the engine's
inventory in a schema of its own on that PostgreSQL for the lab's life (a recovery and a
dry run use it), and `down` drops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from netns_helpers import needs_root, small_topology_data
from sqlalchemy import create_engine, text

from stackdrill.recovery.dburl import InventoryTarget

pytestmark = [needs_root, pytest.mark.netns]

SRC = str(Path(__file__).parents[4] / "src")


def _stackdrill(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "STACKDRILL_HOME": str(cwd / "home"),
           "COLUMNS": "200"}
    env.pop("STACKDRILL_INVENTORY_URL", None)  # only --inventory names it here
    return subprocess.run([sys.executable, "-m", "stackdrill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _lab_schemas(server: InventoryTarget) -> set[str]:
    assert server.url is not None
    engine = create_engine(server.url)
    with engine.connect() as conn:
        names = {str(r[0]) for r in conn.execute(text(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sd\\_inventory\\_%'"))}
    engine.dispose()
    return names


def test_a_kept_lab_keeps_its_inventory_on_postgresql_until_down(
        tmp_path: Path, postgres_server: InventoryTarget) -> None:
    assert postgres_server.url is not None
    url = postgres_server.url.render_as_string(hide_password=False)
    before = _lab_schemas(postgres_server)
    (tmp_path / "topo.yaml").write_text(yaml.safe_dump(small_topology_data("pginv")))
    done = _stackdrill(tmp_path, "up", "topo.yaml", "--backend", "netns", "--lab", "pginv",
                       "--inventory", url)
    assert done.returncode == 0, done.stderr
    try:
        assert len(_lab_schemas(postgres_server) - before) == 1  # the keeper's, for its life
        elsewhere = _stackdrill(tmp_path, "recover", "--lab", "pginv", "--inventory", url)
        assert elsewhere.returncode == 2 and "chose its inventory at `up`" in elsewhere.stderr
        planned = _stackdrill(tmp_path, "recover", "--lab", "pginv", "--dry-run")
        assert planned.returncode == 0, planned.stderr
    finally:
        down = _stackdrill(tmp_path, "down", "--lab", "pginv")
    assert down.returncode == 0, down.stderr
    assert _lab_schemas(postgres_server) == before
