"""Two ways the engine used to destroy the only current copy of a mirrored volume
(mirrored-compute: DRBD r0 between cmp1 (Primary) and cmp2, protocol C, fencing
resource-only).

- A Secondary cut off while its Primary keeps writing still says UpToDate when the
  fence-peer handler could not outdate it (DRBD 8.4 `fencing resource-only`); DRBD lets
  you promote it, and every write the Primary acked since the cut is gone. The engine
  must not serve from it, nor fence the Primary on link evidence alone.
- A replication link counts as "lost" only when the peer that lost it is itself alive
  and reporting: with the peer down, silence says nothing about the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from recovery_fakes import InventoryURL

from stackdrill.api import Replica
from stackdrill.backends.sim import SimBackend
from stackdrill.faults.catalogue import HostCrash, LinkDown, Partition
from stackdrill.recovery import JournalStep, RecoveryConfig, RecoveryEngine
from stackdrill.recovery.detect import replication_lost
from stackdrill.recovery.plan import Candidate, Need, place, usable_replicas
from stackdrill.topology import Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"
CUT = Partition(groups=(("cmp1",), ("cmp2", "cmp3")), network="storage")


@pytest.fixture(scope="module")
def mirrored() -> Topology:
    return load_topology(TOPOLOGIES / "mirrored-compute.yaml")


def lab_with(topo: Topology, name: str, *faults: tuple[float, Any]) -> Any:
    lab = SimBackend().create(topo, lab_name=name, seed=3)
    for at, fault in faults:
        lab.call_at(at, lambda f=fault: lab.inject(f), f"inject {fault.kind}")
    return lab


def run(lab: Any, topo: Topology, db: str, until: float = 400) -> Any:
    eng = RecoveryEngine(topo, lab.drivers, lab.clock, db, RecoveryConfig())
    result = eng.run(until=until)
    lab.advance(until)
    return result


def fenced_hosts(result: Any) -> set[str]:
    return {r.host for r in result.journal if r.step == JournalStep.FENCE_REQUESTED.value}


def test_secondary_cut_off_while_primary_writes_is_reported_behind(
        mirrored: Topology) -> None:
    """DRBD 8.4, fencing resource-only, fence-peer failing (the peer is unreachable): the
    Secondary stays UpToDate after the cut; the driver reports it left behind since then."""
    lab = lab_with(mirrored, "stale-driver", (60.0, CUT))
    lab.advance(120)
    reps = {r.host: r for r in lab.drivers.storage.replicas("vol-a")}
    assert reps["cmp2"].disk_state == "UpToDate"  # what DRBD itself says
    assert reps["cmp2"].behind_since is not None and 60 <= reps["cmp2"].behind_since < 120
    assert reps["cmp1"].behind_since is None
    assert [r.host for r in usable_replicas(reps.values(), [])] == ["cmp1"]


def test_healed_link_resyncs_and_the_secondary_is_current_again(mirrored: Topology) -> None:
    """After the link heals DRBD resyncs the Secondary (SyncTarget); then it is current."""
    lab = lab_with(mirrored, "stale-heal", (60.0, CUT))
    lab.advance(100)
    lab.heal(CUT)
    lab.advance(200)
    reps = {r.host: r for r in lab.drivers.storage.replicas("vol-a")}
    assert reps["cmp2"].behind_since is None
    assert reps["cmp2"].disk_state == "UpToDate"


def test_plan_refuses_a_stale_replica_and_says_why() -> None:
    """The only surviving copy is behind: the instance is unrecoverable, with the reason."""
    reps = {"vol-a": [Replica("cmp1", "Unconfigured", "Unconfigured", False),
                      Replica("cmp2", "Secondary", "UpToDate", True, behind_since=84.6)]}
    need = Need("inst-a", "cmp1", 1, 2048, ("vol-a",))
    plan = place([need], [Candidate("cmp2", 8, 16384, 0, 0)], reps, ["cmp1"])
    assert not plan.placements
    assert "stale" in plan.unplaceable[0].reason and "84.6" in plan.unplaceable[0].reason


def test_primary_isolated_after_the_cut_is_not_fenced_on_link_evidence(
        mirrored: Topology, inventory_url: InventoryURL) -> None:
    """cmp1 loses its storage link, then its management link: no heartbeat and cmp2 lost
    it, but its power is on and it holds the only current copy: fencing it and promoting
    cmp2 would drop every write acked since the cut. It stays suspect, nothing moves."""
    lab = lab_with(mirrored, "stale-isolated", (60.0, CUT),
                   (90.0, LinkDown(host="cmp1", network="mgmt")))
    result = run(lab, mirrored, inventory_url("inv"))
    assert "cmp1" not in fenced_hosts(result)
    assert any(e.kind == "host-suspect" and e.host == "cmp1" and "only current copy" in
               e.message for e in result.events)
    running = lab.observe().running
    assert running["inst-a"] == ["cmp1"] and running["inst-b"] == ["cmp1"]


def test_primary_crashing_after_the_cut_leaves_its_instances_unrecoverable(
        mirrored: Topology, inventory_url: InventoryURL) -> None:
    """Power-off evidence condemns cmp1, but cmp2 is behind: rather than silently losing
    the acked writes, the instances are reported unrecoverable naming the stale replica."""
    lab = lab_with(mirrored, "stale-crash", (60.0, CUT),
                   (120.0, HostCrash(host="cmp1", power_back=False)))
    result = run(lab, mirrored, inventory_url("inv"))
    assert "cmp1" in fenced_hosts(result)
    assert lab.observe().running.get("inst-a", []) == []
    for name in ("inst-a", "inst-b"):
        outcome = result.instance(name)
        assert outcome.host_after is None, outcome
        assert "stale" in outcome.reason and "cmp2" in outcome.reason


def links_up(lab: Any, host: str) -> bool:
    """What detection concludes from the host's witnesses (the engine's default interval)."""
    compute = lab.drivers.compute
    return not replication_lost(compute.witnesses(host), compute.health(host).last_heartbeat,
                                lab.clock.now(), 10.0)


def test_a_cut_link_counts_when_the_peers_that_lost_it_are_alive(mirrored: Topology) -> None:
    """cmp1 falls silent; cmp2 and cmp3 keep reporting after that and none reaches cmp1 on
    the storage network: that is evidence (what DRBD on cmp2 reports: peer unreachable)."""
    lab = lab_with(mirrored, "witness-live", (60.0, CUT),
                   (60.0, LinkDown(host="cmp1", network="mgmt")))
    lab.advance(100)
    assert not links_up(lab, "cmp1")
    assert links_up(lab, "cmp2")


def test_peers_that_are_down_do_not_say_a_host_is_gone(mirrored: Topology) -> None:
    """cmp1's storage peers are powered off: nobody can report losing cmp1, so its links do
    not corroborate a missed heartbeat (a dead witness is no witness)."""
    lab = lab_with(mirrored, "witness-dead", (30.0, HostCrash(host="cmp3", power_back=False)),
                   (40.0, HostCrash(host="cmp2", power_back=False)))
    lab.advance(90)
    assert links_up(lab, "cmp1")


def test_controller_down_does_not_condemn_the_last_replica_holder(
        mirrored: Topology, inventory_url: InventoryURL) -> None:
    """Seed 369's shape: cmp3 and cmp1's DRBD peer cmp2 crash, then the controller: every
    heartbeat stops. cmp1 is healthy and holds the last copy of vol-a/vol-b; the engine
    must not fence it (it did, on 'replication peers lost it')."""
    lab = lab_with(mirrored, "witness-ctl", (30.0, HostCrash(host="cmp3", power_back=False)),
                   (40.0, HostCrash(host="cmp2", power_back=False)),
                   (150.0, HostCrash(host="ctl1", power_back=False)))
    result = run(lab, mirrored, inventory_url("inv"))
    assert "cmp1" not in fenced_hosts(result)
    assert lab.observe().power["cmp1"].value == "on"
