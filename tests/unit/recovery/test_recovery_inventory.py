"""The inventory DB: Alembic migrations equal the models, seeding is idempotent, and the
journal commits a DB change with its row or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from recovery_fakes import InventoryURL
from sqlalchemy import select

from stackdrill.recovery.db import connect, current_revision, migrate, open_inventory
from stackdrill.recovery.db import seed_inventory as seed
from stackdrill.recovery.inventory import Base, BlockDeviceMapping, Instance, Service
from stackdrill.recovery.journal import EngineKilled, Journal, JournalStep
from stackdrill.topology import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


def test_migrations_produce_exactly_the_models(inventory_url: InventoryURL) -> None:
    """`alembic upgrade head` on an empty DB yields the schema the code uses (no drift)."""
    engine = connect(inventory_url("inv"))
    migrate(engine)
    migrate(engine)  # idempotent
    assert current_revision(engine) == "0002"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_seed_is_idempotent_and_nova_shaped(inventory_url: InventoryURL) -> None:
    """Services, nodes, instances and BDMs come from the topology once; a second seed adds
    nothing and keeps an instance the engine moved where it is."""
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    sessions = open_inventory(inventory_url("inv"))
    with sessions() as s, s.begin():
        assert seed(s, topo, 16.0, 1.5, ()) > 0
    with sessions() as s, s.begin():
        inst = s.scalars(select(Instance).where(Instance.display_name == "web1")).one()
        inst.host = "cmp3"
    with sessions() as s, s.begin():
        assert seed(s, topo, 16.0, 1.5, ()) == 0
    with sessions() as s:
        assert s.scalars(select(Instance.host).where(Instance.display_name == "web1")).one() \
            == "cmp3"
        assert sorted(s.scalars(select(Service.host))) == ["cmp1", "cmp2", "cmp3"]
        assert len(s.scalars(select(BlockDeviceMapping)).all()) == 6


def test_journal_row_and_db_change_are_atomic_and_the_kill_hook_fires(
        inventory_url: InventoryURL) -> None:
    """A failure inside a step leaves neither the change nor the row; the kill hook raises
    only after the N-th step is durable, and a new Journal reads every row back."""
    topo = load_topology(TOPOLOGIES / "nova-drbd.yaml")
    url = inventory_url("inv")
    sessions = open_inventory(url)
    with sessions() as s, s.begin():
        seed(s, topo, 16.0, 1.5, ())
    journal = Journal(sessions, lambda: 5.0, stop_after=2)
    with pytest.raises(RuntimeError), journal.step(JournalStep.HOST_DOWN, host="cmp1") as s:
        s.get(Service, 1).forced_down = True  # type: ignore[union-attr]
        raise RuntimeError("crash mid-step")
    assert journal.records == []
    journal.append(JournalStep.HOST_DOWN, host="cmp1", reason="test")
    with pytest.raises(EngineKilled):
        journal.append(JournalStep.FENCE_REQUESTED, host="cmp1")
    again = Journal(sessions, lambda: 6.0)
    assert [r.step for r in again.records] == ["host-down", "fence-requested"]
    assert again.for_host("cmp1")[0].detail == {"reason": "test"}
    with sessions() as s:
        assert not s.get(Service, 1).forced_down  # type: ignore[union-attr]
