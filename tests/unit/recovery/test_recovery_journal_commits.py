"""Issue 17, engine CPU: the engine committed one transaction per journal step (~9.5 per
recovered instance), and a commit was the largest SQL cost it had. The journal now
commits a run's steps in groups: at the latest when a driver call would change the lab,
another session reads the inventory, a listener is told, or the engine waits on the lab's
clock (`Journal.deferred`, `recovery.writeahead`).

Counted, not timed: SQLAlchemy's events on the engine's own inventory connection see each
journal row inserted and each commit, on SQLite and on PostgreSQL. The crash guarantees
are proved elsewhere (test_recovery_kill_each_step kills the engine after every step of
the same drill, and the uncommitted steps are lost with it).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from recovery_fakes import InventoryURL
from sqlalchemy import Connection, Insert, event

from stackdrill.api import Lab
from stackdrill.backends.sim import SimBackend
from stackdrill.drill import load_drill
from stackdrill.drill.model import Drill
from stackdrill.faults import HostCrash
from stackdrill.recovery import InstanceState, RecoveryConfig, RecoveryEngine

DRILL = Path(__file__).resolve().parents[3] / "lab" / "drills" / "nova-host-failure.yaml"
# An evacuation's lab boundaries: the volume prepared, the guest started, its port
# plugged (each only after the steps before it are committed), and the two waits on its
# verification (nothing stays uncommitted while lab time passes).
BOUNDARIES_PER_EVACUATION = 5


class Commits:
    """Per commit on the inventory, the instances (or hosts) whose journal rows it made
    durable; only transactions that wrote journal rows."""

    def __init__(self, conn_source: Any) -> None:
        self.transactions: list[list[str]] = []
        event.listen(conn_source, "before_execute", self._executed)
        event.listen(conn_source, "commit", self._committed)

    def _executed(self, conn: Connection, clause: Any, multiparams: Any, params: Any,
                  _options: Any) -> None:
        if isinstance(clause, Insert) and clause.table.name == "recovery_journal":
            for row in multiparams or [params]:  # many rows, or the one in `params`
                conn.info.setdefault("journal", []).append(row["instance"] or row["host"])

    def _committed(self, conn: Connection) -> None:
        rows = conn.info.pop("journal", None)
        if rows:
            self.transactions.append(rows)

    def of(self, name: str) -> int:
        return sum(1 for rows in self.transactions if name in rows)


@pytest.fixture(scope="module")
def drill() -> Drill:
    return load_drill(DRILL)


def crashed_lab(drill: Drill) -> Lab:
    lab = SimBackend().create(drill.topology, lab_name="commits", seed=drill.spec.seed)
    for step in drill.spec.schedule:
        if isinstance(step.inject, HostCrash):
            lab.call_at(step.at, partial(lab.inject, step.inject), "inject host_crash")
    return lab


def test_a_recovered_instance_costs_one_commit_per_lab_boundary_not_per_step(
        drill: Drill, inventory_url: InventoryURL) -> None:
    """cmp1 dies with its three instances, recovered at the default settings: each
    evacuation's nine journal steps reach the inventory in at most five transactions (one
    per lab boundary, not one per step), and every step still does. The host's own steps
    (detection, fencing, plan) may each commit alone: each comes before a lab action, a
    read of the inventory or a wait. 20 transactions in all, where each step committing
    alone made 32 (10.7 per recovered instance)."""
    lab = crashed_lab(drill)
    engine = RecoveryEngine(drill.topology, lab.drivers, lab.clock, inventory_url("inv"),
                            RecoveryConfig())
    engine.seed_inventory()
    commits = Commits(engine.sessions.kw["bind"])
    result = engine.run(until=600)

    victims = [i.name for i in drill.topology.instances if i.host == "cmp1"]
    assert victims
    assert {result.instance(v).state for v in victims} == {InstanceState.RECOVERED}
    written = [r.instance or r.host for r in result.journal]
    assert sorted(n for rows in commits.transactions for n in rows) == sorted(written)
    for name in victims:
        steps = sum(1 for r in result.journal if r.instance == name)
        assert steps >= 9, (name, steps)
        assert commits.of(name) <= BOUNDARIES_PER_EVACUATION, (name, commits.transactions)
    host_steps = sum(1 for r in result.journal if r.instance is None)
    assert len(commits.transactions) <= (BOUNDARIES_PER_EVACUATION * len(victims)
                                         + host_steps), commits.transactions
