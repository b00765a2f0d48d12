"""Issue 17, engine CPU: the scheduler keeps each failed host's incident (where it began,
when its guests may be evacuated, whether its plan is journaled) instead of asking the
journal three times per failed host per tick. Kept only until the host's next journal
record: a host that fails again must get a new plan, and a resumed engine must see the
incident the killed one saw."""

from __future__ import annotations

from pathlib import Path

from recovery_fakes import FakeLab, InventoryURL

from stackdrill.recovery import RecoveryConfig, RecoveryEngine
from stackdrill.recovery.journal import JournalStep
from stackdrill.recovery.scheduling import Incident
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml"
S = JournalStep
WAIT = RecoveryConfig().wait_after_service_update_s


def engine_on(url: str) -> RecoveryEngine:
    topology = load_topology(TOPOLOGY)
    lab = FakeLab(topology)
    return RecoveryEngine(topology, lab.drivers, lab.clock, url, RecoveryConfig())


def test_a_host_that_fails_again_has_a_new_incident_to_plan(
        inventory_url: InventoryURL) -> None:
    url = inventory_url("inv")
    engine = engine_on(url)
    journal, scheduler = engine.journal, engine._scheduler
    assert scheduler.incident("cmp1") == Incident(0, WAIT, False)
    for step in (S.HOST_DOWN, S.FENCE_REQUESTED, S.FENCE_CONFIRMED, S.SERVICE_FORCED_DOWN):
        journal.append(step, host="cmp1")
    first = scheduler.incident("cmp1")
    down = journal.for_host("cmp1")[0]
    assert (first.seq, first.planned) == (down.seq, False)
    journal.append(S.PLANNED, host="cmp1")
    assert scheduler.incident("cmp1").planned  # asked again on the next tick: planned now
    for step in (S.HOST_RETURNED, S.HOST_REJOINED, S.HOST_DOWN):
        journal.append(step, host="cmp1")
    second = scheduler.incident("cmp1")
    assert second.seq == journal.for_host("cmp1")[-1].seq > first.seq
    assert not second.planned  # its plan is still to be journaled
    engine.lease.release()

    resumed = engine_on(url)
    assert resumed._scheduler.incident("cmp1") == second
    resumed.lease.release()
