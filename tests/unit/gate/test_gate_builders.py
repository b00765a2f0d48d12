"""Each standard drill, built for the shipped topologies: it loads as a drill file would,
breaks the victim its builder says (counted here from the topology itself), and a drill
the topology gives nothing to break is NOT APPLICABLE with its reason."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackdrill.drill.load import load_drill
from stackdrill.faults import DiskFailure, HostCrash, HostReboot, Partition
from stackdrill.gate import GateDrill, NotApplicable, standard_drills
from stackdrill.gate.builders import STANDARD
from stackdrill.gate.files import drill_yaml, topology_yaml
from stackdrill.shipped import topology_path
from stackdrill.topology import Topology, parse_topology
from stackdrill.topology.load import load_topology

SHIPPED = ("nova-drbd", "two-node-clvm", "drbd-pair", "nova-mini", "large", "nova-nbd",
           "mirrored-compute", "nova-spare")


def shipped(name: str) -> Topology:
    path = topology_path(name)
    assert path is not None
    return load_topology(path)


def raw(name: str) -> dict[str, Any]:
    path = topology_path(name)
    assert path is not None
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def built(topology: Topology, name: str) -> GateDrill:
    item = next(p for p in standard_drills(topology) if p.name == name)
    assert isinstance(item, GateDrill), item
    return item


def not_applicable(topology: Topology, name: str) -> NotApplicable:
    item = next(p for p in standard_drills(topology) if p.name == name)
    assert isinstance(item, NotApplicable), item
    return item


def injected(item: GateDrill) -> list[object]:
    return [step.inject for step in item.drill.spec.schedule if step.inject is not None]


def most_instances(topology: Topology) -> set[str]:
    """The compute hosts that run the most instances, counted from the topology."""
    counts = Counter(i.host for i in topology.instances)
    compute = [h.name for h in topology.hosts if "compute" in h.roles]
    top = max(counts[h] for h in compute)
    return {h for h in compute if counts[h] == top}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_built_drill_loads_as_a_drill_file(name: str, tmp_path: Path) -> None:
    """Written out as YAML (as `gate --report` does) and loaded by the drill loader, each
    built drill is the same drill: every name it uses exists, every step fits its length."""
    topology = shipped(name)
    (tmp_path / "topology.yaml").write_text(topology_yaml(topology))
    planned = standard_drills(topology)
    assert [p.name for p in planned] == [s.name for s in STANDARD]
    for item in planned:
        if isinstance(item, NotApplicable):
            assert item.reason
            continue
        path = tmp_path / f"{item.name}.yaml"
        path.write_text(drill_yaml(item.drill.spec, "topology.yaml", seed=5))
        loaded = load_drill(path)
        assert loaded.topology == topology
        assert loaded.spec.schedule == item.drill.spec.schedule
        assert loaded.spec.expect == item.drill.spec.expect
        assert loaded.spec.workload == item.drill.spec.workload
        assert loaded.spec.duration_s == item.drill.spec.duration_s and loaded.spec.seed == 5
        assert item.victim and item.why


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("drill", ["host-loss", "returning-host", "maintenance-reboot"])
def test_the_compute_host_with_the_most_instances_is_the_victim(name: str, drill: str) -> None:
    topology = shipped(name)
    item = built(topology, drill)
    assert item.victim in most_instances(topology)
    if drill != "maintenance-reboot":
        crash = next(f for f in injected(item) if isinstance(f, HostCrash))
        assert crash.host == item.victim
        assert crash.power_back is (drill == "returning-host")
    assert "the most of any compute host" in item.why


def test_nova_drbd_victims_and_why() -> None:
    topology = shipped("nova-drbd")
    assert built(topology, "host-loss").victim == "cmp1"  # web1, db1, app1
    assert built(topology, "host-loss").why.startswith("cmp1 runs 3 of the 6 instances")
    assert built(topology, "storage-primary-loss").victim == "sto1"
    assert built(topology, "disk-failure").victim == "sto1:sdb"
    assert injected(built(topology, "disk-failure")) == [DiskFailure(host="sto1", disk="sdb")]
    assert "backs 6 volumes" in built(topology, "storage-primary-loss").why


def test_storage_primary_loss_takes_the_primary_of_the_resource_with_most_volumes() -> None:
    data = raw("large")
    # give r1 (primary sto3) one volume more than r0: the victim moves to sto3
    moved = next(v for v in data["volumes"] if v["vg"] == "cinder-0")
    moved["vg"] = "cinder-1"
    topology = parse_topology(data, "large (one volume moved)")
    item = built(topology, "storage-primary-loss")
    assert item.victim == "sto3"
    assert HostCrash(host="sto3", power_back=False) in injected(item)
    expect = [e for e in item.drill.spec.expect if e.check == "drbd"]
    assert [(e.resource, e.nodes) for e in expect] == [
        ("r1", {"sto4": {"role": "Primary", "disk": "UpToDate"}})]
    assert built(shipped("large"), "storage-primary-loss").victim == "sto1"  # a tie: r0


def test_the_management_partition_cuts_one_compute_host_off_the_management_network() -> None:
    topology = shipped("nova-drbd")
    item = built(topology, "mgmt-partition")
    (cut,) = [f for f in injected(item) if isinstance(f, Partition)]
    assert cut.network == "mgmt" and cut.groups[0] == ("cmp1",)
    assert set(cut.groups[1]) == set(topology.network("mgmt").addresses) - {"cmp1"}
    assert [e.model_dump() for e in item.drill.spec.expect if e.check == "not_evacuated"] == [
        {"check": "not_evacuated", "hosts": ("cmp1",)}]


def test_split_brain_cuts_the_replication_link_and_reboots_a_dual_primary_side() -> None:
    single = built(shipped("nova-drbd"), "split-brain")
    assert injected(single) == [Partition(groups=(("sto1",), ("sto2",)), network="repl")]
    dual = built(shipped("two-node-clvm"), "split-brain")
    assert injected(dual) == [Partition(groups=(("alice",), ("bob",)), network="eth1"),
                              HostReboot(host="bob")]
    assert "after-sb-1pri (discard-secondary)" in dual.why
    data = raw("two-node-clvm")
    data["drbd"][0]["fencing"] = "resource-and-stonith"
    stonith = built(parse_topology(data, "stonith"), "split-brain")
    assert not any(isinstance(f, HostReboot) for f in injected(stonith))


def test_disk_failure_runs_long_enough_for_the_full_resync() -> None:
    """180 GB at 800 Mbit/s is ~30 min of resync (the shipped disk-failure drill runs
    2400 s for it); a slower resync rate makes the drill longer."""
    assert built(shipped("nova-drbd"), "disk-failure").drill.spec.duration_s >= 2400
    data = raw("nova-drbd")
    data["drbd"][0]["resync_rate_mbit"] = 400
    slow = built(parse_topology(data, "slow"), "disk-failure")
    assert slow.drill.spec.duration_s >= 2 * 1800


def test_without_drbd_the_storage_drills_do_not_apply() -> None:
    topology = shipped("nova-nbd")
    for name in ("storage-primary-loss", "disk-failure", "split-brain"):
        assert "no DRBD resource" in not_applicable(topology, name).reason
    assert isinstance(built(topology, "host-loss"), GateDrill)


def _one_compute(data: dict[str, Any]) -> dict[str, Any]:
    """nova-mini with every instance on cmp1 and cmp2 no longer a compute host."""
    data = copy.deepcopy(data)
    for host in data["hosts"]:
        if host["name"] == "cmp2":
            host["roles"] = ["controller"]
    for inst in data["instances"]:
        inst["host"] = "cmp1"
    return data


def test_with_one_compute_host_there_is_nowhere_to_evacuate() -> None:
    topology = parse_topology(_one_compute(raw("nova-mini")), "one compute host")
    for name in ("host-loss", "returning-host"):
        assert not_applicable(topology, name).reason == ("one compute host (cmp1): nowhere "
                                                         "to evacuate its instances")
    assert built(topology, "maintenance-reboot").victim == "cmp1"


def test_a_management_network_that_is_the_only_network_is_not_partitioned() -> None:
    data = raw("nova-nbd")
    data["networks"] = [n for n in data["networks"] if "management" in n["purposes"]]
    for net in data["networks"]:
        net["purposes"] = sorted({*net["purposes"], "storage", "tunnel"})
    data["overlays"] = [{**o, "network": data["networks"][0]["name"]}
                        for o in data.get("overlays", [])]
    topology = parse_topology(data, "one network")
    assert "isolates the host" in not_applicable(topology, "mgmt-partition").reason


def test_the_victim_follows_the_instances_not_the_host_order() -> None:
    """app1 and app2 move to cmp3, which then runs three instances to cmp1's two."""
    data = raw("nova-drbd")
    for inst in data["instances"]:
        if inst["name"] in ("app1", "app2"):
            inst["host"] = "cmp3"
    topology = parse_topology(data, "apps on cmp3")
    for name in ("host-loss", "returning-host", "maintenance-reboot", "mgmt-partition"):
        item = built(topology, name)
        assert item.victim.split()[0] == "cmp3", (name, item.victim)
    assert built(topology, "host-loss").why.startswith("cmp3 runs 3 of the 6 instances")
