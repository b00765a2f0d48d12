"""The engine when a storage server fails (nova-drbd: sto1 is the DRBD primary exporting
every volume over iSCSI). What Pacemaker does for a DRBD + iSCSI target group: fence the
lost primary, promote the surviving UpToDate secondary, re-export; the guests reconnect
(here: restarted in place on the new path, like a Nova hard reboot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_fakes import InventoryURL

from stackdrill.backends.sim import SimBackend
from stackdrill.faults.catalogue import HostCrash, HostReboot, LinkDown, Partition
from stackdrill.recovery import (
    EngineKilled,
    InstanceState,
    JournalStep,
    RecoveryConfig,
    RecoveryEngine,
)
from stackdrill.topology import Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"


@pytest.fixture(scope="module")
def nova() -> Topology:
    return load_topology(TOPOLOGIES / "nova-drbd.yaml")


def crash_sto1(topo: Topology):  # type: ignore[no-untyped-def]
    lab = SimBackend().create(topo, lab_name="storage-failover-test", seed=1)
    lab.call_at(60, lambda: lab.inject(HostCrash(host="sto1", power_back=False)), "crash")
    return lab


def run(lab, topo: Topology, db: str, until: float = 500, **cfg: object):  # type: ignore[no-untyped-def]
    eng = RecoveryEngine(topo, lab.drivers, lab.clock, db,
                         RecoveryConfig(**cfg))  # type: ignore[arg-type]
    result = eng.run(until=until)
    lab.advance(until)  # the engine stops once idle; the guests keep writing
    return result


def restarts(lab) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out: dict[str, int] = {}
    for line in lab.trace():
        if " start " in line and float(line.split()[0]) > 0:
            name = line.split("instance=")[1].split()[0]
            out[name] = out.get(name, 0) + 1
    return out


def writes_after(lab, t: float) -> set[str]:  # type: ignore[no-untyped-def]
    return {op.instance for op in lab.history() if op.outcome == "ok" and op.invoked > t}


def test_lost_storage_primary_is_fenced_then_every_guest_writes_through_sto2(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """Protocol C: sto2 has every acknowledged write, so promoting it once sto1 is proven
    off loses nothing; each guest restarts once, on its own host."""
    lab = crash_sto1(nova)
    result = run(lab, nova, inventory_url("inv"))
    journal = result.journal
    fenced = next(r for r in journal if r.step == JournalStep.FENCE_CONFIRMED.value
                  and r.host == "sto1")
    first_storage = min(r.seq for r in journal if r.step == JournalStep.STORAGE_READY.value)
    assert fenced.seq < first_storage, "promoted sto2 before sto1 was confirmed off"
    names = [i.name for i in nova.instances]
    assert restarts(lab) == dict.fromkeys(names, 1)
    for inst in nova.instances:
        out = result.instance(inst.name)
        assert out.state is InstanceState.RECOVERED, out
        assert out.host_after == inst.host
    assert writes_after(lab, 400) == set(names)
    assert lab.observe().drbd["r0"]["sto2"].role == "Primary"
    for op in lab.history():
        if op.outcome == "ok":
            assert lab.stored_records(op.volume)[op.seq].checksum == op.checksum, op


def test_killed_during_storage_failover_resumes_without_double_starts(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """The reattach steps are journaled: an engine killed after any of them and started
    again on the same inventory ends the same, and no guest is started twice."""
    reference = run(crash_sto1(nova), nova, inventory_url("ref"))
    first = min(r.seq for r in reference.journal if r.instance is not None)
    for k in range(first, len(reference.journal) + 1, 3):
        lab = crash_sto1(nova)
        db = inventory_url(f"k{k}")
        with pytest.raises(EngineKilled):
            run(lab, nova, db, stop_after_steps=k)
        result = run(lab, nova, db)
        assert all(o.state is InstanceState.RECOVERED for o in result.instances), k
        assert all(n == 1 for n in restarts(lab).values()), (k, restarts(lab))
        assert writes_after(lab, 450) == {i.name for i in nova.instances}, k


def test_last_replica_is_not_fenced_and_its_guests_reattach_after_its_reboot(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """sto2 is cut off (the storage cluster fences it), then sto1 reboots: fencing sto1 too
    would stop every volume for good. It is left alone, and when it is back (DRBD boots it
    Secondary) the guests reattach to it once it is promoted again."""
    lab = SimBackend().create(nova, lab_name="storage-failover-test", seed=1)
    cut = Partition(groups=(("cmp1", "cmp2", "cmp3", "ctl1", "sto1"), ("sto2",)))
    lab.call_at(60, lambda: lab.inject(cut), "isolate sto2")
    lab.call_at(90, lambda: lab.inject(HostReboot(host="sto1")), "reboot sto1")
    result = run(lab, nova, inventory_url("inv"), until=450)
    fenced = {r.host for r in result.journal if r.step == JournalStep.FENCE_REQUESTED.value}
    assert "sto1" not in fenced
    assert any(e.kind == "fence-held" and e.host == "sto1" for e in result.events)
    assert writes_after(lab, 350) == {i.name for i in nova.instances}


def test_a_guest_that_fails_verification_after_its_reattach_moves_to_another_host(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """cmp3's tunnel link is down for good when sto1 dies: db2's reattach in place restarts
    it, the overlay cannot reach it, the failed flow is undone (the guest destroyed). Trying
    in place again fails the same way; it must move to a host whose overlay works instead
    of ending up running nowhere while the engine reports it running (seeds 5576, 7436)."""
    lab = SimBackend().create(nova, lab_name="reattach-away-test", seed=7436)
    lab.call_at(60, lambda: lab.inject(HostCrash(host="sto1", power_back=False)), "crash")
    lab.call_at(62, lambda: lab.inject(LinkDown(host="cmp3", network="tunnel")), "cut")
    result = run(lab, nova, inventory_url("db"), until=400, parallel=1)
    db2 = next(o for o in result.instances if o.name == "db2")
    running = lab.observe().running
    assert running["db2"] == ["cmp2"], (running["db2"], db2)
    assert db2.host_after == "cmp2" and db2.state is InstanceState.RECOVERED


def test_an_instance_whose_attempt_was_undone_is_not_reported_running(
        nova: Topology, inventory_url: InventoryURL) -> None:
    """The same failed reattach, with the run ending during the back-off before the next
    attempt: the guest runs nowhere, so the engine must not say 'running' (it did, from
    the inventory's vm_state: seeds 5576, 7436 'db2 not running anywhere: running')."""
    lab = SimBackend().create(nova, lab_name="reattach-undone-test", seed=7436)
    lab.call_at(60, lambda: lab.inject(HostCrash(host="sto1", power_back=False)), "crash")
    lab.call_at(62, lambda: lab.inject(LinkDown(host="cmp3", network="tunnel")), "cut")
    eng = RecoveryEngine(nova, lab.drivers, lab.clock, inventory_url("db"),
                         RecoveryConfig(parallel=1))
    result = eng.run(until=195)  # the first attempt was undone at 188.4 s
    db2 = next(o for o in result.instances if o.name == "db2")
    assert lab.observe().running["db2"] == []
    assert db2.state is InstanceState.IN_PROGRESS and db2.host_after is None
    assert "not reachable on the overlay" in db2.reason
