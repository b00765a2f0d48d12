"""Each dangerous setting is flagged at its path, the safe setting is not, and the drill
built for the topology fails on the dangerous one (showing the damage) and passes on the
safe one: the danger is demonstrated on the operator's own names, not a shipped lab's."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from stackdrill.backends.libvirt.backend import LibvirtBackend
from stackdrill.backends.netns.backend import NetnsBackend
from stackdrill.backends.sim import SimBackend
from stackdrill.dangers import Danger, DangerCode, DrillUnavailable, find_dangers
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.drill.support import ensure_supported, features_needed
from stackdrill.errors import UnsupportedError
from stackdrill.report.model import Report
from stackdrill.topology import Topology, parse_topology

# A dual-primary pair with a clustered VG and a guest on each node, under names no shipped
# drill uses, plus an overlay between two compute hosts: every danger below is one or two
# settings away from it, and so is its safe form.
PAIR = yaml.safe_load("""
name: ops-pair
hosts:
  - {name: left, roles: [compute, storage], disks: [{name: vdb, size_gb: 50}]}
  - {name: right, roles: [compute, storage], disks: [{name: vdb, size_gb: 50}]}
networks:
  - {name: mgmt, purposes: [management], cidr: 10.1.0.0/24,
     addresses: {left: 10.1.0.1, right: 10.1.0.2}}
  - {name: drbdnet, purposes: [replication, cluster], cidr: 10.2.0.0/24,
     addresses: {left: 10.2.0.1, right: 10.2.0.2}}
  - {name: vxnet, purposes: [tunnel], cidr: 10.3.0.0/24,
     addresses: {left: 10.3.0.1, right: 10.3.0.2}}
overlays:
  - {name: tenants, vni: 77, network: vxnet, cidr: 172.16.5.0/24, mtu: 1450}
drbd:
  - name: data
    nodes: [left, right]
    disk: vdb
    size_gb: 40
    network: drbdnet
    protocol: C
    allow_two_primaries: true
    primary: [left, right]
    fencing: resource-and-stonith
    after_sb_0pri: discard-zero-changes
    after_sb_1pri: disconnect
volume_groups:
  - {name: vg-data, pv: {drbd: data}, locking: clustered}
clusters:
  - {name: pair, nodes: [left, right], network: drbdnet, two_node: true, expected_votes: 1,
     fencing: power}
flavors:
  small: {vcpus: 1, ram_mb: 1024}
volumes:
  - {name: lv-one, vg: vg-data, size_gb: 5}
  - {name: lv-two, vg: vg-data, size_gb: 5}
instances:
  - {name: one, flavor: small, host: left, volumes: [lv-one], overlay: tenants,
     mac: "fa:16:3e:10:00:01", ip: 172.16.5.11}
  - {name: two, flavor: small, host: right, volumes: [lv-two], overlay: tenants,
     mac: "fa:16:3e:10:00:02", ip: 172.16.5.12}
""")


def topology(**changes: Any) -> Topology:
    """PAIR with `section__name__field=value` changes (the one drbd, VG, cluster, ...)."""
    data = copy.deepcopy(PAIR)
    for key, value in changes.items():
        section, field = key.split("__")
        data[section][0][field] = value
    return parse_topology(data, "ops-pair.yaml")


SPLITTABLE = {"drbd__fencing": "dont-care", "clusters__fencing": "manual"}


@dataclass(frozen=True)
class Case:
    code: DangerCode
    path: str
    dangerous: dict[str, Any]
    safe: dict[str, Any]
    failed_check: str
    damage: str  # in the failed check's detail


CASES = [
    Case(DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED, "drbd[0].allow_two_primaries",
         {"drbd__allow_two_primaries": False}, {}, "drbd[data]",
         "data@right: role is Secondary, expected Primary"),
    Case(DangerCode.DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C, "drbd[0].protocol",
         {"drbd__protocol": "A", "drbd__fencing": "resource-only"},
         {"drbd__fencing": "resource-only"}, "drbd[data]",
         "data@left: connection is StandAlone, expected Connected"),
    # the seed's manual fencing: nothing but DRBD's own fencing stops the second Primary
    Case(DangerCode.DRBD_DUAL_PRIMARY_FENCING_DONT_CARE, "drbd[0].fencing",
         {"drbd__fencing": "dont-care", "clusters__fencing": "manual"},
         {"clusters__fencing": "manual"}, "drbd[data]", "split brain detected"),
    # a split brain needs a setup that lets one happen: the seed's (dont-care, manual)
    Case(DangerCode.DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY, "drbd[0].after_sb_1pri",
         {**SPLITTABLE, "drbd__after_sb_1pri": "discard-secondary"}, SPLITTABLE, "drbd[data]",
         "data@right: connection is Connected, expected StandAlone"),
    Case(DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE, "clusters[0].two_node",
         {"clusters__two_node": False, "clusters__expected_votes": 2}, {}, "quorum[pair]",
         "left: quorate=False, expected True"),
    Case(DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG, "volume_groups[0].locking",
         {"volume_groups__locking": "local"}, {}, "lvm_consistent[vg-data]", "share PE"),
    Case(DangerCode.OVERLAY_MTU_OVER_UNDERLAY, "overlays[0].mtu",
         {"overlays__mtu": 1500}, {}, "overlay", "path-MTU blackhole one->two"),
]
IDS = [c.code.value for c in CASES]


def flagged(topo: Topology, code: DangerCode) -> list[Danger]:
    return [d for d in find_dangers(topo) if d.code is code]


def run(danger: Danger, topo: Topology) -> Report:
    return judge(execute(danger.drill(topo)))


def test_the_base_topology_holds_no_danger() -> None:
    assert find_dangers(topology()) == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_dangerous_setting_is_flagged_at_its_path(case: Case) -> None:
    [danger] = flagged(topology(**case.dangerous), case.code)
    assert danger.path == case.path
    assert danger.drill_name == f"danger-{case.code.value}"
    assert danger.why and danger.setting and danger.shows


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_safe_setting_is_not_flagged(case: Case) -> None:
    assert flagged(topology(**case.safe), case.code) == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_drill_fails_on_the_danger_and_passes_on_the_safe_setting(case: Case) -> None:
    dangerous = topology(**case.dangerous)
    [danger] = flagged(dangerous, case.code)
    bad = run(danger, dangerous)
    assert not bad.passed
    failed = {c.name: c.detail for c in bad.failed_checks}
    assert case.damage in failed.get(case.failed_check, ""), failed
    good = run(danger, topology(**case.safe))
    assert good.passed, {c.name: c.detail for c in good.failed_checks}


def test_refused_promotion_shows_the_refusal_and_the_guest_that_never_started() -> None:
    """DRBD's own words for the second `drbdadm primary`, and the guest on that node down:
    its LV sits on a device a Secondary cannot open."""
    dangerous = topology(drbd__allow_two_primaries=False)
    [danger] = flagged(dangerous, DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED)
    failed = {c.name: c.detail for c in run(danger, dangerous).failed_checks}
    assert "Multiple primaries not allowed by config" in failed["commands"]
    assert "not running anywhere: two" in failed["exactly_once"]


def test_discard_secondary_throws_away_acknowledged_writes() -> None:
    """The damage itself: the resync after the split brain overwrote blocks the demoted
    node's guest had written (the report's DRBD notice counts them)."""
    dangerous = topology(**SPLITTABLE, drbd__after_sb_1pri="discard-secondary")
    [danger] = flagged(dangerous, DangerCode.DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY)
    labels = [e.label for e in run(danger, dangerous).timeline if e.lane == "drbd:data"]
    discarded = [int(m.group(1)) for label in labels
                 if (m := re.search(r"discarded_blocks=(\d+)", label))]
    assert discarded and discarded[0] > 0, labels


def test_the_drill_is_built_on_the_topology_it_is_given() -> None:
    """Inline topology, this topology's names: the drill runs without any shipped file."""
    dangerous = topology(volume_groups__locking="local")
    [danger] = flagged(dangerous, DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG)
    drill = danger.drill(dangerous)
    assert drill.topology == dangerous
    assert drill.spec.topology == dangerous.model_dump(mode="json")
    hosts = {getattr(s.run, "host", None) for s in drill.spec.schedule}
    assert hosts == {"left", "right"}


def test_a_drill_that_needs_what_the_topology_lacks_says_so() -> None:
    """The overlay danger needs two instances on different hosts to probe between."""
    data = copy.deepcopy(PAIR)
    data["overlays"][0]["mtu"] = 1500
    data["instances"][1]["host"] = "left"
    dangerous = parse_topology(data, "t.yaml")
    [danger] = flagged(dangerous, DangerCode.OVERLAY_MTU_OVER_UNDERLAY)
    with pytest.raises(DrillUnavailable, match="two instances on different hosts"):
        danger.drill(dangerous)


def test_a_weighted_vote_is_flagged_for_the_node_that_cannot_stand_alone() -> None:
    """votequorum(5): quorum is half the expected votes + 1. With two votes on left of
    three, left survives right's loss but right does not survive left's: the drill loses
    left, and right is not quorate."""
    topo = topology(clusters__two_node=False, clusters__votes={"left": 2},
                    clusters__expected_votes=3)
    [danger] = flagged(topo, DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE)
    assert "right is not quorate once left is lost" in danger.shows
    failed = {c.name: c.detail for c in run(danger, topo).failed_checks}
    assert "right: quorate=False, expected True" in failed["quorum[pair]"]


def test_a_node_quorate_alone_either_way_is_not_flagged() -> None:
    topo = topology(clusters__two_node=False, clusters__votes={"left": 2, "right": 2},
                    clusters__expected_votes=2)
    assert flagged(topo, DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE) == []


def test_local_locking_on_a_single_primary_resource_is_not_flagged() -> None:
    """Only one node uses the VG at a time: local locking is the standard mode there."""
    topo = topology(volume_groups__locking="local", drbd__allow_two_primaries=False,
                    drbd__primary=["left"])
    assert flagged(topo, DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG) == []


# ------------------------------------------------------------------ backends
# The settings DRBD and the kernel accept and then act on in their own way run only on a
# backend that does what they do (the simulator); the others refuse the drill up front,
# naming the setting, instead of building a lab that behaves otherwise or fails midway.


@pytest.mark.parametrize(("changes", "code", "where"), [
    ({"drbd__allow_two_primaries": False}, DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED,
     "drbd-refused-settings"),
    ({"drbd__protocol": "B"}, DangerCode.DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C,
     "drbd-refused-settings"),
])
def test_vm_backends_refuse_what_drbd_refuses_at_bring_up(changes: dict[str, object],
                                                           code: DangerCode, where: str) -> None:
    topo = topology(**changes)
    drill = next(d for d in find_dangers(topo) if d.code is code).drill(topo)
    ensure_supported(drill, "sim", SimBackend.capabilities)
    with pytest.raises(UnsupportedError, match=f"cannot realise {where}"):
        ensure_supported(drill, "libvirt", LibvirtBackend.capabilities)


def test_the_real_kernel_backend_runs_an_overlay_mtu_the_underlay_cannot_carry() -> None:
    """netns builds the operator's setting and lets the kernel act on it (recorded:
    vxlan-mtu-overlay-over-underlay); libvirt's guest network does not model it."""
    data = copy.deepcopy(PAIR)
    for key in ("drbd", "volume_groups", "clusters", "volumes"):
        data.pop(key)
    for inst in data["instances"]:
        inst.pop("volumes")
    data["overlays"][0]["mtu"] = 1500
    topo = parse_topology(data, "t.yaml")
    [danger] = find_dangers(topo)
    drill = danger.drill(topo)
    ensure_supported(drill, "sim", SimBackend.capabilities)
    ensure_supported(drill, "netns", NetnsBackend.capabilities)
    with pytest.raises(UnsupportedError, match=re.escape("overlays[0].mtu (1500 over vxnet")):
        ensure_supported(drill, "libvirt", LibvirtBackend.capabilities)


def test_a_topology_without_those_settings_needs_none_of_them() -> None:
    """The safe pair asks no backend for the new features (it runs where it ran)."""
    needed = features_needed(topology())
    assert "drbd-refused-settings" not in needed
    assert "overlay-mtu-over-underlay" not in needed
