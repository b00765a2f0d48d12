"""The engine against the simulated lab (protocol C DRBD storage pair, iSCSI volumes,
tenant overlay): the "Done when" items of issue 4 that the simulator can show."""

from __future__ import annotations

from pathlib import Path

import pytest
from recovery_fakes import InventoryURL

from stackdrill.backends.sim import SimBackend
from stackdrill.faults.catalogue import HostCrash, Partition
from stackdrill.recovery import (
    EngineKilled,
    InstanceState,
    JournalStep,
    RecoveryConfig,
    RecoveryEngine,
)
from stackdrill.topology import Topology, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[3] / "lab" / "topologies"
VICTIMS = ("app1", "db1", "web1")


@pytest.fixture(scope="module")
def nova() -> Topology:
    return load_topology(TOPOLOGIES / "nova-drbd.yaml")


def lab_with_crash(topo: Topology, power_back_at: float | None = None):  # type: ignore[no-untyped-def]
    lab = SimBackend().create(topo, lab_name="recovery-test", seed=1)
    fault = HostCrash(host="cmp1", power_back=power_back_at is not None)
    lab.call_at(60, lambda: lab.inject(fault), "crash cmp1")
    if power_back_at is not None:
        lab.call_at(power_back_at, lambda: lab.heal(fault), "cmp1 power back")
    return lab


def run(lab, topo: Topology, db: str, until: float = 600, **cfg: object):  # type: ignore[no-untyped-def]
    eng = RecoveryEngine(topo, lab.drivers, lab.clock, db,
                         RecoveryConfig(**cfg))  # type: ignore[arg-type]
    return eng.run(until=until)


def starts(lab) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Incarnations started after the initial boot, per instance, from the lab's trace."""
    out: dict[str, int] = {}
    for line in lab.trace():
        if " start " in line and float(line.split()[0]) > 0:
            name = line.split("instance=")[1].split()[0]
            out[name] = out.get(name, 0) + 1
    return out


def test_protocol_c_host_failure_recovers_each_instance_once(nova: Topology,
                                                             inventory_url: InventoryURL) -> None:
    """cmp1 dies for good: its three instances run again on survivors, each started once,
    and every write acknowledged before the crash is still on its volume."""
    lab = lab_with_crash(nova)
    result = run(lab, nova, inventory_url("inv"))
    running = lab.observe().running
    for name in VICTIMS:
        out = result.instance(name)
        assert out.state is InstanceState.RECOVERED, out
        assert running[name] == [out.host_after]
        assert out.attach_mode == "remote"  # the storage pair serves it over iSCSI
    assert starts(lab) == dict.fromkeys(VICTIMS, 1)
    stored = {f"vol-{name}": lab.stored_records(f"vol-{name}") for name in VICTIMS}
    acked = [op for op in lab.history()
             if op.outcome == "ok" and op.instance in VICTIMS and op.incarnation == 1]
    assert acked
    for op in acked:
        assert stored[op.volume][op.seq].checksum == op.checksum, op


def test_sim_kill_after_each_step_converges(nova: Topology, inventory_url: InventoryURL) -> None:
    """Kill after journal step k, restart on the same inventory and lab: same placement,
    no instance started twice."""
    lab = lab_with_crash(nova)
    reference = run(lab, nova, inventory_url("ref"))
    expected = {o.name: (o.state, o.host_after) for o in reference.instances}
    for k in range(1, len(reference.journal) + 1):
        lab = lab_with_crash(nova)
        db = inventory_url(f"k{k}")
        with pytest.raises(EngineKilled):
            run(lab, nova, db, stop_after_steps=k)
        result = run(lab, nova, db)
        assert {o.name: (o.state, o.host_after) for o in result.instances} == expected, k
        assert all(n == 1 for n in starts(lab).values()), (k, starts(lab))
        assert all(len(h) <= 1 for h in lab.observe().running.values()), k


def test_management_partition_is_not_evacuated(nova: Topology, inventory_url: InventoryURL) -> None:
    """Scenario 13: cmp2 loses only its management network; it keeps its instances."""
    lab = SimBackend().create(nova, lab_name="recovery-test", seed=1)
    cut = Partition(groups=(("cmp2",), ("ctl1", "cmp1", "cmp3", "sto1", "sto2")),
                    network="mgmt")
    lab.call_at(60, lambda: lab.inject(cut), "isolate cmp2")
    result = run(lab, nova, inventory_url("inv"), until=300)
    assert not [r for r in result.journal if r.step == JournalStep.HOST_DOWN.value]
    assert lab.observe().running["web2"] == ["cmp2"]
    assert not starts(lab)


def test_returning_host_runs_none_of_its_evacuated_instances(nova: Topology,
                                                             inventory_url: InventoryURL) -> None:
    """Scenario 11: cmp1 powers on at 110 s while its instances are being recovered; it must
    run none of them, and the engine lets it rejoin only after the cleanup."""
    lab = lab_with_crash(nova, power_back_at=110)
    result = run(lab, nova, inventory_url("inv"), until=400, stop_when_idle=False)
    running = lab.observe().running
    assert all(len(hosts) == 1 for hosts in running.values()), running
    moved = [o.name for o in result.instances if o.state is InstanceState.RECOVERED]
    assert moved
    assert not [n for n in moved if "cmp1" in running[n]]
    assert [r for r in result.journal if r.step == JournalStep.HOST_REJOINED.value]
